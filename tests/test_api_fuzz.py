"""The HTTP surface under hostile input, against one live server.

- Schemathesis generates requests from our own /openapi.json for /reset,
  /step, /state, /schema, /metadata and /health (valid and invalid data);
  Hypothesis generates JSON-RPC for /mcp (not in the OpenAPI document). No
  request may get a 5xx, every 4xx carries a message, and every documented
  answer matches its schema.
- Oversized bodies are refused with 413 and a JSON message.
- Sessions are isolated; no secret from the server's environment reaches a
  response or the log; no CORS headers are sent (none are configured).

The number of generated requests is bounded (a few hundred), so this runs in
seconds; the server is loopback only.
"""

from __future__ import annotations

import asyncio
import json
import math
import os

import httpx
import pytest
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from schemathesis import GenerationMode
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import content_type_conformance, response_schema_conformance
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from server.limits import DEFAULT_MAX_BODY_BYTES, MAX_BODY_BYTES_VAR, BodySizeLimit, max_body_bytes_from_env

from .conftest import LoggedServer
from .test_reliability import actions, reset_arguments

SECRETS = {
    "HF_TOKEN": "hf_fuzzSecretTokenValue0123456789abcdef",
    "OPENAI_API_KEY": "sk-fuzzSecretOpenaiKey0123456789abcdef",
    "API_KEY": "fuzzSecretApiKey0123456789abcdef",
}
FUZZED_OPERATIONS = [("GET", "/metadata"), ("GET", "/health"), ("GET", "/schema"), ("GET", "/state"), ("POST", "/reset"), ("POST", "/step")]
FUZZ = dict(deadline=None, database=None, phases=[Phase.explicit, Phase.generate], suppress_health_check=list(HealthCheck))


@pytest.fixture(scope="module")
def live():
    # A cap no fuzzed /reset can reach: 503 (capacity) is the only 5xx the API may answer by design.
    server = LoggedServer({"SUPPORT_ENV_MAX_SESSIONS": "100000", **SECRETS})
    yield server
    server.stop()
    server.log_path.unlink(missing_ok=True)


@pytest.fixture(scope="module")
def schema(live):
    return schemathesis.openapi.from_url(f"{live.url}/openapi.json")


def assert_answer_is_clear(status: int, body: bytes, what: str) -> None:
    assert status < 500, f"{what}: {status} {body[:500]!r}"
    if 400 <= status < 500:
        payload = json.loads(body)
        message = payload.get("detail") or payload.get("message") or payload.get("error")
        assert message, f"{what}: {status} without a message: {body[:500]!r}"


@pytest.mark.parametrize("method, path", FUZZED_OPERATIONS)
def test_generated_requests_never_get_a_5xx_and_every_4xx_explains_itself(live, schema, method, path):
    operation = schema[path][method]
    modes = [GenerationMode.POSITIVE]
    if operation.query or operation.body:  # invalid data needs something to be invalid in
        modes.append(GenerationMode.NEGATIVE)
    strategy = st.one_of(*(operation.as_strategy(generation_mode=mode) for mode in modes))
    seen_ids = [httpx.post(f"{live.url}/reset", json={}).json()["observation"]["episode_id"]]

    @settings(max_examples=40 * len(modes), **FUZZ)
    @given(case=strategy, use_live_id=st.booleans())
    def fuzz(case, use_live_id):
        # Half the time act on a live session, so the real step and state paths get fuzzed too.
        if use_live_id and path in ("/step", "/state"):
            if isinstance(case.body, dict):
                case.body["episode_id"] = seen_ids[-1]
            elif method == "GET":
                case.query = {**(case.query or {}), "episode_id": seen_ids[-1]}
        response = case.call(base_url=live.url, timeout=30)
        assert_answer_is_clear(response.status_code, response.content, f"{method} {path} {case.body!r:.300} {case.query!r:.300}")
        case.validate_response(response, checks=[not_a_server_error, content_type_conformance, response_schema_conformance])

    fuzz()


@pytest.mark.parametrize(
    "method, path, body, status",
    [
        ("POST", "/step", {"episode_id": "nope", "action": {"action_type": "search_kb", "query": "x"}}, 404),
        ("GET", "/state?episode_id=nope", None, 404),
        ("POST", "/reset", {"task_id": "nightmare"}, 400),
    ],
)
def test_every_error_status_the_api_answers_is_declared_in_its_openapi(live, method, path, body, status):
    response = httpx.request(method, f"{live.url}{path}", json=body)
    assert response.status_code == status
    declared = httpx.get(f"{live.url}/openapi.json").json()["paths"][path.split("?")[0]][method.lower()]["responses"]
    assert str(status) in declared, f"{method} {path} answers {status}; declared: {sorted(declared)}"


@settings(max_examples=30, **FUZZ)
@given(data=st.data(), start=reset_arguments())
def test_generated_episodes_over_http_are_served_whole(live, data, start):
    """The in-process property test's actions (valid, malformed, odd and large), sent over HTTP."""
    with httpx.Client(base_url=live.url, timeout=30) as client:
        reset = client.post("/reset", json=start)
        assert reset.status_code == 200, reset.text[:300]
        observation = reset.json()["observation"]
        for _ in range(15):
            ticket = observation["current_ticket"]["id"] if observation["current_ticket"] else None
            action = data.draw(actions(ticket)).model_dump(exclude_none=True, exclude={"metadata"})
            body = json.dumps({"episode_id": observation["episode_id"], "action": action})
            response = client.post("/step", content=body, headers={"content-type": "application/json"})
            if len(body) > DEFAULT_MAX_BODY_BYTES:
                assert response.status_code == 413
                continue
            assert response.status_code == 200, f"{body[:300]} -> {response.status_code} {response.text[:300]}"
            payload = response.json()
            observation = payload["observation"]
            assert math.isfinite(payload["reward"]) and payload["done"] == (observation["grade"] is not None)
            if payload["done"]:
                break


# Non-finite numbers are not JSON, but Python's parser (and so FastAPI's) accepts NaN,
# Infinity and 1e999; they must still never cost a 5xx.
@pytest.mark.parametrize(
    "path, template",
    [
        ("/reset", '{"seed": NaN}'),
        ("/reset", '{"seed": Infinity}'),
        ("/reset", '{"seed": 1, "queue_length": -Infinity}'),
        ("/step", '{"timeout_s": NaN, "episode_id": "@ID@", "action": {"action_type": "search_kb", "query": "x"}}'),
        ("/step", '{"timeout_s": Infinity, "episode_id": "@ID@", "action": {"action_type": "search_kb", "query": "x"}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "search_kb", "query": "x", "metadata": {"k": NaN}}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "issue_refund", "ticket_id": "@T@", "invoice_id": "INV-1", "amount": NaN}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "issue_refund", "ticket_id": "@T@", "invoice_id": "INV-1", "amount": -Infinity}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "issue_refund", "ticket_id": "@T@", "invoice_id": "INV-1", "amount": Infinity}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "issue_refund", "ticket_id": "@T@", "invoice_id": "INV-1", "amount": 1e308}}'),
    ],
)
def test_non_finite_numbers_in_a_body_never_get_a_5xx(live, path, template):
    post_raw_on_a_fresh_episode(live, path, template)


def post_raw_on_a_fresh_episode(live, path: str, template: str) -> tuple[httpx.Response, dict]:
    """POST `template` as the raw body, its @ID@ and @T@ the episode id and ticket of a fresh
    duplicate_charge_refund episode; asserts the answer is clear. Returns it and that episode."""
    first = httpx.post(f"{live.url}/reset", json={"task_id": "duplicate_charge_refund"}).json()["observation"]
    body = template.replace("@ID@", first["episode_id"]).replace("@T@", first["current_ticket"]["id"])
    response = httpx.post(f"{live.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert_answer_is_clear(response.status_code, response.content, body)
    return response, first


@pytest.mark.parametrize(
    "path, template",
    [
        ("/reset", '{"seed": "\\ud800"}'),
        ("/reset", '{"episode_id": "\\udfff"}'),
        ("/reset", '{"\\ud800": 1}'),
        ("/reset", '{"task_id": "hard_mixed_queue", "seed": 1, "split": "\\ud800"}'),
        ("/step", '{"episode_id": "\\ud800", "action": {"action_type": "search_kb", "query": "x"}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "classify_ticket", "ticket_id": "\\ud800"}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "issue_refund", "ticket_id": "@T@", "invoice_id": "INV-1", "amount": "\\ud800"}}'),
        ("/step", '{"episode_id": "@ID@", "action": {"action_type": "search_kb", "query": "x", "metadata": {"\\ud800": "\\udc00"}}}'),
        ("/step", '{"episode_id": "@ID@", "action": "\\ud800"}'),
        ("/mcp", '{"jsonrpc": "2.0", "id": "\\ud800", "method": "\\ud800"}'),
        ("/mcp", '{"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "\\ud800", "arguments": {}}}'),
        ("/mcp", '{"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {"session_id": "\\ud800"}}'),
    ],
)
def test_lone_surrogates_anywhere_in_a_body_get_a_clear_answer_and_the_session_goes_on(live, path, template):
    response, first = post_raw_on_a_fresh_episode(live, path, template)
    if path == "/mcp":
        assert response.json()["error"]["code"] == -32600 and "not valid Unicode" in response.json()["error"]["message"]
    after = httpx.post(f"{live.url}/step", json={"episode_id": first["episode_id"], "action": {"action_type": "search_kb", "query": "refund"}})
    assert after.status_code == 200 and after.json()["observation"]["last_action_error"] is None, after.text[:300]


# Every code point, lone surrogates included ("\ud800" is valid JSON but not Unicode).
ANY_CHARACTER = st.characters(exclude_categories=())
json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(ANY_CHARACTER, max_size=30),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(ANY_CHARACTER, max_size=10), children, max_size=4),
    max_leaves=12,
)
MCP_METHODS = ["tools/list", "tools/call", "openenv/session/close", "initialize", "ping", "resources/list", "nonsense", ""]


@st.composite
def mcp_messages(draw, session_ids: list[str]):
    """JSON-RPC requests: well-formed ones on live sessions, malformed ones, and any JSON at all."""
    if draw(st.integers(0, 5)) == 0:
        return draw(json_values)
    arguments = draw(st.one_of(json_values, st.fixed_dictionaries({}, optional={"ticket_id": st.text(ANY_CHARACTER, max_size=8), "query": st.text(ANY_CHARACTER, max_size=40), "category": st.sampled_from(["billing", "x"])})))
    params = draw(
        st.one_of(
            json_values,
            st.fixed_dictionaries(
                {},
                optional={
                    "name": st.sampled_from(["search_kb", "classify_ticket", "get_observation", "close_ticket", "rm -rf", ""]),
                    "arguments": st.just(arguments),
                    "session_id": st.one_of(st.sampled_from(session_ids), st.text(ANY_CHARACTER, max_size=40)),
                },
            ),
        )
    )
    message = {"jsonrpc": draw(st.sampled_from(["2.0", "1.0", None])), "method": draw(st.sampled_from(MCP_METHODS) | st.text(ANY_CHARACTER, max_size=20)), "params": params}
    message["id"] = draw(st.one_of(st.integers(), st.text(ANY_CHARACTER, max_size=10), st.none()))
    return message


def test_mcp_json_rpc_never_gets_a_5xx_and_always_answers_json_rpc(live):
    created = httpx.post(f"{live.url}/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "openenv/session/create", "params": {"task_id": "medium_kb_reply"}}).json()
    session_ids = [created["result"]["session_id"]]

    @settings(max_examples=120, **FUZZ)
    @given(message=mcp_messages(session_ids), as_mcp_client=st.booleans())
    def fuzz(message, as_mcp_client):
        headers = {"content-type": "application/json"}
        if as_mcp_client:  # the Streamable HTTP dialect of MCP client libraries
            headers.update({"accept": "application/json, text/event-stream", "mcp-protocol-version": "2025-06-18"})
        response = httpx.post(f"{live.url}/mcp", content=json.dumps(message), headers=headers, timeout=30)
        assert response.status_code < 500, f"{message!r:.300} -> {response.status_code} {response.text[:300]}"
        if not as_mcp_client:
            reply = response.json()
            assert reply["jsonrpc"] == "2.0" and ("result" in reply or reply["error"]["message"])
        elif response.status_code >= 400 and response.content:
            assert response.text.strip(), f"{message!r:.300} -> {response.status_code} without a message"

    fuzz()


# --- request size ----------------------------------------------------------------


@pytest.mark.parametrize("path", ["/step", "/reset", "/mcp"])
def test_a_one_megabyte_body_is_refused_with_413_and_a_json_message(live, path):
    body = json.dumps({"action": {"action_type": "reply_ticket", "ticket_id": "E01", "reply_text": "x" * 1_000_000}})
    response = httpx.post(f"{live.url}{path}", content=body, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413
    detail = response.json()["detail"]
    assert f"the limit is {DEFAULT_MAX_BODY_BYTES} bytes" in detail and MAX_BODY_BYTES_VAR in detail


def test_a_streamed_body_without_length_is_cut_off_at_the_limit(live):
    chunks = (b" " * 65_536 for _ in range(64))  # 4 MB, chunked: no Content-Length to check up front
    response = httpx.post(f"{live.url}/step", content=chunks, headers={"content-type": "application/json"}, timeout=30)
    assert response.status_code == 413
    assert "exceeds" in response.json()["detail"]


def test_bodies_within_the_limit_are_served_as_before(live):
    reply = "x" * 200_000  # under 256 KiB: accepted by the server, refused by the episode (4,000 characters at most)
    episode_id = httpx.post(f"{live.url}/reset", json={}).json()["observation"]["episode_id"]
    response = httpx.post(f"{live.url}/step", json={"episode_id": episode_id, "action": {"action_type": "reply_ticket", "ticket_id": "E01", "reply_text": reply}})
    assert response.status_code == 200
    assert "reply_text is 200000 characters; the limit is 4000" in response.json()["observation"]["last_action_error"]


def _echo_app(max_bytes: int):
    async def echo(request: Request) -> JSONResponse:
        return JSONResponse({"received": len(await request.body())})

    return BodySizeLimit(Starlette(routes=[Route("/", echo, methods=["POST"])]), max_bytes=max_bytes)


@pytest.mark.parametrize("size, status", [(0, 200), (1000, 200), (1001, 413)])
def test_the_limit_is_exact_for_declared_lengths(size, status):
    transport = httpx.ASGITransport(app=_echo_app(1000))

    async def post():
        async with httpx.AsyncClient(transport=transport, base_url="http://limits") as client:
            return await client.post("/", content=b"a" * size)

    response = asyncio.run(post())
    assert response.status_code == status
    if status == 200:
        assert response.json() == {"received": size}
    else:
        assert response.json()["detail"].startswith("request body is 1001 bytes; the limit is 1000 bytes")


def test_the_limit_is_exact_for_streamed_bodies():
    async def run(total: int):
        async def stream():
            for _ in range(total // 100):
                yield b"a" * 100

        transport = httpx.ASGITransport(app=_echo_app(1000))
        async with httpx.AsyncClient(transport=transport, base_url="http://limits") as client:
            return await client.post("/", content=stream())

    assert asyncio.run(run(1000)).json() == {"received": 1000}
    refused = asyncio.run(run(1100))
    assert refused.status_code == 413 and "exceeds 1000 bytes" in refused.json()["detail"]


@pytest.mark.parametrize("raw, expected", [(None, DEFAULT_MAX_BODY_BYTES), ("", DEFAULT_MAX_BODY_BYTES), ("1000", 1000), (" 2048 ", 2048)])
def test_the_limit_comes_from_the_environment(monkeypatch, raw, expected):
    if raw is None:
        monkeypatch.delenv(MAX_BODY_BYTES_VAR, raising=False)
    else:
        monkeypatch.setenv(MAX_BODY_BYTES_VAR, raw)
    assert max_body_bytes_from_env() == expected


@pytest.mark.parametrize("raw", ["0", "-5", "1e6", "lots"])
def test_a_nonsense_limit_stops_start_up_with_a_clear_message(monkeypatch, raw):
    monkeypatch.setenv(MAX_BODY_BYTES_VAR, raw)
    with pytest.raises(ValueError, match=f"{MAX_BODY_BYTES_VAR} must be a positive number of bytes, got '{raw}'"):
        max_body_bytes_from_env()


# --- isolation, secrets, CORS ---------------------------------------------------


def test_no_endpoint_shows_one_session_anything_of_another(live):
    with httpx.Client(base_url=live.url, timeout=30) as client:
        a = client.post("/reset", json={"task_id": "hard_mixed_queue", "episode_id": "owner-a"}).json()["observation"]
        b = client.post("/reset", json={"task_id": "easy_classify", "episode_id": "owner-b"}).json()["observation"]
        a_ticket = a["current_ticket"]
        client.post("/step", json={"episode_id": "owner-a", "action": {"action_type": "reply_ticket", "ticket_id": a_ticket["id"], "reply_text": "PRIVATE-REPLY-OF-A"}})
        seen_by_b = [
            client.post("/step", json={"episode_id": "owner-b", "action": {"action_type": "search_kb", "query": "refund"}}).text,
            client.get("/state", params={"episode_id": "owner-b"}).text,
            client.post("/reset", json={"task_id": "easy_classify", "episode_id": "owner-b"}).text,
            client.get("/metadata").text,
            client.get("/schema").text,
            client.get("/health").text,
            client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}).text,
        ]
    for text in seen_by_b:
        for secret_of_a in ("owner-a", a_ticket["subject"], a_ticket["customer"]["email"], "PRIVATE-REPLY-OF-A"):
            assert secret_of_a not in text
    assert b["episode_id"] == "owner-b"


def test_unnamed_sessions_get_unguessable_ids(live):
    ids = [httpx.post(f"{live.url}/reset", json={}).json()["observation"]["episode_id"] for _ in range(5)]
    assert len(set(ids)) == 5
    assert all(len(i) >= 32 and int(i, 16) >= 0 for i in ids)  # 128 random bits, as uuid4().hex


def test_no_cors_headers_are_sent_because_none_are_configured(live):
    origin = {"origin": "https://evil.example"}
    preflight = httpx.options(f"{live.url}/step", headers={**origin, "access-control-request-method": "POST"})
    simple = httpx.get(f"{live.url}/health", headers=origin)
    for response in (preflight, simple):
        assert not any(h.lower().startswith("access-control-") for h in response.headers), dict(response.headers)


def test_no_secret_from_the_environment_reaches_a_response_or_the_log(live):
    assert os.environ.get("HF_TOKEN") != SECRETS["HF_TOKEN"]  # the secrets are the server's alone
    with httpx.Client(base_url=live.url, timeout=30) as client:
        responses = [
            client.get("/openapi.json"), client.get("/metadata"), client.get("/schema"), client.get("/health"),
            client.post("/reset", json={"task_id": "nope"}), client.post("/step", json={"action": "x"}),
            client.get("/state", params={"episode_id": "nope"}), client.post("/step", content=b"{not json"),
            client.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "search_kb"}}),
            client.post("/step", content=b"x" * 300_000), client.get("/web"), client.get("/docs"),
        ]
    log = live.log()
    assert "POST /step" in log  # the log is being written, so an absent secret means something
    for name, value in SECRETS.items():
        assert value not in log, f"{name} appears in the server log"
        for response in responses:
            assert value not in response.text, f"{name} appears in a response to {response.request.url}"
