"""MCP-over-HTTP session ids that any process or replica can serve.

OpenEnv keeps an `openenv/session/create` session in the memory of the process
that created it, under an id of its own. Here the id a client gets is the
session's episode id instead, the key of its episode log (server/ws_sessions.py),
and each process maps it to the OpenEnv session that holds the episode there. A
process asked for an id it does not hold (the request went to another worker or
replica, or the process restarted) opens an OpenEnv session of its own whose
episode is replayed from the log, then serves the call: the episode goes on with
identical observations and rewards. The same id also names the episode in
`GET /episodes/{id}/trajectory`.

`openenv/session/close` ends the session in the process that answers it; the id
is then unknown there. The log stays readable (the trajectory) until it expires.
"""

from __future__ import annotations

import asyncio
from collections import OrderedDict
from contextvars import ContextVar
from typing import Any, Awaitable, Callable, Optional

from support_env.access.mcp_tools import EPISODE_START

CallOpenEnv = Callable[[dict[str, Any]], Awaitable[dict[str, Any]]]

# Filled by LoggedToolEnvironment.reset with the episode id it starts, when a list is set here.
STARTED_EPISODES: ContextVar[Optional[list[str]]] = ContextVar("support_env_started_episodes", default=None)

UNKNOWN = "Unknown session_id"


class McpSessions:
    """Episode ids to this process's OpenEnv session ids, least recently used first."""

    def __init__(self, call_openenv: CallOpenEnv, max_sessions: int):
        self._call = call_openenv
        self._local: OrderedDict[str, str] = OrderedDict()  # episode id -> OpenEnv session id here
        self._closed: OrderedDict[str, None] = OrderedDict()  # closed here: not resumed again
        self._limit = 4 * max_sessions  # OpenEnv reaps idle sessions itself; this only bounds the map
        self._resuming = asyncio.Lock()  # one resume at a time: two calls for one id open one session

    async def create(self, message: dict[str, Any], start: dict[str, Any]) -> dict[str, Any]:
        """`openenv/session/create` with the reset arguments `start`: OpenEnv's answer with
        the episode id as the session id."""
        started: list[str] = []
        tokens = EPISODE_START.set(start), STARTED_EPISODES.set(started)
        try:
            reply = await self._call(message)
        finally:
            EPISODE_START.reset(tokens[0])
            STARTED_EPISODES.reset(tokens[1])
        result = reply.get("result")
        if not isinstance(result, dict) or "session_id" not in result or not started:
            return reply
        self._remember(started[-1], result["session_id"])
        return {**reply, "result": {**result, "session_id": started[-1]}}

    async def call(self, message: dict[str, Any]) -> dict[str, Any]:
        """Forward a JSON-RPC message naming a session (params.session_id) to the OpenEnv
        session holding its episode here, resuming the episode from the log first if none
        does (or the one that did has been reaped)."""
        params = message["params"]
        episode_id = params["session_id"]
        closing = message.get("method") == "openenv/session/close"
        for fresh in (False, True):
            local = self._local.get(episode_id)
            if local is None:
                if closing or episode_id in self._closed:
                    return await self._call(message)  # OpenEnv's own answer: unknown session
                local = await self._resume(episode_id)
                if local is None:
                    return await self._call(message)
                if isinstance(local, dict):  # OpenEnv could not open a session (at its cap)
                    return {**local, "id": message.get("id")}
            self._local.move_to_end(episode_id)
            reply = await self._call({**message, "params": {**params, "session_id": local}})
            error = reply.get("error") or {}
            if str(error.get("message", "")).startswith(UNKNOWN) and not fresh:
                self._local.pop(episode_id, None)  # reaped idle here: resume from the log
                continue
            if closing and not error:
                self._local.pop(episode_id, None)
                self._closed[episode_id] = None
                while len(self._closed) > self._limit:
                    self._closed.popitem(last=False)
            return _named(reply, local, episode_id)
        return reply

    async def _resume(self, episode_id: str) -> str | dict[str, Any] | None:
        """An OpenEnv session here whose episode is `episode_id` replayed from the log: its id;
        None if the log has no such episode; OpenEnv's error reply if it could not open one."""
        async with self._resuming:
            if episode_id in self._local:
                return self._local[episode_id]
            token = EPISODE_START.set({"episode_id": episode_id, "resume": True})
            try:
                reply = await self._call({"jsonrpc": "2.0", "id": 0, "method": "openenv/session/create", "params": {}})
            except ValueError:  # not in the log (EpisodeResumeError), or expired
                return None
            finally:
                EPISODE_START.reset(token)
            session_id = (reply.get("result") or {}).get("session_id")
            if session_id is None:
                return reply
            self._remember(episode_id, session_id)
            return session_id

    def _remember(self, episode_id: str, session_id: str) -> None:
        self._local[episode_id] = session_id
        self._closed.pop(episode_id, None)
        while len(self._local) > self._limit:
            self._local.popitem(last=False)


def _named(reply: dict[str, Any], local: str, episode_id: str) -> dict[str, Any]:
    """`reply` with this process's OpenEnv session id, where OpenEnv echoes it, given back as
    the episode id the client knows."""
    result = reply.get("result")
    if isinstance(result, dict) and result.get("session_id") == local:
        return {**reply, "result": {**result, "session_id": episode_id}}
    error = reply.get("error")
    if isinstance(error, dict) and local in str(error.get("message", "")):
        return {**reply, "error": {**error, "message": str(error["message"]).replace(local, episode_id)}}
    return reply
