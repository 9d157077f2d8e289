"""Server settings from environment variables, read at start-up.

A value that cannot be used stops the server at start-up with an error
naming the variable, what it must be and what it got.
"""

from __future__ import annotations

import os
from typing import Callable, TypeVar

Number = TypeVar("Number", int, float)
TRUE_WORDS = ("1", "true", "yes", "on")
FALSE_WORDS = ("0", "false", "no", "off")


def positive_number(name: str, default: Number, unit: str, kind: Callable[[str], Number] = int) -> Number:
    """`name` as a positive `kind` (int or float); `default` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = 0
    if not value > 0 or value == float("inf"):
        raise ValueError(f"{name} must be a positive number of {unit}, got {raw!r}")
    return value


def switch(name: str, default: bool) -> bool:
    """`name` as on/off (1/0, true/false, yes/no, on/off, any case); `default` when unset or empty."""
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    if raw.lower() in TRUE_WORDS:
        return True
    if raw.lower() in FALSE_WORDS:
        return False
    raise ValueError(f"{name} must be one of {', '.join(TRUE_WORDS + FALSE_WORDS)}, got {raw!r}")
