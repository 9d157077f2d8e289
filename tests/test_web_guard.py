"""The server starts even where the playground's temp directory is read-only."""

from __future__ import annotations

import os

import httpx

from server.web_guard import disable_playground_if_unwritable


def test_an_unwritable_temp_dir_turns_the_playground_off(tmp_path, monkeypatch, capsys):
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setenv("ENABLE_WEB_INTERFACE", "true")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(locked / "gradio"))
    if os.geteuid() == 0:  # root writes anywhere: point at a path under a regular file instead
        blocker = tmp_path / "file"
        blocker.write_text("x")
        monkeypatch.setenv("GRADIO_TEMP_DIR", str(blocker / "gradio"))
    disable_playground_if_unwritable()
    assert os.environ["ENABLE_WEB_INTERFACE"] == "false"
    assert "the /web playground is off" in capsys.readouterr().err


def test_a_writable_temp_dir_keeps_it_on(tmp_path, monkeypatch):
    monkeypatch.setenv("ENABLE_WEB_INTERFACE", "true")
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(tmp_path / "gradio"))
    disable_playground_if_unwritable()
    assert os.environ["ENABLE_WEB_INTERFACE"] == "true"


def test_the_server_serves_the_api_when_the_playground_cannot_start(start_server, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    live = start_server(ENABLE_WEB_INTERFACE="true", GRADIO_TEMP_DIR=str(blocker / "gradio"))
    assert httpx.post(f"{live.url}/reset", json={}).status_code == 200
    assert httpx.get(f"{live.url}/web/").status_code == 404
