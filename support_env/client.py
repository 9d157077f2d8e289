"""The typed OpenEnv client, at its public path: `from support_env.client import SupportEnv`."""

from .access.client import SupportEnv

__all__ = ["SupportEnv"]
