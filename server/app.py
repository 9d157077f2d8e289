"""The support_env server: OpenEnv's app plus stateful HTTP sessions.

Configuration (environment variables):
  PORT                      port to serve on (default 7860)
  HOST                      interface to bind (default 0.0.0.0)
  SUPPORT_ENV_MAX_SESSIONS  running episodes allowed, per transport (default 256)
  SUPPORT_ENV_SESSION_TTL   seconds an idle session lives (default 1800)
  SUPPORT_ENV_STORE         where HTTP sessions are kept: memory (default for one process),
                            sqlite:///path/to/episodes.db (default with several workers, and in the
                            image), redis://host:port/db (replicas); see server/stores/
  WEB_CONCURRENCY           worker processes for `python -m server.app` (default 1; server/workers.py)
  SUPPORT_ENV_MAX_BODY_BYTES  largest HTTP request body accepted, else 413 (default 262144)
  SUPPORT_ENV_WS_DEFLATE    compress /ws messages when the client offers permessage-deflate
                            (default false: compression costs more server CPU per step than the
                            rest of the transport; true sends ~1/4 of the bytes, for slow links)
Each may also come from a `.env` file in the working directory; a variable already set wins.
A value that cannot be used stops start-up with one line naming it (server/settings.py).
"""

from __future__ import annotations

import os
from typing import Any

from dotenv import load_dotenv

load_dotenv(".env")  # before the imports below: some of them read settings as they load

import support_env  # noqa: F401  first: it loads OpenEnv without its Gradio web UI (see support_env/__init__.py)
from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.types import ConcurrencyConfig

from server.errors import install_error_handlers
from server.limits import BodySizeLimit, max_body_bytes_from_env
from server.mcp_routes import install_mcp_routes
from server.sessions import SessionStore, install_session_routes, install_store_errors, install_task_api_errors
from server.settings import host, port, positive_number, stop_on_bad_setting, switch, whole_number
from server.stores import no_delay_on_inherited_sockets, open_log, store_url, worker_count
from server.web_guard import ENABLED_VALUES, disable_playground_if_unwritable
from server.workers import listening_socket, supervise, this_worker
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation, SupportState
from support_env.access.preload import preload
from server.ws_sessions import LoggedToolEnvironment

disable_playground_if_unwritable()
with stop_on_bad_setting():  # one line naming the setting, not a traceback
    MAX_SESSIONS = positive_number("SUPPORT_ENV_MAX_SESSIONS", 256, "sessions")
    SESSION_TTL_S = positive_number("SUPPORT_ENV_SESSION_TTL", 1800.0, "seconds", float)
    WS_DEFLATE = switch("SUPPORT_ENV_WS_DEFLATE", False)
    MAX_BODY_BYTES = max_body_bytes_from_env()
    WORKERS = worker_count()
    STORE_URL = store_url(WORKERS)
    EPISODE_LOG = open_log(STORE_URL, MAX_SESSIONS, SESSION_TTL_S)  # HTTP sessions
    # /ws and MCP episodes: resumable; their cap is OpenEnv's, on open sessions
    WS_EPISODE_LOG = open_log(STORE_URL, MAX_SESSIONS, SESSION_TTL_S, namespace="ws", evict_running=True)
preload()  # data files, KB index and MCP tools, before the first client rather than during its request


def playground_options() -> dict[str, Any]:
    """create_app's arguments for the /web playground, read only when it is on
    (ENABLE_WEB_INTERFACE, as OpenEnv reads it): Gradio takes seconds to import,
    so a server without the playground never imports it."""
    if os.environ.get("ENABLE_WEB_INTERFACE", "false").lower() not in ENABLED_VALUES:
        return {}
    from server.web import TAB_NAME, build_playground

    return {"gradio_builder": build_playground, "custom_tab_name": TAB_NAME, "custom_tab_primary": True}


if WORKERS > 1:
    no_delay_on_inherited_sockets()  # 44 ms per request otherwise (see its docstring)
LoggedToolEnvironment.log = WS_EPISODE_LOG
app = create_app(
    LoggedToolEnvironment,  # SupportEnvironment plus its actions as MCP tools (/mcp, /ws "mcp"), its episodes logged
    SupportAction,
    SupportObservation,
    env_name="support_env",  # also the prefix of OpenEnv's Task API routes: /support_env/splits, ...
    concurrency_config=ConcurrencyConfig(max_concurrent_envs=MAX_SESSIONS, session_timeout=SESSION_TTL_S),
    state_cls=SupportState,
    **playground_options(),
)
app.title = "support_env"
install_session_routes(app, SessionStore(SupportEnvironment, EPISODE_LOG), SessionStore(SupportEnvironment, WS_EPISODE_LOG, cache_size=8))
install_error_handlers(app)
install_store_errors(app)
install_task_api_errors(app)
install_mcp_routes(app, MAX_SESSIONS)
app.add_middleware(BodySizeLimit, max_bytes=MAX_BODY_BYTES)  # 413 beyond SUPPORT_ENV_MAX_BODY_BYTES


def main() -> None:
    import uvicorn

    with stop_on_bad_setting():
        listen_host, listen_port = host("HOST", "0.0.0.0"), port("PORT", 7860)
        workers = max(1, whole_number("WEB_CONCURRENCY", 1, "worker processes"))
        store_url(workers)  # refuses SUPPORT_ENV_STORE=memory for several workers, before any starts
    if this_worker() is not None:  # one of supervise()'s workers: its own socket on the shared port
        config = uvicorn.Config(app, host=listen_host, port=listen_port, ws_per_message_deflate=WS_DEFLATE)
        uvicorn.Server(config).run(sockets=[listening_socket(listen_host, listen_port)])
        return
    if workers > 1:
        supervise(workers)
        return
    uvicorn.run(app, host=listen_host, port=listen_port, ws_per_message_deflate=WS_DEFLATE)


if __name__ == "__main__":
    main()
