"""`python -m support_env.audit`: the exploit audit (support_env.agents.audit) at its public path."""

from .agents.audit import main

if __name__ == "__main__":
    main()
