"""MCP: the agent's actions as tools at /mcp (OpenEnv JSON-RPC and the MCP
transport of a real client library) and over /ws "mcp" messages. An episode
played through tools is the episode /step plays: same rewards, same grade."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from fastmcp import Client
from fastmcp.exceptions import ToolError

from support_env.environment import SupportEnvironment
from support_env.models import ACTION_TYPES, CATEGORIES, SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import Rollout, play
from support_env.episodes.catalogue import TASK_IDS
from support_env.access.mcp_tools import TOOL_NAMES, as_tool_call

from .conftest import HttpEpisode


@pytest.fixture
def server(busy_server):
    """These tests send hundreds of requests: they get a server of their own (see conftest.busy_server)."""
    return busy_server


@pytest.fixture
def http(busy_http):
    return busy_http


def rpc(http: httpx.Client, method: str, **params) -> dict:
    response = http.post("/mcp", json={"jsonrpc": "2.0", "id": 1, "method": method, "params": params})
    assert response.status_code == 200, response.text
    return response.json()


def create_session(http: httpx.Client, **params) -> str:
    reply = rpc(http, "openenv/session/create", **params)
    assert "result" in reply, reply
    return reply["result"]["session_id"]


def in_process(task_id: str) -> Rollout:
    env = SupportEnvironment()
    return play(ReferencePolicy(), lambda: env.reset(task_id=task_id), env.step)


async def play_over_mcp_client(url: str, session_id: str) -> Rollout:
    """The reference policy as an MCP agent: tools only, through fastmcp's Client."""
    async with Client(f"{url}/mcp?session_id={session_id}") as client:

        async def call(name: str, arguments: dict) -> SupportObservation:
            return SupportObservation.model_validate((await client.call_tool(name, arguments)).structured_content)

        policy = ReferencePolicy()
        rollout = Rollout(observations=[await call("get_observation", {})])
        while not rollout.final.done and len(rollout.actions) < 100:
            action = policy.act(rollout.final)
            observation = await call(*as_tool_call(action))
            rollout.actions.append(action)
            rollout.observations.append(observation)
            rollout.rewards.append(observation.reward)
        return rollout


def test_tools_list_has_a_typed_tool_per_action(http):
    tools = {t["name"]: t for t in rpc(http, "tools/list")["result"]["tools"]}
    schema = {name: t["input_schema"] for name, t in tools.items()}  # this JSON-RPC dialect is snake_case (README)

    assert set(tools) == set(TOOL_NAMES) == {*ACTION_TYPES, "get_observation"}
    for name, tool in tools.items():
        assert tool["description"] and "\n" not in tool["description"], tool
        assert set(schema[name]["properties"]) <= set(SupportAction.model_fields), name
        assert all(p.get("description") for p in schema[name]["properties"].values()), name
        assert schema[name].get("additionalProperties") is False
        if name not in ("search_kb", "get_observation"):
            assert "ticket_id" in schema[name]["required"], name
    assert schema["classify_ticket"]["properties"]["category"]["enum"] == list(CATEGORIES)
    assert sorted(schema["classify_ticket"]["required"]) == ["category", "ticket_id"]
    assert schema["search_kb"]["required"] == ["query"] and schema["get_observation"]["properties"] == {}
    assert tools["get_observation"]["annotations"]["read_only_hint"] is True


def test_every_jsonrpc_path_lists_the_same_snake_case_tools_and_mcp_clients_get_the_protocol_names(server, http):
    """OpenEnv's JSON-RPC answers `tools/list` with the MCP library's own dump of each
    tool, camelCase with mcp 1.x: the tools are listed in the snake_case shape the README
    documents on POST /mcp, /ws "mcp" messages and the /mcp WebSocket alike. MCP clients
    get the protocol's names (inputSchema), and every tool keeps its title."""
    over_http = rpc(http, "tools/list")["result"]["tools"]
    message = {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}}

    async def run():
        base = server.url.replace("http", "ws")
        async with websockets.connect(base + "/ws") as ws:
            await ws.send(json.dumps({"type": "mcp", "data": message}))
            over_ws = json.loads(await ws.recv())["data"]["result"]["tools"]
        async with websockets.connect(base + "/mcp") as ws:
            await ws.send(json.dumps(message))
            over_mcp_ws = json.loads(await ws.recv())["result"]["tools"]
        async with Client(f"{server.url}/mcp") as client:
            listed = [tool.model_dump(mode="json", by_alias=True, exclude_none=True) for tool in await client.list_tools()]
        return over_ws, over_mcp_ws, listed

    over_ws, over_mcp_ws, listed = asyncio.run(run())
    assert over_http == over_ws == over_mcp_ws
    for tool in over_http:
        assert {"name", "title", "description", "input_schema", "output_schema", "annotations"} <= set(tool), tool.keys()
        assert not {"inputSchema", "outputSchema"} & set(tool)
        assert set(tool["annotations"]) == {"title", "read_only_hint", "destructive_hint", "idempotent_hint", "open_world_hint"}
        assert tool["input_schema"]["additionalProperties"] is False  # the JSON schemas themselves are untouched
    titles = {tool["name"]: tool["title"] for tool in over_http}
    assert titles["classify_ticket"] == "Classify Ticket" and titles["get_observation"] == "Get Observation"
    assert [(t["name"], t["title"]) for t in listed] == list(titles.items())
    assert all("inputSchema" in t and "readOnlyHint" in t["annotations"] for t in listed)


def test_a_session_can_start_a_task_api_task(http):
    session_id = create_session(http, split="eval", index=4)
    reply = rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)
    observation = SupportObservation.model_validate(reply["result"]["structured_content"])
    assert (observation.task_id, observation.seed, observation.split) == ("medium_kb_reply", 1, "eval")
    refused = rpc(http, "openenv/session/create", split="eval", index=3000)
    assert "index must be an integer in [0, 3000)" in refused["error"]["message"]


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_mcp_client_library_plays_the_same_episode_as_step(server, http, task_id):
    session_id = create_session(http, task_id=task_id)
    over_mcp = asyncio.run(play_over_mcp_client(server.url, session_id))
    episode = HttpEpisode(http)
    over_step = play(ReferencePolicy(), lambda: episode.reset(task_id=task_id), episode.step)
    expected = in_process(task_id)

    assert over_mcp.final.done and over_mcp.grade is not None
    assert over_mcp.grade == over_step.grade == expected.grade
    assert over_mcp.rewards == over_step.rewards == expected.rewards
    assert over_mcp.actions == expected.actions


def test_openenv_jsonrpc_plays_an_episode_in_its_session(http):
    session_id = create_session(http, task_id="medium_kb_reply")

    def call(name: str, arguments: dict) -> SupportObservation:
        reply = rpc(http, "tools/call", name=name, arguments=arguments, session_id=session_id)
        assert "result" in reply, reply
        return SupportObservation.model_validate(reply["result"]["structured_content"])

    rollout = play(ReferencePolicy(), lambda: call("get_observation", {}), lambda a: call(*as_tool_call(a)))

    assert rollout.final.task_id == "medium_kb_reply"
    assert rollout.grade == in_process("medium_kb_reply").grade
    assert json.loads(rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)["result"]["content"][0]["text"])["done"]
    assert rpc(http, "openenv/session/close", session_id=session_id)["result"]["closed"] is True
    gone = rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)
    assert "Unknown session_id" in gone["error"]["message"]


def test_websocket_mcp_messages_act_on_the_connection_episode(server):
    async def run() -> tuple[Rollout, dict]:
        async with websockets.connect(server.url.replace("http", "ws") + "/ws") as ws:

            async def send(message: dict) -> dict:
                await ws.send(json.dumps(message))
                return json.loads(await ws.recv())

            async def rpc_call(name: str, arguments: dict) -> dict:
                return (await send({"type": "mcp", "data": {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                            "params": {"name": name, "arguments": arguments}}}))["data"]

            async def call(name: str, arguments: dict) -> SupportObservation:
                return SupportObservation.model_validate((await rpc_call(name, arguments))["result"]["structured_content"])

            before_reset = await rpc_call("get_observation", {})  # as for step: no episode until a reset
            assert "call reset" in before_reset["error"]["message"]
            reset = await send({"type": "reset", "data": {"task_id": "hard_mixed_queue"}})
            assert reset["data"]["observation"]["task_id"] == "hard_mixed_queue"
            policy = ReferencePolicy()
            rollout = Rollout(observations=[await call("get_observation", {})])
            while not rollout.final.done and len(rollout.actions) < 100:
                action = policy.act(rollout.final)
                rollout.actions.append(action)
                rollout.observations.append(await call(*as_tool_call(action)))
                rollout.rewards.append(rollout.final.reward)
            return rollout, (await send({"type": "state"}))["data"]

    rollout, state = asyncio.run(run())
    expected = in_process("hard_mixed_queue")
    assert rollout.grade == expected.grade and rollout.rewards == expected.rewards
    assert state["done"] and state["step_count"] == len(expected.actions)


def test_jsonrpc_over_the_mcp_websocket_plays_the_episode_named_in_the_url(server):
    base = server.url.replace("http", "ws") + "/mcp"

    async def call(ws, name: str, **arguments) -> dict:
        await ws.send(json.dumps({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": name, "arguments": arguments}}))
        return json.loads(await ws.recv())

    async def run():
        async with websockets.connect(f"{base}?task_id=medium_kb_reply") as ws:
            first = SupportObservation.model_validate((await call(ws, "get_observation"))["result"]["structured_content"])
            searched = await call(ws, "search_kb", query=first.current_ticket.subject)
        async with websockets.connect(base) as ws:
            default = (await call(ws, "get_observation"))["result"]["structured_content"]
        async with websockets.connect(f"{base}?task_id=nope") as ws:
            refused = json.loads(await ws.recv())
        return first, searched["result"]["structured_content"], default, refused

    first, searched, default, refused = asyncio.run(run())
    assert first.task_id == "medium_kb_reply" and searched["steps_remaining"] == first.steps_remaining - 1
    assert default["task_id"] == "easy_classify"
    assert "valid task ids" in refused["error"]["message"]


def test_clients_hanging_up_leave_no_traceback_in_the_server_log(server):
    async def hang_up(path: str, message: dict) -> None:
        async with websockets.connect(server.url.replace("http", "ws") + path) as ws:
            await ws.send(json.dumps(message))
            await ws.recv()

    async def run():
        for _ in range(3):
            await hang_up("/ws", {"type": "reset", "data": {}})
            await hang_up("/mcp", {"jsonrpc": "2.0", "id": 1, "method": "tools/list", "params": {}})
        await asyncio.sleep(0.5)  # let the server finish closing

    server.output_tail.clear()
    asyncio.run(run())
    log = "".join(server.output_tail)
    assert log.count('"WebSocket /ws" [accepted]') >= 3 and log.count('"WebSocket /mcp" [accepted]') >= 3
    assert "Traceback" not in log, log[-3000:]


def test_sessions_are_isolated_and_start_the_requested_task(http):
    easy, hard = create_session(http), create_session(http, task_id="hard_mixed_queue")

    def call(session_id: str, name: str, **arguments) -> SupportObservation:
        reply = rpc(http, "tools/call", name=name, arguments=arguments, session_id=session_id)
        return SupportObservation.model_validate(reply["result"]["structured_content"])

    first = call(easy, "get_observation")
    after = call(easy, "classify_ticket", ticket_id=first.current_ticket.id, category="billing")

    assert first.task_id == "easy_classify" and call(hard, "get_observation").task_id == "hard_mixed_queue"
    assert after.steps_remaining == first.steps_remaining - 1
    assert call(hard, "get_observation").steps_remaining == first.steps_remaining
    assert call(easy, "get_observation") == after  # reading takes no step


def test_rule_breaking_calls_are_invalid_actions_as_over_step(server, http):
    session_id = create_session(http, task_id="easy_classify")

    async def run() -> SupportObservation:
        async with Client(f"{server.url}/mcp?session_id={session_id}") as client:
            result = await client.call_tool("close_ticket", {"ticket_id": "H99"})
            return SupportObservation.model_validate(result.structured_content)

    observation = asyncio.run(run())
    over_step = HttpEpisode(http)
    over_step.reset(task_id="easy_classify")
    expected = over_step.step(SupportAction(action_type="close_ticket", ticket_id="H99"))

    assert observation.reward == expected.reward == -0.2
    assert observation.invalid_actions == 1 and observation.last_action_error == expected.last_action_error


def test_arguments_outside_the_schema_are_refused_without_a_step(server, http):
    session_id = create_session(http)

    async def run():
        async with Client(f"{server.url}/mcp?session_id={session_id}") as client:
            with pytest.raises(ToolError, match="category"):
                await client.call_tool("classify_ticket", {"ticket_id": "E01", "category": "sales"})
            with pytest.raises(ToolError, match="ticket_id"):
                await client.call_tool("close_ticket", {})
            return SupportObservation.model_validate((await client.call_tool("get_observation", {})).structured_content)

    observation = asyncio.run(run())
    assert observation.conversation_history == [] and observation.invalid_actions == 0


def test_mcp_errors_say_how_to_get_a_session(server, http):
    no_session = rpc(http, "tools/call", name="get_observation", arguments={})
    assert "openenv/session/create" in no_session["error"]["message"]
    bad_task = rpc(http, "openenv/session/create", task_id="nope")
    assert "valid task ids: easy_classify, medium_kb_reply, hard_mixed_queue" in bad_task["error"]["message"]
    assert "unknown params ['colour']" in rpc(http, "openenv/session/create", colour="red")["error"]["message"]

    async def run():
        async with Client(f"{server.url}/mcp") as client:
            assert {t.name for t in await client.list_tools()} == set(TOOL_NAMES)
            with pytest.raises(ToolError, match=r"no session: .*openenv/session/create.*/mcp\?session_id="):
                await client.call_tool("get_observation", {})
        async with Client(f"{server.url}/mcp?session_id=not-a-session") as client:
            with pytest.raises(ToolError, match="Unknown session_id: not-a-session .*expire"):
                await client.call_tool("get_observation", {})

    asyncio.run(run())


def test_an_environment_used_through_its_tools_is_freed_once_closed():
    """FastMCP caches per tool function: the tools are shared by all
    environments, so a closed session's environment does not stay alive."""
    import gc
    import weakref

    from support_env.access.mcp_tools import SupportToolEnvironment

    async def use(env: SupportToolEnvironment) -> str:
        env.reset(task_id="easy_classify")
        async with env.mcp_session() as client:
            await client.call_tool("classify_ticket", {"ticket_id": "E01", "category": "billing"})
            return (await client.call_tool("get_observation", {})).structured_content["conversation_history"][0]["action"]

    envs = [SupportToolEnvironment() for _ in range(3)]
    assert [asyncio.run(use(env)) for env in envs] == ["classify_ticket(E01, billing)"] * 3
    refs = [weakref.ref(env) for env in envs]
    for env in envs:
        env.close()
    del envs, env
    gc.collect()
    assert all(ref() is None for ref in refs)
