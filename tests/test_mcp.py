"""MCP: the agent's actions as tools at /mcp (OpenEnv JSON-RPC and the MCP
transport of a real client library) and over /ws "mcp" messages. An episode
played through tools is the episode /step plays: same rewards, same grade. An
action tool answers with what its step produced, never the whole observation;
get_observation shows the whole observation."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
import websockets
from fastmcp import Client
from fastmcp.exceptions import ToolError

from support_env.access import compact
from support_env.environment import SupportEnvironment
from support_env.models import ACTION_TYPES, CATEGORIES, SupportAction, SupportObservation
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import Rollout, play
from support_env.episodes.catalogue import TASK_IDS
from support_env.access.mcp_tools import TOOL_NAMES, SupportToolEnvironment, as_tool_call

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


class ReferenceWith:
    """The reference policy, with `invalid` (if any) played after its first step."""

    def __init__(self, invalid: SupportAction | None = None):
        self.policy, self.invalid = ReferencePolicy(), invalid

    def act(self, observation: SupportObservation) -> SupportAction:
        if self.invalid is not None and len(observation.conversation_history) == 1:
            return self.invalid
        return self.policy.act(observation)


def in_process(task_id: str | None = None, invalid: SupportAction | None = None, **episode) -> Rollout:
    env = SupportEnvironment()
    return play(ReferenceWith(invalid), lambda: env.reset(task_id=task_id, **episode), env.step)


# What an action result may hold besides the outcome, and the observation's fields it
# shares: any other field of the observation in a result means the whole observation
# (or part of it) was sent again.
ALWAYS = {"result", "reward", "done", "error"}
SHARED_WITH_THE_OBSERVATION = {"reward", "done", "grade", "tickets_remaining"}


def expected_result(action: SupportAction, observation: SupportObservation) -> dict:
    """What an action's result must carry, read straight from the observation that
    followed it (independently of compact.produced): the pieces the action brought
    into view and nothing else."""
    expected = {"reward": observation.reward, "done": observation.done, "error": observation.last_action_error}
    ticket = observation.current_ticket
    if observation.last_action_error is None:
        if action.action_type == "search_kb":
            expected["search_hits"] = [r.article_id for r in observation.kb_search_results]
        elif action.action_type == "lookup_record":
            expected["record"] = {"name": action.record, "data": observation.records[action.record]}
        elif action.action_type == "reply_ticket":
            agent_turns = [i for i, m in enumerate(ticket.thread) if m.author == "agent"]
            expected["customer_words"] = [m.text for m in ticket.thread[agent_turns[-1] + 1:]]
        elif action.action_type == "close_ticket" and not observation.done:
            expected["next_ticket"] = ticket.model_dump(mode="json")
            expected["tickets_remaining"] = observation.tickets_remaining
    if observation.done:
        expected["grade"] = observation.grade.model_dump(mode="json")
    return expected


def check_result(action: SupportAction, result: dict, observation: SupportObservation) -> None:
    """`result` (an action tool's structured content) carries exactly what `action`
    produced, as `compact.structured` selects it, and not the whole observation."""
    assert result == compact.structured(action, observation)
    assert ALWAYS <= set(result) and set(result) & set(SupportObservation.model_fields) <= SHARED_WITH_THE_OBSERVATION, set(result)
    expected = expected_result(action, observation)
    assert set(result) == ALWAYS | set(expected), (action.action_type, set(result))
    assert {k: result[k] for k in ("reward", "done", "error")} == {k: expected[k] for k in ("reward", "done", "error")}
    if "search_hits" in expected:
        assert [h["article_id"] for h in result["search_hits"]] == expected.pop("search_hits")
        assert all(h["facts"] for h in result["search_hits"] if h["status"] == "current")
        assert not any("text" in h for h in result["search_hits"])  # never the articles' full text
    for key in set(expected) - ALWAYS:
        assert result[key] == expected[key], key
    assert len(json.dumps(result)) < len(observation.model_dump_json()) or observation.done


async def replay_over_mcp_client(url: str, session_id: str, actions: list[SupportAction]) -> tuple[SupportObservation, list[dict], SupportObservation]:
    """An episode's actions as tool calls through fastmcp's Client: the first
    observation, each action's result, and the last observation."""
    async with Client(f"{url}/mcp?session_id={session_id}") as client:

        async def observe() -> SupportObservation:
            return SupportObservation.model_validate((await client.call_tool("get_observation", {})).structured_content)

        first, results = await observe(), []
        for action in actions:
            answer = await client.call_tool(*as_tool_call(action))
            assert not answer.is_error and json.loads(answer.content[0].text) == answer.structured_content  # what a model reads
            results.append(answer.structured_content)
        return first, results, await observe()


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
    observation_output = tools["get_observation"]["output_schema"]["properties"]
    assert {"objective", "current_ticket", "kb_search_results", "records", "conversation_history"} <= set(observation_output)
    for name in ACTION_TYPES:  # an action answers with what it produced
        output = tools[name]["output_schema"]
        assert set(output["properties"]) == set(compact.ActionResult.model_fields), name
        assert set(output["required"]) == {"result", "reward", "done", "error"}, name


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
    refused = rpc(http, "openenv/session/create", split="eval", index=4000)
    assert "index must be an integer in [0, 4000)" in refused["error"]["message"]


@pytest.mark.parametrize("task_id", TASK_IDS)
def test_mcp_client_library_plays_the_same_episode_as_step(server, http, task_id):
    session_id = create_session(http, task_id=task_id)
    expected = in_process(task_id)
    first, results, last = asyncio.run(replay_over_mcp_client(server.url, session_id, expected.actions))
    episode = HttpEpisode(http)
    over_step = play(ReferencePolicy(), lambda: episode.reset(task_id=task_id), episode.step)

    assert first.model_copy(update={"episode_id": ""}) == expected.observations[0].model_copy(update={"episode_id": ""})
    assert last.done and last.grade is not None and results[-1]["done"]
    assert last.grade == over_step.grade == expected.grade
    assert [r["reward"] for r in results] == over_step.rewards == expected.rewards
    assert over_step.actions == expected.actions
    for action, result, observation in zip(expected.actions, results, expected.observations[1:]):
        check_result(action, result, observation)


def test_openenv_jsonrpc_plays_an_episode_in_its_session(http):
    session_id = create_session(http, task_id="medium_kb_reply")
    results = []

    def call(name: str, arguments: dict) -> dict:
        reply = rpc(http, "tools/call", name=name, arguments=arguments, session_id=session_id)
        assert "result" in reply, reply
        return reply["result"]["structured_content"]

    def observe() -> SupportObservation:
        return SupportObservation.model_validate(call("get_observation", {}))

    def step(action: SupportAction) -> SupportObservation:
        results.append(call(*as_tool_call(action)))
        return observe()

    rollout = play(ReferencePolicy(), observe, step)

    assert rollout.final.task_id == "medium_kb_reply"
    assert rollout.grade == in_process("medium_kb_reply").grade
    for action, result, observation in zip(rollout.actions, results, rollout.observations[1:]):
        check_result(action, result, observation)
    assert json.loads(rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)["result"]["content"][0]["text"])["done"]
    assert rpc(http, "openenv/session/close", session_id=session_id)["result"]["closed"] is True
    gone = rpc(http, "tools/call", name="get_observation", arguments={}, session_id=session_id)
    assert "Unknown session_id" in gone["error"]["message"]


def test_websocket_mcp_messages_act_on_the_connection_episode(server):
    async def run() -> tuple[list[dict], SupportObservation, dict]:
        async with websockets.connect(server.url.replace("http", "ws") + "/ws") as ws:

            async def send(message: dict) -> dict:
                await ws.send(json.dumps(message))
                return json.loads(await ws.recv())

            async def rpc_call(name: str, arguments: dict) -> dict:
                return (await send({"type": "mcp", "data": {"jsonrpc": "2.0", "id": 1, "method": "tools/call",
                                                            "params": {"name": name, "arguments": arguments}}}))["data"]

            async def call(name: str, arguments: dict) -> dict:
                return (await rpc_call(name, arguments))["result"]["structured_content"]

            before_reset = await rpc_call("get_observation", {})  # as for step: no episode until a reset
            assert "call reset" in before_reset["error"]["message"]
            reset = await send({"type": "reset", "data": {"task_id": "hard_mixed_queue"}})
            assert reset["data"]["observation"]["task_id"] == "hard_mixed_queue"
            results = [await call(*as_tool_call(action)) for action in expected.actions]
            last = SupportObservation.model_validate(await call("get_observation", {}))
            return results, last, (await send({"type": "state"}))["data"]

    expected = in_process("hard_mixed_queue")
    results, last, state = asyncio.run(run())
    assert last.grade == expected.grade and [r["reward"] for r in results] == expected.rewards
    assert state["done"] and state["step_count"] == len(expected.actions)
    for action, result, observation in zip(expected.actions, results, expected.observations[1:]):
        check_result(action, result, observation)


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
    assert first.task_id == "medium_kb_reply" and searched["result"] == "found 3 articles"
    assert searched["search_hits"] and "steps_remaining" not in searched
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

    def call(session_id: str, name: str, **arguments) -> dict:
        return rpc(http, "tools/call", name=name, arguments=arguments, session_id=session_id)["result"]["structured_content"]

    def observe(session_id: str) -> SupportObservation:
        return SupportObservation.model_validate(call(session_id, "get_observation"))

    first = observe(easy)
    classified = call(easy, "classify_ticket", ticket_id=first.current_ticket.id, category="billing")
    after = observe(easy)

    assert first.task_id == "easy_classify" and observe(hard).task_id == "hard_mixed_queue"
    assert classified["result"] == f"classified {first.current_ticket.id} as billing" and classified["reward"] == after.reward
    assert after.steps_remaining == first.steps_remaining - 1
    assert observe(hard).steps_remaining == first.steps_remaining
    assert observe(easy) == after  # reading takes no step


def test_rule_breaking_calls_are_invalid_actions_as_over_step(server, http):
    session_id = create_session(http, task_id="easy_classify")

    async def run() -> tuple[dict, SupportObservation]:
        async with Client(f"{server.url}/mcp?session_id={session_id}") as client:
            result = await client.call_tool("close_ticket", {"ticket_id": "H99"})
            assert not result.is_error  # an invalid action is a step, not a tool error
            return result.structured_content, SupportObservation.model_validate((await client.call_tool("get_observation", {})).structured_content)

    result, observation = asyncio.run(run())
    over_step = HttpEpisode(http)
    over_step.reset(task_id="easy_classify")
    expected = over_step.step(SupportAction(action_type="close_ticket", ticket_id="H99"))

    assert result == {"result": f"invalid: {expected.last_action_error}", "reward": -0.2, "done": False, "error": expected.last_action_error}
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


# --- action results: what the step produced, in process ------------------------------------------

# Episodes that between them use every action: a seeded hard queue with a record-backed
# case, and the three case tasks.
EVERY_ACTION = [
    {"task_id": "hard_mixed_queue", "seed": 3, "split": "train"},
    {"task_id": "duplicate_charge_refund"},
    {"task_id": "account_takeover_fraud"},
    {"task_id": "damaged_item_replacement"},
]


async def replay_in_process(env: SupportToolEnvironment, actions: list[SupportAction]) -> tuple[str, list[tuple[dict, str]]]:
    """`actions` through the environment's own MCP client: the first get_observation's
    text, then each action's structured result and text (what a model reads)."""
    async with env.mcp_session() as client:
        first = (await client.call_tool("get_observation", {})).content[0].text
        answers = [await client.call_tool(*as_tool_call(action)) for action in actions]
    return first, [(answer.structured_content, answer.content[0].text) for answer in answers]


@pytest.mark.parametrize("episode", EVERY_ACTION, ids=lambda e: e["task_id"])
def test_each_action_result_carries_exactly_what_the_action_produced(episode):
    expected = in_process(**episode)
    env = SupportToolEnvironment()
    env.reset(**episode)
    first, results = asyncio.run(replay_in_process(env, expected.actions))
    assert SupportObservation.model_validate_json(first).objective == expected.observations[0].objective  # everything, once
    for action, (result, text), observation in zip(expected.actions, results, expected.observations[1:]):
        check_result(action, result, observation)
        assert json.loads(text) == result
    assert results[-1][0]["grade"]["score"] == 1.0
    env.close()


def test_the_episodes_use_every_action():
    used = set()
    for episode in EVERY_ACTION:
        env = SupportEnvironment()
        used |= {a.action_type for a in play(ReferencePolicy(), lambda: env.reset(**episode), env.step).actions}
    assert used == set(ACTION_TYPES)


def test_an_invalid_action_answers_with_its_error_and_penalty_only():
    invalid = SupportAction(action_type="lookup_record", ticket_id="M01", record="invoices")  # medium_kb_reply has no records
    expected = in_process("medium_kb_reply", invalid=invalid)
    env = SupportToolEnvironment()
    env.reset(task_id="medium_kb_reply")
    _, results = asyncio.run(replay_in_process(env, expected.actions))
    observation = expected.observations[2]
    assert expected.actions[1] == invalid and observation.last_action_error and observation.invalid_actions == 1
    error = observation.last_action_error
    assert results[1][0] == {"result": f"invalid: {error}", "reward": -0.2, "done": False, "error": error}
    for action, (result, _), after in zip(expected.actions, results, expected.observations[1:]):
        check_result(action, result, after)
    env.close()


def test_over_a_hard_episode_results_cost_at_most_a_third_of_whole_observations():
    """The characters a model reads over MCP in a hard_mixed_queue episode: the first
    get_observation, then each action's result, against each action answering with the
    whole observation (as it did before)."""
    for seed in (0, 1):
        expected = in_process("hard_mixed_queue", seed=seed)
        env = SupportToolEnvironment()
        env.reset(task_id="hard_mixed_queue", seed=seed)
        first, results = asyncio.run(replay_in_process(env, expected.actions))
        compact_chars = len(first) + sum(len(text) for _, text in results)
        whole_chars = sum(len(o.model_dump_json()) for o in expected.observations)
        assert expected.grade.score == 1.0 and compact_chars * 3 <= whole_chars, (seed, compact_chars, whole_chars)
        env.close()
