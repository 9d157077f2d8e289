"""support_env: an OpenEnv environment where an agent works a cloud API company's support queue."""

from .models import SupportAction, SupportObservation, SupportState
from .version import __version__

__all__ = ["SupportAction", "SupportObservation", "SupportState", "SupportEnvironment", "SupportEnv", "__version__"]


def __getattr__(name: str):
    # The environment and client pull in the KB index and websockets; import them on first use.
    if name == "SupportEnvironment":
        from .environment import SupportEnvironment

        return SupportEnvironment
    if name == "SupportEnv":
        from .access.client import SupportEnv

        return SupportEnv
    raise AttributeError(name)
