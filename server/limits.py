"""A cap on HTTP request bodies, as plain ASGI middleware.

Nothing the environment accepts is large (a reply is at most 4,000
characters), so a body beyond the cap is a mistake or an attack. It is
refused with 413 and a JSON `detail` before any of it is parsed, and a body
that arrives without a Content-Length (chunked) is counted as it streams in
and cut off at the cap, so memory per request stays bounded either way.
WebSocket frames are not HTTP bodies; uvicorn caps those (`ws_max_size`).
"""

from __future__ import annotations

import json
from typing import Any, Awaitable, Callable, MutableMapping

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Scope, Receive, Send], Awaitable[None]]

from server.settings import positive_number

MAX_BODY_BYTES_VAR = "SUPPORT_ENV_MAX_BODY_BYTES"
DEFAULT_MAX_BODY_BYTES = 256 * 1024


def max_body_bytes_from_env() -> int:
    """The configured cap; a value that is not a positive integer stops start-up with a clear message."""
    return positive_number(MAX_BODY_BYTES_VAR, DEFAULT_MAX_BODY_BYTES, "bytes")


class BodySizeLimit:
    """Refuse HTTP requests whose body exceeds `max_bytes` with 413 and a JSON message."""

    def __init__(self, app: ASGIApp, max_bytes: int = DEFAULT_MAX_BODY_BYTES):
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = _content_length(scope)
        if declared is not None and declared > self.max_bytes:
            await self._refuse(send, f"request body is {declared} bytes")
            return

        received = 0
        overflowed = False
        refused = False  # a 413 went out; the app's own answer is dropped
        response_started = False

        async def counting_receive() -> Message:
            nonlocal received, overflowed, refused
            if overflowed:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > self.max_bytes:
                    overflowed = True
                    if not response_started:
                        refused = True
                        await self._refuse(send, f"request body exceeds {self.max_bytes} bytes")
                    # The app sees a client that went away and stops reading.
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            nonlocal response_started
            if refused:
                return  # the 413 has been sent; whatever the app answers is dropped
            if message["type"] == "http.response.start":
                response_started = True
            await send(message)

        try:
            await self.app(scope, counting_receive, guarded_send)
        except Exception:
            if not refused:
                raise
            # The app failed on the body we cut off (a disconnect while reading); the 413 already went out.

    async def _refuse(self, send: Send, what: str) -> None:
        body = json.dumps(
            {
                "detail": f"{what}; the limit is {self.max_bytes} bytes ({MAX_BODY_BYTES_VAR}). "
                "No valid request is this large: a reply is at most 4000 characters."
            }
        ).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", ()):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None  # malformed: let the server and the body count deal with it
    return None
