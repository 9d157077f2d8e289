"""The support_env server: OpenEnv's app plus stateful HTTP sessions.

Configuration (environment variables):
  PORT                      port to serve on (default 7860)
  HOST                      interface to bind (default 0.0.0.0)
  SUPPORT_ENV_MAX_SESSIONS  running episodes allowed, per transport (default 256)
  SUPPORT_ENV_SESSION_TTL   seconds an idle session lives (default 1800)
  SUPPORT_ENV_MAX_BODY_BYTES  largest HTTP request body accepted, else 413 (default 262144)
  SUPPORT_ENV_WS_DEFLATE    compress /ws messages when the client offers permessage-deflate
                            (default false: compression costs more server CPU per step than the
                            rest of the transport; true sends ~1/4 of the bytes, for slow links)
"""

from __future__ import annotations

import os

from openenv.core.env_server.http_server import create_app
from openenv.core.env_server.types import ConcurrencyConfig

from server.errors import install_error_handlers
from server.limits import BodySizeLimit, max_body_bytes_from_env
from server.mcp_routes import install_mcp_routes
from server.sessions import SessionStore, install_session_routes
from server.settings import positive_number, switch
from server.web import TAB_NAME, build_playground
from server.web_guard import disable_playground_if_unwritable
from support_env.environment import SupportEnvironment
from support_env.models import SupportAction, SupportObservation
from support_env.access.preload import preload
from support_env.access.mcp_tools import SupportToolEnvironment

disable_playground_if_unwritable()
MAX_SESSIONS = positive_number("SUPPORT_ENV_MAX_SESSIONS", 256, "sessions")
SESSION_TTL_S = positive_number("SUPPORT_ENV_SESSION_TTL", 1800.0, "seconds", float)
WS_DEFLATE = switch("SUPPORT_ENV_WS_DEFLATE", False)
preload()  # data files, KB index and MCP tools, before the first client rather than during its request

app = create_app(
    SupportToolEnvironment,  # SupportEnvironment plus its actions as MCP tools (/mcp, /ws "mcp")
    SupportAction,
    SupportObservation,
    env_name="support_env",
    gradio_builder=build_playground,  # the /web playground (ENABLE_WEB_INTERFACE=true)
    custom_tab_name=TAB_NAME,
    custom_tab_primary=True,
    concurrency_config=ConcurrencyConfig(max_concurrent_envs=MAX_SESSIONS, session_timeout=SESSION_TTL_S),
)
app.title = "support_env"
install_session_routes(app, SessionStore(SupportEnvironment, MAX_SESSIONS, SESSION_TTL_S))
install_error_handlers(app)
install_mcp_routes(app)
app.add_middleware(BodySizeLimit, max_bytes=max_body_bytes_from_env())  # 413 beyond SUPPORT_ENV_MAX_BODY_BYTES


def main() -> None:
    import uvicorn

    uvicorn.run(
        app,
        host=os.environ.get("HOST", "0.0.0.0"),
        port=int(os.environ.get("PORT", "7860")),
        ws_per_message_deflate=WS_DEFLATE,
    )


if __name__ == "__main__":
    main()
