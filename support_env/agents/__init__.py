"""Policies that play the environment: the reference policy, the exploit zoo and its audit, the LLM agent, and the rollout loop."""
