"""Server settings from environment variables: clear errors for bad values, and each one takes effect."""

from __future__ import annotations

import asyncio

import pytest
import websockets

from server.settings import positive_number, switch
from support_env.access.local_server import LocalServer, ServerStartError


@pytest.mark.parametrize("raw, expected", [("", 256), ("  ", 256), ("12", 12), (" 7 ", 7)])
def test_positive_integers(monkeypatch, raw, expected):
    monkeypatch.setenv("X_SETTING", raw)
    assert positive_number("X_SETTING", 256, "sessions") == expected


@pytest.mark.parametrize("raw", ["0", "-3", "1.5", "abc", "1e3"])
def test_bad_integers_are_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("X_SETTING", raw)
    with pytest.raises(ValueError, match=f"X_SETTING must be a positive number of sessions, got '{raw}'"):
        positive_number("X_SETTING", 256, "sessions")


@pytest.mark.parametrize("raw", ["0", "-1", "nan", "inf", "soon"])
def test_bad_seconds_are_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("X_TTL", raw)
    with pytest.raises(ValueError, match=f"X_TTL must be a positive number of seconds, got '{raw}'"):
        positive_number("X_TTL", 1800.0, "seconds", float)


def test_seconds_may_be_fractional(monkeypatch):
    monkeypatch.setenv("X_TTL", "2.5")
    assert positive_number("X_TTL", 1800.0, "seconds", float) == 2.5


@pytest.mark.parametrize("raw, expected", [("", True), ("false", False), ("OFF", False), ("0", False), ("no", False), ("Yes", True), ("1", True), ("on", True)])
def test_switches(monkeypatch, raw, expected):
    monkeypatch.setenv("X_SWITCH", raw)
    assert switch("X_SWITCH", True) is expected


def test_a_switch_that_is_neither_on_nor_off_is_refused(monkeypatch):
    monkeypatch.setenv("X_SWITCH", "maybe")
    with pytest.raises(ValueError, match="X_SWITCH must be one of 1, true, yes, on, 0, false, no, off, got 'maybe'"):
        switch("X_SWITCH", True)


@pytest.mark.parametrize("name, raw", [("SUPPORT_ENV_MAX_SESSIONS", "many"), ("SUPPORT_ENV_SESSION_TTL", "-5"), ("SUPPORT_ENV_WS_DEFLATE", "sometimes")])
def test_the_server_refuses_to_start_on_a_bad_setting_and_says_which(name, raw):
    with pytest.raises(ServerStartError, match=f"{name} must be .*, got '{raw}'"):
        LocalServer({name: raw})


async def negotiated_extensions(url: str) -> list[str]:
    async with websockets.connect(url, compression="deflate") as ws:
        return [ext.name for ext in ws.protocol.extensions]


@pytest.mark.parametrize("setting, expected", [(None, []), ("true", ["permessage-deflate"]), ("false", [])])
def test_ws_compression_follows_the_setting(setting, expected):
    with LocalServer({} if setting is None else {"SUPPORT_ENV_WS_DEFLATE": setting}) as server:
        assert asyncio.run(negotiated_extensions(server.ws_url)) == expected
