"""The agent's actions as MCP tools.

Each action tool is a typed function that builds a `SupportAction`; the
environment runs it through `SupportEnvironment.step`, so an MCP agent plays
by exactly the rules of `/step` (same rewards, same invalid actions, same
grade). An action tool returns what its step produced, not the whole
observation again (`compact.ActionResult`, chosen by `compact.produced`, as the
TRL adapter's texts are): the outcome in one line, the reward, `done`, the
error; and only what the action brought into view: search hits with their fact
lines, the record looked up, the customer's answer, the next ticket after a
close, the grade at the end. `get_observation` returns the whole observation.

Arguments that do not match a tool's input schema (a missing argument, a
category outside the three) are refused by the MCP layer before the episode
sees them, as HTTP refuses a malformed body with 422: no step is taken.
Everything else is judged by the episode.

Starting an episode is simulation control, not a tool: the session an agent
acts in is created (and its task chosen) by whoever runs the agent, see
`server/mcp_routes.py`. `get_observation` shows the latest observation again
without taking a step, so an agent can read its first ticket.
"""

import copy
import functools
import inspect
import json
import re
import weakref
from contextlib import asynccontextmanager
from contextvars import ContextVar
from typing import Annotated, Any, Awaitable, Callable, Literal, Optional, Union

from fastmcp import Client, FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_context
from fastmcp.tools import Tool
from fastmcp.utilities.json_schema import dereference_refs
from mcp.types import Tool as McpTool
from mcp.types import ToolAnnotations
from pydantic import Field

from ..environment import EpisodeNotStarted, SupportEnvironment
from ..models import CATEGORIES, RECORDS, RESOLUTIONS, SupportAction, SupportObservation
from . import compact
from .compact import ActionResult

SERVER_NAME = "support_env"
INSTRUCTIONS = (
    "You work the support queue of Stackwell Cloud, one ticket at a time. Call get_observation to read the "
    "current ticket and the task objective, then classify, search the knowledge base, look up the customer's "
    "records, reply, act on the account or escalate when the case calls for it, and close each ticket. Each action tool "
    "returns what it produced: its outcome, reward and error, the search hits' facts, the record, the customer's answer, "
    "the next ticket after a close, and the grade once the queue is done; get_observation shows everything again."
)


def _described(field: str) -> Any:
    """The argument's description, taken from `SupportAction` (one source of truth)."""
    return Field(description=SupportAction.model_fields[field].description)


TicketId = Annotated[str, _described("ticket_id")]


def classify_ticket(ticket_id: TicketId, category: Annotated[Literal[CATEGORIES], _described("category")]) -> SupportAction:
    """Classify the current ticket as billing, technical or account (final: one classification per ticket)."""
    return SupportAction(action_type="classify_ticket", ticket_id=ticket_id, category=category)


def search_kb(query: Annotated[str, _described("query")]) -> SupportAction:
    """Search the policy knowledge base; returns the top 3 articles: id, title, status and, for current ones, the lines that state facts."""
    return SupportAction(action_type="search_kb", query=query)


def reply_ticket(ticket_id: TicketId, reply_text: Annotated[str, _described("reply_text")]) -> SupportAction:
    """Send a reply to the customer of the current ticket."""
    return SupportAction(action_type="reply_ticket", ticket_id=ticket_id, reply_text=reply_text)


def escalate_ticket(ticket_id: TicketId, reason: Annotated[str, _described("reason")]) -> SupportAction:
    """Escalate the current ticket to the on-call engineering team (genuine emergencies only; once per ticket)."""
    return SupportAction(action_type="escalate_ticket", ticket_id=ticket_id, reason=reason)


def close_ticket(
    ticket_id: TicketId, resolution: Annotated[Optional[Literal[RESOLUTIONS]], _described("resolution")] = None
) -> SupportAction:
    """Close the current ticket once it is handled (classified, replied to or escalated) and move to the next."""
    return SupportAction(action_type="close_ticket", ticket_id=ticket_id, resolution=resolution)


def lookup_record(
    ticket_id: TicketId,
    record: Annotated[Literal[RECORDS], _described("record")],
    account_id: Annotated[Optional[str], _described("account_id")] = None,
) -> SupportAction:
    """Look up one of the current customer's records (account, invoices, API keys, usage, audit log, incidents, orders)."""
    return SupportAction(action_type="lookup_record", ticket_id=ticket_id, record=record, account_id=account_id)


def issue_refund(
    ticket_id: TicketId, invoice_id: Annotated[str, _described("invoice_id")], amount: Annotated[float, _described("amount")]
) -> SupportAction:
    """Refund an invoice of the current customer (an account operation: do it only when the case calls for it)."""
    return SupportAction(action_type="issue_refund", ticket_id=ticket_id, invoice_id=invoice_id, amount=amount)


def revoke_api_key(ticket_id: TicketId, key_id: Annotated[str, _described("key_id")]) -> SupportAction:
    """Revoke one of the current customer's API keys (an account operation: do it only when the case calls for it)."""
    return SupportAction(action_type="revoke_api_key", ticket_id=ticket_id, key_id=key_id)


def lock_account(ticket_id: TicketId) -> SupportAction:
    """Lock the current customer's account (an account operation: do it only when the case calls for it)."""
    return SupportAction(action_type="lock_account", ticket_id=ticket_id)


def send_replacement(ticket_id: TicketId, order_id: Annotated[str, _described("order_id")]) -> SupportAction:
    """Ship a replacement for one of the current customer's orders (an account operation: only when the case calls for it)."""
    return SupportAction(action_type="send_replacement", ticket_id=ticket_id, order_id=order_id)


ACTION_TOOLS: dict[str, Callable[..., SupportAction]] = {
    tool.__name__: tool
    for tool in (
        classify_ticket, search_kb, reply_ticket, escalate_ticket, close_ticket,
        lookup_record, issue_refund, revoke_api_key, lock_account, send_replacement,
    )
}
OBSERVATION_TOOL = "get_observation"
OBSERVATION_TOOL_DESCRIPTION = (
    "Show the whole latest observation (objective, current ticket, search results in full, records, history, reward, "
    "grade) without taking a step."
)
TOOL_NAMES = (*ACTION_TOOLS, OBSERVATION_TOOL)


def as_tool_call(action: SupportAction) -> tuple[str, dict[str, Any]]:
    """The MCP tool call (name, arguments) for `action`, for agents whose
    policies produce `SupportAction`s (like the reference policy)."""
    return action.action_type, action.model_dump(exclude_none=True, exclude={"action_type", "metadata"})


# The episode a session being created starts with (reset keyword arguments).
# Set by the /mcp route for `openenv/session/create`; read in `mcp_session`,
# which OpenEnv enters in that same request while it creates the session.
EPISODE_START: ContextVar[Optional[dict[str, Any]]] = ContextVar("support_env_episode_start", default=None)

# How a tool server runs a call: the tool's name and its validated arguments in,
# the tool's result out: for get_observation the observation, for an action tool
# what it produced (`compact.structured`), either as a model or as its JSON dict.
# Sync for an environment in this process, async for a relay.
ToolOutput = Union[SupportObservation, dict[str, Any]]
Runner = Callable[[str, dict[str, Any]], Union[ToolOutput, Awaitable[ToolOutput]]]


def build_tool_server(run: Runner, name: str = SERVER_NAME) -> FastMCP:
    """A FastMCP server with every tool, each delegating to `run` (the relay at
    `/mcp` is one). The input schemas come from the typed functions above, so
    every server built here lists the same tools with the same schemas."""
    return _serve(_tool_functions(run), name)


def _tool_functions(run: Runner) -> dict[str, Callable[..., Any]]:
    functions = {name: _delegate(name, inspect.signature(make_action), run) for name, make_action in ACTION_TOOLS.items()}
    functions[OBSERVATION_TOOL] = _delegate(OBSERVATION_TOOL, inspect.Signature(), run)
    return functions


def _serve(functions: dict[str, Callable[..., Any]], name: str = SERVER_NAME) -> FastMCP:
    return _server_with(_tools_of(functions), name)


def _tools_of(functions: dict[str, Callable[..., Any]]) -> list[Tool]:
    """The MCP tools for `functions`, built as `FastMCP.tool` builds them and
    with their schemas' `$ref`s already inlined.

    Both steps are slow and would otherwise be repeated: deriving a tool's
    schemas takes ~7 ms, so tools meant for many servers are built once
    (`environment_tools`) and added to each; and FastMCP inlines `$ref`s on
    every `tools/list` (which a client also sends before its first call),
    ~15 ms per tool for the observation schema. Inlined here once, the listing
    is the same and FastMCP finds nothing left to do."""
    tools, inlined = [], {}
    for tool_name, function in functions.items():
        read_only = tool_name == OBSERVATION_TOOL
        tool = Tool.from_function(
            function,
            name=tool_name,
            title=tool_name.replace("_", " ").title(),  # "Classify Ticket", as FastMCP 4 derived it
            description=OBSERVATION_TOOL_DESCRIPTION if read_only else inspect.getdoc(ACTION_TOOLS[tool_name]),
            annotations=ToolAnnotations(readOnlyHint=read_only, idempotentHint=read_only, openWorldHint=False),
            task=False,  # FastMCP's default for a server's tools
            run_in_thread=True,
        )
        updates = {}
        for name in ("parameters", "output_schema"):
            schema = getattr(tool, name)
            if schema is not None and "$defs" in json.dumps(schema):
                key = json.dumps(schema, sort_keys=True)
                if key not in inlined:  # the action tools share one output schema
                    inlined[key] = dereference_refs(schema)
                updates[name] = copy.deepcopy(inlined[key])
        tools.append(tool.model_copy(update=updates) if updates else tool)
    return tools


def _server_with(tools: list[Tool], name: str = SERVER_NAME) -> FastMCP:
    server = FastMCP(name, instructions=INSTRUCTIONS)
    for tool in tools:
        server.add_tool(tool)
    return server


def _delegate(tool_name: str, signature: inspect.Signature, run: Runner) -> Callable[..., Any]:
    """A function with `signature` (so FastMCP derives the input schema from it)
    that hands its arguments to `run`. Its return annotation gives the output
    schema: the observation for get_observation, `ActionResult` for an action."""
    if inspect.iscoroutinefunction(run):

        async def tool(**arguments: Any) -> ToolOutput:
            return await run(tool_name, arguments)

    else:

        def tool(**arguments: Any) -> ToolOutput:
            return run(tool_name, arguments)

    returns = SupportObservation if tool_name == OBSERVATION_TOOL else ActionResult
    tool.__name__ = tool_name
    tool.__signature__ = signature.replace(return_annotation=returns)
    tool.__annotations__ = {**{p.name: p.annotation for p in signature.parameters.values()}, "return": returns}
    return tool


def _snake_case(name: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", name).lower()


class WireTool(McpTool):
    """An MCP tool whose plain `model_dump()` has snake_case keys (`input_schema`,
    `annotations.read_only_hint`), as OpenEnv's JSON-RPC `tools/list` has always
    answered and the README documents.

    OpenEnv answers `tools/list` with `tool.model_dump()` of what the session's
    MCP client lists. With mcp 2.x (under openenv-core 0.3) that dump was
    snake_case; mcp 1.x, which openenv 0.10 requires (through fastmcp < 4), names
    its fields in camelCase. The MCP transport itself is unaffected: there the
    SDK serialises by alias (`inputSchema`), as the protocol specifies. Only the
    keys of the tool, its annotations, execution and icons change; the JSON
    schemas inside are sent as they are."""

    def model_dump(self, **kwargs: Any) -> dict[str, Any]:
        data = super().model_dump(**kwargs)
        if kwargs.get("by_alias"):
            return data
        snake = {}
        for key, value in data.items():
            if key in ("annotations", "execution") and isinstance(value, dict):
                value = {_snake_case(k): v for k, v in value.items()}
            elif key == "icons" and isinstance(value, list):
                value = [{_snake_case(k): v for k, v in icon.items()} if isinstance(icon, dict) else icon for icon in value]
            snake[_snake_case(key)] = value
        return snake


class ToolClient(Client):
    """The in-process client of an environment's tool server, listing `WireTool`s."""

    async def list_tools(self, *args: Any, **kwargs: Any) -> list[McpTool]:
        tools = await super().list_tools(*args, **kwargs)
        return [WireTool.model_validate(tool.model_dump(by_alias=True)) for tool in tools]


class SupportToolEnvironment(SupportEnvironment):
    """`SupportEnvironment` with its actions served as MCP tools.

    OpenEnv's server finds `mcp_client` / `mcp_session` on the session's
    environment and routes `/mcp` and `/ws` "mcp" messages to it; the tools act
    on this instance, so each session has its own episode. Tools need an
    episode: `openenv/session/create` starts one (see `mcp_session`), and over
    /ws a `reset` message does, as before a `step`.

    The tool server is built when MCP is first used, not with the environment:
    OpenEnv makes one of these for every /ws connection, and most never send an
    "mcp" message (a connected tool server costs ~0.3 MB and a few ms). Each
    environment still gets a server and client of its own, so no session can
    reach another's episode; only the tool definitions are shared.
    """

    def __init__(self, *args: Any, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self._latest: Optional[SupportObservation] = None
        self._closed = False
        self._mcp_server: Optional[FastMCP] = None
        self._mcp_client: Optional[Client] = None
        self._mcp_contexts = 0  # open mcp_session() contexts
        self._mcp_held: Optional[Client] = None  # connected from first use until the last context exits

    @property
    def mcp_server(self) -> Optional[FastMCP]:
        """This environment's tool server, built on first use; None once closed."""
        if self._mcp_server is None and not self._closed:
            # The tool functions are shared by every environment: FastMCP caches
            # per function, so per-instance closures would keep closed sessions'
            # environments alive. A call finds its environment through its server.
            server = _server_with(environment_tools())
            _ENVIRONMENT_OF[server] = weakref.ref(self)
            self._mcp_server, self._mcp_client = server, ToolClient(server)
        return self._mcp_server

    @property
    def mcp_client(self) -> Optional[Client]:
        """An in-process client of `mcp_server` (built with it); None once closed."""
        return self._mcp_client if self.mcp_server is not None else None

    def reset(self, *args: Any, **kwargs: Any) -> SupportObservation:
        self._latest = super().reset(*args, **kwargs)
        return self._latest

    def step(self, action: SupportAction, *args: Any, **kwargs: Any) -> SupportObservation:
        self._latest = super().step(action, *args, **kwargs)
        return self._latest

    def _run_tool(self, tool_name: str, arguments: dict[str, Any]) -> ToolOutput:
        if self._latest is None:
            raise ToolError(str(EpisodeNotStarted()))  # an expected refusal, not a server fault
        if tool_name == OBSERVATION_TOOL:
            return self._latest
        action = ACTION_TOOLS[tool_name](**arguments)
        return compact.structured(action, self.step(action))

    @asynccontextmanager
    async def mcp_session(self):
        """Held open by OpenEnv for the life of a session. A session created
        by `openenv/session/create` starts its episode here, before any tool
        call (`EPISODE_START`); a /ws connection starts one with `reset`.

        Yields the connected client once there is an episode or MCP has been
        used. The context OpenEnv opens for a new /ws connection has neither,
        so it yields None and connects nothing; OpenEnv's first "mcp" message
        then reads `mcp_client` (building it), finds it not connected and opens
        another context, which connects and keeps the connection open until the
        session's last context exits."""
        if self._closed:
            raise RuntimeError("the environment is closed")
        requested = EPISODE_START.get()
        if requested is not None:
            self.reset(**requested)
        self._mcp_contexts += 1
        try:
            if self._mcp_client is None and self._latest is None:
                yield None
            else:
                client = self.mcp_client
                if self._mcp_held is None:
                    self._mcp_held = client  # set before awaiting: one hold per environment
                    try:
                        await client.__aenter__()
                    except BaseException:
                        self._mcp_held = None
                        raise
                async with client:  # this context's own hold: waits for a connect still in progress
                    yield client
        finally:
            self._mcp_contexts -= 1
            if self._mcp_contexts == 0 and self._mcp_held is not None:
                held, self._mcp_held = self._mcp_held, None
                await held.__aexit__(None, None, None)

    def close(self) -> None:
        self._closed = True
        self._mcp_client = None
        self._mcp_server = None
        super().close()


# OpenEnv passes reset/step only the keyword arguments their signatures accept:
# show it the environment's own signatures, not the pass-through ones above.
SupportToolEnvironment.reset.__signature__ = inspect.signature(SupportEnvironment.reset)
SupportToolEnvironment.step.__signature__ = inspect.signature(SupportEnvironment.step)


# Which environment a per-environment tool server serves (weak both ways).
_ENVIRONMENT_OF: "weakref.WeakKeyDictionary[FastMCP, weakref.ref[SupportToolEnvironment]]" = weakref.WeakKeyDictionary()


def _run_on_served_environment(tool_name: str, arguments: dict[str, Any]) -> ToolOutput:
    environment = _ENVIRONMENT_OF.get(get_context().fastmcp, lambda: None)()
    if environment is None:
        raise ToolError("the environment is closed")
    return environment._run_tool(tool_name, arguments)


_ENVIRONMENT_TOOLS = _tool_functions(_run_on_served_environment)


@functools.cache
def environment_tools() -> list[Tool]:
    """The tools every environment's server holds, built once per process."""
    return _tools_of(_ENVIRONMENT_TOOLS)
