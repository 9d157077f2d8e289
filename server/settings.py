"""Server settings from environment variables, read at start-up.

A value that cannot be used stops the server at start-up with one line
naming the variable, what it must be and what it got (`SettingError`, turned
into that line by `stop_on_bad_setting`), never a traceback. The same readers
serve inference.py, so its settings fail the same way.
"""

from __future__ import annotations

import ipaddress
import os
import re
import socket
from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

Number = TypeVar("Number", int, float)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")
HOST_NAME = re.compile(r"(?=.{1,253}$)([A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?")


class SettingError(ValueError):
    """A setting that cannot be used; the message names the variable, what it must be and what it got."""


@contextmanager
def stop_on_bad_setting(program: str = "support_env server") -> Iterator[None]:
    """Turn a SettingError raised inside the block into an exit with one line on stderr
    (`<program>: <message>`, status 1), so a mistyped setting reads as one, not as a crash."""
    try:
        yield
    except SettingError as exc:
        raise SystemExit(f"{program}: {exc}") from None


def _raw(name: str) -> str:
    return os.environ.get(name, "").strip()


def positive_number(name: str, default: Number, unit: str, kind: Callable[[str], Number] = int) -> Number:
    """`name` as a positive `kind` (int or float); `default` when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        raise SettingError(f"{name} must be a positive number of {unit}, got {raw!r}")
    return value


def whole_number(name: str, default: int, unit: str) -> int:
    """`name` as an integer of 0 or more; `default` when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]+", raw):
        raise SettingError(f"{name} must be a whole number of {unit} (0 or more), got {raw!r}")
    return int(raw)


def switch(name: str, default: bool) -> bool:
    """`name` as on/off (1/0, true/false, yes/no, on/off, any case); `default` when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise SettingError(f"{name} must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {raw!r}")


def port(name: str = "PORT", default: int = 7860) -> int:
    """`name` as a TCP port number (1-65535); `default` when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    if not re.fullmatch(r"[0-9]{1,5}", raw) or not 1 <= int(raw) <= 65535:
        raise SettingError(f"{name} must be a port number from 1 to 65535, got {raw!r}")
    return int(raw)


def host(name: str = "HOST", default: str = "0.0.0.0") -> str:
    """`name` as an address to listen on: an IP address or a host name of this machine,
    checked by binding a throwaway socket to it, so a typo is reported by name before
    the server starts rather than by the server's socket as it does."""
    raw = _raw(name)
    if not raw:
        return default
    problem = f"{name} must be an IP address or a host name of this machine (such as 0.0.0.0, 127.0.0.1, :: or localhost), got {raw!r}"
    try:
        literal = ipaddress.ip_address(raw)
    except ValueError:
        literal = None
    if literal is None and not HOST_NAME.fullmatch(raw):
        raise SettingError(problem)
    try:
        addresses = socket.getaddrinfo(raw, 0, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE)
    except (socket.gaierror, UnicodeError):
        raise SettingError(f"{problem}; it does not resolve") from None
    for family, kind, protocol, _, address in addresses:
        try:
            with socket.socket(family, kind, protocol) as probe:
                probe.bind(address)
            return raw
        except OSError:
            continue
    raise SettingError(f"{problem}; this machine has no such address")


def url(name: str, default: str | None) -> str | None:
    """`name` as an http:// or https:// URL (no trailing slash); `default` when unset or empty."""
    raw = _raw(name)
    if not raw:
        return default
    if not re.fullmatch(r"https?://[^\s/]+(/\S*)?", raw):
        raise SettingError(f"{name} must be an http:// or https:// URL, got {raw!r}")
    return raw.rstrip("/")
