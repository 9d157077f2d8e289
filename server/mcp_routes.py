"""`/mcp`: the agent's tools for OpenEnv's JSON-RPC and for standard MCP clients.

Two dialects share the one URL:

* OpenEnv's JSON-RPC (`POST /mcp`, and `/ws` "mcp" messages): handled by
  OpenEnv, which runs `tools/call` on the session's `SupportToolEnvironment`.
  Over HTTP a session comes from `openenv/session/create`; here that method
  also takes the arguments of `POST /reset` (`task_id`, `seed`, ...), and the
  session's episode starts with them (default: easy_classify, canonical
  order). `tools/call` must name the session (`params.session_id`): a call
  without one would act on a throwaway episode, so it is refused. The
  session id is the episode's id, and any process on the same store serves
  it (server/mcp_sessions.py).
* The MCP Streamable HTTP transport, spoken by MCP client libraries (they send
  `Accept: ..., text/event-stream` or `MCP-Protocol-Version`). The protocol
  keeps no sessions, so the episode is named in the URL:
  `/mcp?session_id=<id from openenv/session/create>`. A relay server with the
  same tools forwards each call to that OpenEnv session.

OpenEnv's JSON-RPC also runs over a WebSocket at `/mcp`, one session per
connection; there the URL's query chooses the episode (`/mcp?task_id=...`).

Whoever runs the agent creates the session and so chooses the task; the agent
only gets tools (reset is not one of them).
"""

from __future__ import annotations

import inspect
import json
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_http_request
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route, WebSocketRoute
from starlette.websockets import WebSocket, WebSocketDisconnect
from starlette.types import Receive, Scope, Send

from server.errors import holds_text_not_unicode
from server.mcp_sessions import McpSessions
from support_env.environment import SupportEnvironment
from support_env.access.mcp_tools import EPISODE_START, build_tool_server

INVALID_REQUEST = -32600
INVALID_PARAMS = -32602
PARSE_ERROR = -32700


def episode_start(params: dict[str, Any]) -> dict[str, Any]:
    """The reset arguments in `openenv/session/create` params: the same ones
    `POST /reset` takes (task_id, seed, ...), checked by a trial reset so a bad
    value is refused before any session exists. Raises ValueError."""
    accepted = set(inspect.signature(SupportEnvironment.reset).parameters) - {"self", "episode_id"}
    unknown = sorted(set(params) - accepted)
    if unknown:
        raise ValueError(f"unknown params {unknown}; accepted: {sorted(accepted)}")
    try:
        SupportEnvironment().reset(**params)
    except TypeError as exc:
        raise ValueError(str(exc)) from exc
    return dict(params)


def install_mcp_routes(app: FastAPI, max_sessions: int) -> None:
    """Put the two-dialect `/mcp` in place of OpenEnv's `POST /mcp` route; its sessions'
    ids work in any process on the same store (server/mcp_sessions.py)."""
    index, openenv_route = next(
        (i, r) for i, r in enumerate(app.router.routes) if isinstance(r, APIRoute) and r.path == "/mcp" and "POST" in r.methods
    )
    openenv_mcp = openenv_route.endpoint  # async (Request) -> JSON-RPC response dict

    async def call_openenv(message: dict[str, Any]) -> dict[str, Any]:
        body = json.dumps(message).encode()

        async def receive() -> dict[str, Any]:
            return {"type": "http.request", "body": body, "more_body": False}

        return await openenv_mcp(Request({"type": "http", "method": "POST", "path": "/mcp", "headers": []}, receive))

    sessions = McpSessions(call_openenv, max_sessions)
    relay = build_tool_server(_relay_to(sessions)).http_app(path="/mcp", stateless_http=True, json_response=True)
    app.router.routes[index] = Route("/mcp", _McpEndpoint(call_openenv, sessions, relay), methods=["GET", "POST", "DELETE"])
    _run_lifespan_too(app, relay)

    # OpenEnv's JSON-RPC over WebSocket at /mcp: one session per connection, its
    # episode chosen by the URL's query (`/mcp?task_id=...&seed=...`).
    for i, route in enumerate(app.router.routes):
        if isinstance(route, WebSocketRoute) and route.path == "/mcp":
            app.router.routes[i] = WebSocketRoute("/mcp", _quiet_on_disconnect(_episode_from_query(route.endpoint)))
        elif isinstance(route, WebSocketRoute) and route.path == "/ws":
            app.router.routes[i] = WebSocketRoute("/ws", _quiet_on_disconnect(route.endpoint))


def _quiet_on_disconnect(endpoint):
    """OpenEnv's WebSocket endpoints close the socket once more after the client
    has gone, which raises WebSocketDisconnect out of the endpoint: a 4 KB
    traceback in the log for every ordinary disconnect. The session is already
    cleaned up by then; drop the exception."""

    async def quiet(websocket: WebSocket) -> None:
        try:
            await endpoint(websocket)
        except WebSocketDisconnect:
            pass

    return quiet


def _episode_from_query(openenv_endpoint):
    async def endpoint(websocket: WebSocket) -> None:
        query = {k: int(v) if v.isdigit() else v for k, v in websocket.query_params.items()}
        try:
            start = episode_start(query)
        except ValueError as exc:
            await websocket.accept()
            await websocket.send_json(_error(None, INVALID_PARAMS, f"invalid episode in the /mcp query: {exc}"))
            await websocket.close(code=1008)
            return
        token = EPISODE_START.set(start)
        try:
            await openenv_endpoint(websocket)
        finally:
            EPISODE_START.reset(token)

    return endpoint


def _relay_to(sessions: McpSessions):
    async def relay(tool_name: str, arguments: dict[str, Any]) -> dict[str, Any]:
        session_id = get_http_request().query_params.get("session_id")
        if not session_id:
            raise ToolError(
                "no session: create one with the JSON-RPC method openenv/session/create on POST /mcp "
                "(params: task_id, seed) and connect to /mcp?session_id=<its session_id>"
            )
        reply = await sessions.call(
            {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
             "params": {"name": tool_name, "arguments": arguments, "session_id": session_id}}
        )
        if reply.get("error"):
            message = reply["error"].get("message", "tool call failed")
            if message.startswith("Unknown session_id"):
                message += " (unknown, closed, or expired after its idle time; create another with openenv/session/create)"
            raise ToolError(message)
        return reply["result"]["structured_content"]  # the session's tool result, as it answered

    return relay


class _McpEndpoint:
    """ASGI app for `/mcp`: sends MCP transport requests to the relay and
    OpenEnv's JSON-RPC to OpenEnv, checking the two methods whose meaning this
    environment extends."""

    def __init__(self, call_openenv, sessions: McpSessions, relay):
        self.call_openenv = call_openenv
        self.sessions = sessions
        self.relay = relay

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _is_mcp_transport(scope):
            await self.relay(scope, receive, send)
            return
        try:
            message = json.loads(await _read_body(receive))
        except ValueError:
            message = None
        if holds_text_not_unicode(message):
            reply = _error(None, INVALID_REQUEST, "Invalid request: text that is not valid Unicode (a lone surrogate such as \\ud800); send UTF-8")
        elif isinstance(message, dict):
            reply = await self._handle(message)
        else:
            reply = _error(None, PARSE_ERROR, "Parse error: expected one JSON-RPC request object")
        await JSONResponse(reply)(scope, receive, send)

    async def _handle(self, message: dict[str, Any]) -> dict[str, Any]:
        method, params, request_id = message.get("method"), message.get("params"), message.get("id")
        if not isinstance(params, dict):
            return await self.call_openenv(message)  # OpenEnv answers with its own error
        if method == "openenv/session/create":
            try:
                start = episode_start(params)
            except ValueError as exc:
                return _error(request_id, INVALID_PARAMS, f"invalid openenv/session/create params: {exc}")
            return await self.sessions.create(message, start)
        if method == "tools/call" and not params.get("session_id"):
            return _error(
                request_id,
                INVALID_PARAMS,
                "tools/call needs params.session_id: an episode lives in a session; create one with "
                "openenv/session/create (params: task_id, seed)",
            )
        if isinstance(params.get("session_id"), str):
            return await self.sessions.call(message)
        return await self.call_openenv(message)


def _is_mcp_transport(scope: Scope) -> bool:
    """MCP clients must accept an event stream on POST (Streamable HTTP) and
    send their protocol version; OpenEnv's JSON-RPC clients and curl do neither."""
    headers = dict(scope.get("headers") or [])
    accept = headers.get(b"accept", b"").decode("latin-1").lower()
    return scope["method"] != "POST" or "text/event-stream" in accept or b"mcp-protocol-version" in headers


async def _read_body(receive: Receive) -> bytes:
    chunks, more = [], True
    while more:
        message = await receive()
        chunks.append(message.get("body", b""))
        more = message.get("more_body", False)
    return b"".join(chunks)


def _error(request_id: Any, code: int, message: str) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": request_id, "error": {"code": code, "message": message, "data": None}}


def _run_lifespan_too(app: FastAPI, inner_app) -> None:
    """A mounted Starlette app's lifespan does not run by itself; run the
    relay's (its MCP session manager) inside the main app's."""
    outer = app.router.lifespan_context

    @asynccontextmanager
    async def lifespan(main_app):
        async with inner_app.router.lifespan_context(inner_app):
            async with outer(main_app) as state:
                yield state

    app.router.lifespan_context = lifespan
