"""support_env: an OpenEnv environment where an agent works a cloud API company's support queue."""

import sys as _sys


def _import_openenv_without_its_web_ui() -> None:
    """Import OpenEnv's core without Gradio, unless something already has.

    Any `openenv.core.*` import runs `openenv/core/env_server/__init__.py`, which
    imports OpenEnv's web UI module and, with it, Gradio (seconds, and ~70 MB of a
    server's ~185 MB), whether or not a web UI is ever served. Python offers no way
    to import a submodule without its parent packages, and OpenEnv 0.10 has no
    switch for this; it does guard that one import (`except ModuleNotFoundError`).
    So for the duration of this one import the web UI module is marked absent
    (None in sys.modules, Python's documented way to block a module), then the
    mark is removed: OpenEnv's `create_app` imports the module itself when the
    playground is switched on (ENABLE_WEB_INTERFACE), and so can anyone else.
    Nothing else is touched, and Gradio itself is never blocked. The side effect:
    the package attributes `openenv.core.env_server.create_web_interface_app` and
    `WebInterfaceManager` stay None; import them from `.web_interface` instead.
    """
    web_ui = "openenv.core.env_server.web_interface"
    if "openenv.core" in _sys.modules or web_ui in _sys.modules:
        return
    _sys.modules[web_ui] = None  # type: ignore[assignment]
    try:
        import openenv.core  # noqa: F401
    finally:
        if _sys.modules.get(web_ui, ...) is None:
            del _sys.modules[web_ui]


_import_openenv_without_its_web_ui()

from .models import SupportAction, SupportObservation, SupportState  # noqa: E402
from .version import __version__  # noqa: E402

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
