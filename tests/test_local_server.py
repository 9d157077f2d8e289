"""support_env.local_server: the one way inference.py, the tests and the benchmarks start a server."""

from __future__ import annotations

import httpx
import pytest

from support_env.access.local_server import LocalServer, ServerStartError


def test_a_server_that_cannot_start_is_a_clear_error_quoting_its_output_and_leaves_nothing_running():
    with pytest.raises(ServerStartError) as caught:
        LocalServer({"SUPPORT_ENV_MAX_BODY_BYTES": "lots"}, name="the test server")
    message = str(caught.value)
    assert message.startswith("the test server did not start: it exited with code")
    assert "SUPPORT_ENV_MAX_BODY_BYTES must be a positive number of bytes, got 'lots'" in message


def test_a_server_that_never_answers_times_out_clearly(tmp_path):
    with pytest.raises(ServerStartError, match=r"/health did not answer within 1 s"):
        LocalServer(command=["-c", "import time; print('sleeping', flush=True); time.sleep(30)"], timeout_s=1, log_path=tmp_path / "log")
    assert "sleeping" in (tmp_path / "log").read_text()


def test_settings_reach_the_server_and_the_process_is_gone_after_the_block():
    with LocalServer({"SUPPORT_ENV_MAX_BODY_BYTES": "100"}) as server:
        assert httpx.post(f"{server.url}/reset", content=b"{" + b" " * 200 + b"}").status_code == 413
        process = server.process
    assert process.poll() is not None
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{server.url}/health", timeout=2)
