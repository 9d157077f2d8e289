"""support_env: an OpenEnv environment where an agent works a cloud API company's support queue."""

__version__ = "0.1.0"

from .models import SupportAction, SupportObservation, SupportState  # noqa: E402

__all__ = ["SupportAction", "SupportObservation", "SupportState", "SupportEnvironment", "SupportEnv", "__version__"]


def __getattr__(name: str):
    # The environment and client pull in the KB index and websockets; import them on first use.
    if name == "SupportEnvironment":
        from .environment import SupportEnvironment

        return SupportEnvironment
    if name == "SupportEnv":
        from .client import SupportEnv

        return SupportEnv
    raise AttributeError(name)
