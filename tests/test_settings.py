"""Server settings from environment variables (or a .env file): one clear line for a bad
value, naming it, never a traceback; and each one takes effect."""

from __future__ import annotations

import asyncio
import os
import re
import socket
import subprocess
import sys

import pytest
import websockets

from server.settings import SettingError, host, port, positive_number, stop_on_bad_setting, switch, url, whole_number
from support_env.access.local_server import HOST as LOOPBACK, LocalServer, ServerStartError

from .conftest import ROOT, free_port, wait_for_health


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


@pytest.mark.parametrize("raw, expected", [("", 7860), ("8000", 8000), (" 1 ", 1), ("65535", 65535)])
def test_ports(monkeypatch, raw, expected):
    monkeypatch.setenv("PORT", raw)
    assert port("PORT", 7860) == expected


@pytest.mark.parametrize("raw", ["abc", "0", "65536", "-1", "80.5", "0x50", "²", "0000008080"])
def test_a_port_that_is_no_port_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("PORT", raw)
    with pytest.raises(SettingError, match=f"PORT must be a port number from 1 to 65535, got '{raw}'"):
        port("PORT", 7860)


@pytest.mark.parametrize("raw, expected", [("", "0.0.0.0"), ("127.0.0.1", "127.0.0.1"), ("localhost", "localhost"), ("0.0.0.0", "0.0.0.0")])
def test_hosts(monkeypatch, raw, expected):
    monkeypatch.setenv("HOST", raw)
    assert host("HOST", "0.0.0.0") == expected


@pytest.mark.parametrize("raw, why", [("bad host!", ""), ("http://localhost", ""), ("-x", ""), ("192.0.2.1", "; this machine has no such address")])
def test_a_host_that_is_not_this_machine_is_refused_by_name(monkeypatch, raw, why):
    monkeypatch.setenv("HOST", raw)
    with pytest.raises(SettingError, match=f"HOST must be an IP address or a host name of this machine .*, got '{raw}'{why}$"):
        host("HOST", "0.0.0.0")


def test_a_host_name_that_does_not_resolve_is_refused_by_name(monkeypatch):
    def no_such_name(*args, **kwargs):
        raise socket.gaierror(socket.EAI_NONAME, "Name or service not known")

    monkeypatch.setattr(socket, "getaddrinfo", no_such_name)
    monkeypatch.setenv("HOST", "stackwell-typo")
    with pytest.raises(SettingError, match="HOST must be .*, got 'stackwell-typo'; it does not resolve"):
        host("HOST", "0.0.0.0")


@pytest.mark.parametrize("raw, expected", [("", 4), ("0", 0), ("12", 12)])
def test_whole_numbers_may_be_zero(monkeypatch, raw, expected):
    monkeypatch.setenv("X_RETRIES", raw)
    assert whole_number("X_RETRIES", 4, "retries") == expected


@pytest.mark.parametrize("raw", ["-1", "two", "1.5", "²"])
def test_bad_whole_numbers_are_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("X_RETRIES", raw)
    with pytest.raises(SettingError, match=f"X_RETRIES must be a whole number of retries \\(0 or more\\), got '{raw}'"):
        whole_number("X_RETRIES", 4, "retries")


@pytest.mark.parametrize("raw, expected", [("", None), ("http://127.0.0.1:8000/", "http://127.0.0.1:8000"), ("https://example.org/v1", "https://example.org/v1")])
def test_urls(monkeypatch, raw, expected):
    monkeypatch.setenv("X_URL", raw)
    assert url("X_URL", None) == expected


@pytest.mark.parametrize("raw", ["localhost:8000", "ftp://example.org", "http://", "http://a b"])
def test_a_url_that_is_not_http_is_refused_by_name(monkeypatch, raw):
    monkeypatch.setenv("X_URL", raw)
    with pytest.raises(SettingError, match=f"X_URL must be an http:// or https:// URL, got '{raw}'"):
        url("X_URL", None)


def test_a_bad_setting_stops_with_one_line_not_a_traceback(monkeypatch):
    monkeypatch.setenv("X_SETTING", "many")
    with pytest.raises(SystemExit) as stopped, stop_on_bad_setting("prog"):
        positive_number("X_SETTING", 1, "sessions")
    assert stopped.value.code == "prog: X_SETTING must be a positive number of sessions, got 'many'"
    assert stopped.value.__cause__ is None and stopped.value.__suppress_context__


# How the server is started: `python -m server.app`, and the `server` script (import, then main()).
ENTRY_POINTS = {"python -m server.app": ["-m", "server.app"], "server script": ["-c", "from server.app import main; main()"]}
BAD_SETTINGS = [
    ("SUPPORT_ENV_MAX_SESSIONS", "many"), ("SUPPORT_ENV_SESSION_TTL", "-5"), ("SUPPORT_ENV_WS_DEFLATE", "sometimes"),
    ("SUPPORT_ENV_MAX_BODY_BYTES", "1MB"), ("PORT", "abc"), ("HOST", "bad host!"), ("SUPPORT_ENV_STORE", "mongodb://db"),
]


def server_env(**settings: str) -> dict[str, str]:
    """This process's environment less the server's settings, plus `settings`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("SUPPORT_ENV_") and k not in ("PORT", "HOST")}
    return {**env, "PYTHONPATH": str(ROOT), **settings}


@pytest.mark.parametrize(
    "entry, name, raw",
    [("python -m server.app", name, raw) for name, raw in BAD_SETTINGS]
    + [("server script", "SUPPORT_ENV_MAX_SESSIONS", "many"), ("server script", "PORT", "abc")],
)
def test_the_server_refuses_to_start_on_a_bad_setting_with_one_line_naming_it(tmp_path, entry, name, raw):
    settings = {"PORT": str(free_port()), "HOST": LOOPBACK, name: raw}
    result = subprocess.run([sys.executable, *ENTRY_POINTS[entry]], cwd=tmp_path, env=server_env(**settings), capture_output=True, text=True, timeout=120)
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"support_env server: {name} must be "), result.stderr
    assert lines[0].endswith(f", got '{raw}'"), lines[0]


def test_a_bad_setting_reported_through_local_server_names_it():
    with pytest.raises(ServerStartError, match="SUPPORT_ENV_WS_DEFLATE must be .*, got 'sometimes'"):
        LocalServer({"SUPPORT_ENV_WS_DEFLATE": "sometimes"})


def start_in(folder, **settings: str) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "server.app"], cwd=folder, env=server_env(**settings), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def stop(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()


def test_every_variable_in_env_example_is_a_setting_the_readme_documents():
    readme = (ROOT / "README.md").read_text()
    tables = readme.split("## Configuration\n", 1)[1].split("\n## ", 1)[0] + readme.split("### inference.py settings\n", 1)[1].split("\n### ", 1)[0]
    documented = {name for row in tables.splitlines() if row.startswith("| `") for name in re.findall(r"`([A-Z][A-Z0-9_]+)`", row.split("|")[1])}
    example = [line.split("=", 1)[0] for line in (ROOT / ".env.example").read_text().splitlines() if line.strip() and not line.startswith("#")]
    assert example and set(example) <= documented, set(example) - documented


def test_the_server_reads_a_dot_env_file_in_its_working_directory(tmp_path):
    listen = free_port()
    (tmp_path / ".env").write_text((ROOT / ".env.example").read_text() + f"PORT={listen}\nHOST={LOOPBACK}\n")  # later lines win
    process = start_in(tmp_path)  # no PORT or HOST in its environment: only the file names the port
    try:
        wait_for_health(f"http://{LOOPBACK}:{listen}", process)
    finally:
        stop(process)


def test_a_bad_value_in_dot_env_is_refused_by_name_and_the_environment_wins_over_the_file(tmp_path):
    (tmp_path / ".env").write_text("SUPPORT_ENV_SESSION_TTL=soon\n")
    refused = subprocess.run([sys.executable, "-m", "server.app"], cwd=tmp_path, env=server_env(PORT=str(free_port()), HOST=LOOPBACK),
                             capture_output=True, text=True, timeout=120)
    assert refused.returncode == 1
    assert refused.stderr.strip() == "support_env server: SUPPORT_ENV_SESSION_TTL must be a positive number of seconds, got 'soon'"

    listen = free_port()
    process = start_in(tmp_path, PORT=str(listen), HOST=LOOPBACK, SUPPORT_ENV_SESSION_TTL="60")
    try:
        wait_for_health(f"http://{LOOPBACK}:{listen}", process)
    finally:
        stop(process)


async def negotiated_extensions(url: str) -> list[str]:
    async with websockets.connect(url, compression="deflate") as ws:
        return [ext.name for ext in ws.protocol.extensions]


@pytest.mark.parametrize("setting, expected", [(None, []), ("true", ["permessage-deflate"]), ("false", [])])
def test_ws_compression_follows_the_setting(setting, expected):
    with LocalServer({} if setting is None else {"SUPPORT_ENV_WS_DEFLATE": setting}) as server:
        assert asyncio.run(negotiated_extensions(server.ws_url)) == expected
