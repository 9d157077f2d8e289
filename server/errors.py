"""Request validation errors that can always be sent back.

FastAPI's default 422 handler echoes the rejected input. Python's JSON parser
accepts NaN and Infinity, and lone surrogates such as "\\ud800", none of which
Starlette can send back: a client's mistake would become a 500. This handler
sends the same 422 with such values replaced by their text, and `sendable`
does the same for any other answer built from a client's input.
"""

from __future__ import annotations

import math
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse

from support_env.encodable import escaped, is_unicode


def sendable(value: Any) -> Any:
    """`value` with non-finite numbers as text and text that is not Unicode escaped, so it encodes as JSON."""
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    if isinstance(value, str):
        return escaped(value)
    if isinstance(value, dict):
        return {sendable(k): sendable(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [sendable(v) for v in value]
    return value


def holds_text_not_unicode(value: Any) -> bool:
    """Whether any string in a parsed JSON value (keys included) holds a lone surrogate."""
    if isinstance(value, str):
        return not is_unicode(value)
    if isinstance(value, dict):
        return any(holds_text_not_unicode(k) or holds_text_not_unicode(v) for k, v in value.items())
    if isinstance(value, list):
        return any(holds_text_not_unicode(v) for v in value)
    return False


async def _validation_error(request: Request, exc: RequestValidationError) -> JSONResponse:
    return JSONResponse(status_code=422, content={"detail": sendable(jsonable_encoder(exc.errors()))})


def install_error_handlers(app: FastAPI) -> None:
    app.add_exception_handler(RequestValidationError, _validation_error)
