"""The support queue as a TRL environment: `GRPOTrainer(environment_factory=SupportToolEnv)`.

TRL's contract (trl.GRPOTrainer, `environment_factory`): the trainer makes one
instance per rollout with no arguments (and reuses instances across batches),
calls `reset(**row)` with every column of the dataset row at the start of an
episode and appends the string it returns to the row's last user message, offers
every public method other than `reset` and `get_reward` to the model as a tool
(the schema comes from the method's type hints and Google-style docstring, through
transformers' `get_json_schema`), feeds a tool's return value back as the tool
message, and feeds an exception's message back instead when a tool raises. A
`get_reward()` method, when present, is called once per finished rollout and is
that rollout's reward (an extra reward function of weight 1, so `reward_funcs` may
be left empty).

So `SupportToolEnv` has exactly: `reset`, one method per action, and `get_reward`.
Each action method takes the action's fields as typed arguments, runs one step,
and returns a compact text of what the step produced (`compact.result`): search
hits with their fact lines, the record looked up, the customer's answer, the next
ticket, the reward, the grade at the end; never the whole observation again. An
action the episode rejects is still a step (dense mode: -0.2 and counted, as over
/step); its method raises ValueError with the episode's message, which TRL shows
the model. Arguments of the wrong type (a number where a ticket id goes) are
refused before the episode sees them, as MCP refuses them: no step, no penalty.

It plays against the server at `SUPPORT_ENV_URL` over `/ws` (one session per
instance, through the typed client `support_env.client.SupportEnv`), or, with the
variable unset, against a `SupportEnvironment` in this process.

`tool_definitions()` gives the same tools as OpenAI-format JSON schemas, built from
the methods below as transformers builds them, for places that have no
transformers: the LLM agent and the SFT transcripts. `in_process`,
`observation_of` and `run_tool_call` let the transcripts play tool calls exactly
as TRL does.
"""

from __future__ import annotations

import inspect
import operator
import os
import re
import sys
from typing import Any, Literal, Optional, Union, get_args, get_origin, get_type_hints

from ..models import CATEGORIES, RECORDS, RESOLUTIONS, SupportAction, SupportObservation
from . import compact

URL_VARIABLE = "SUPPORT_ENV_URL"
# The dataset columns `reset` passes on to the episode; any other column (TRL's
# `prompt`, bookkeeping) is ignored. A column that is None is left out.
RESET_FIELDS = ("task_id", "seed", "split", "queue_length", "reward_mode")
_INTEGER_FIELDS = ("seed", "queue_length")


class SupportToolEnv:
    """One support-queue episode at a time, as tools for an LLM (TRL's `environment_factory`)."""

    def __init__(self) -> None:
        url = os.environ.get(URL_VARIABLE, "").strip()
        self._url = url.rstrip("/") or None
        self._client: Any = None  # the /ws client, connected on the first reset
        self._environment: Any = None  # the in-process environment, made on the first reset
        self._observation: Optional[SupportObservation] = None
        self._reward = 0.0

    def reset(self, **row: Any) -> str:
        """Start the episode a dataset row names (task_id, seed, split, queue_length,
        reward_mode; other columns are ignored; without a seed, the task's canonical
        episode, whatever the split) and return its first prompt: the objective, the
        first ticket and the tools."""
        arguments = {name: row[name] for name in RESET_FIELDS if row.get(name) is not None}
        if "seed" not in arguments:
            arguments.pop("split", None)  # a split names generated episodes; a row without a seed plays the canonical one
        for name in _INTEGER_FIELDS:
            if name in arguments and not isinstance(arguments[name], bool):
                try:
                    arguments[name] = operator.index(arguments[name])  # numpy and torch integers too
                except TypeError:
                    pass  # the episode refuses it with its own message
        self._observation, self._reward = None, 0.0  # a reset that fails leaves no episode behind
        self._observation = self._reset(arguments)
        return compact.first_prompt(self._observation)

    def get_reward(self) -> float:
        """The episode's reward so far: the sum of its step rewards (the last step's includes the grade;
        with reward_mode "sparse", every step pays 0 and the last step's reward is the grade)."""
        return self._reward

    # --- the actions, one tool each ---------------------------------------------------

    def classify_ticket(self, ticket_id: str, category: Literal[CATEGORIES]) -> str:
        """Classify the current ticket (final).

        Args:
            ticket_id: Id of the current ticket.
            category: The category.
        """
        return self._act(SupportAction(action_type="classify_ticket", ticket_id=ticket_id, category=category))

    def search_kb(self, query: str) -> str:
        """Search the policy knowledge base (top 3 articles).

        Args:
            query: What to look for.
        """
        return self._act(SupportAction(action_type="search_kb", query=query))

    def reply_ticket(self, ticket_id: str, reply_text: str) -> str:
        """Reply to the customer of the current ticket.

        Args:
            ticket_id: Id of the current ticket.
            reply_text: The reply: the policy facts for the customer's plan, under 1,200 characters.
        """
        return self._act(SupportAction(action_type="reply_ticket", ticket_id=ticket_id, reply_text=reply_text))

    def escalate_ticket(self, ticket_id: str, reason: str) -> str:
        """Escalate the current ticket to the on-call team (genuine emergencies only).

        Args:
            ticket_id: Id of the current ticket.
            reason: Why it is an emergency.
        """
        return self._act(SupportAction(action_type="escalate_ticket", ticket_id=ticket_id, reason=reason))

    def close_ticket(self, ticket_id: str, resolution: Optional[Literal[RESOLUTIONS]] = None) -> str:
        """Close the current ticket once it is handled; the next one follows.

        Args:
            ticket_id: Id of the current ticket.
            resolution: How it was resolved.
        """
        return self._act(SupportAction(action_type="close_ticket", ticket_id=ticket_id, resolution=resolution))

    def lookup_record(self, ticket_id: str, record: Literal[RECORDS]) -> str:
        """Look up a record of the current customer (customers with an account id).

        Args:
            ticket_id: Id of the current ticket.
            record: Which record.
        """
        return self._act(SupportAction(action_type="lookup_record", ticket_id=ticket_id, record=record))

    def issue_refund(self, ticket_id: str, invoice_id: str, amount: float) -> str:
        """Refund money on one of the customer's invoices.

        Args:
            ticket_id: Id of the current ticket.
            invoice_id: Invoice id, from the invoices record.
            amount: Amount in US dollars.
        """
        return self._act(SupportAction(action_type="issue_refund", ticket_id=ticket_id, invoice_id=invoice_id, amount=amount))

    def revoke_api_key(self, ticket_id: str, key_id: str) -> str:
        """Revoke one of the customer's API keys.

        Args:
            ticket_id: Id of the current ticket.
            key_id: Key id, from the api_keys record.
        """
        return self._act(SupportAction(action_type="revoke_api_key", ticket_id=ticket_id, key_id=key_id))

    def lock_account(self, ticket_id: str) -> str:
        """Lock the customer's account.

        Args:
            ticket_id: Id of the current ticket.
        """
        return self._act(SupportAction(action_type="lock_account", ticket_id=ticket_id))

    def send_replacement(self, ticket_id: str, order_id: str) -> str:
        """Ship a replacement for one of the customer's delivered hardware orders.

        Args:
            ticket_id: Id of the current ticket.
            order_id: Order id, from the orders record.
        """
        return self._act(SupportAction(action_type="send_replacement", ticket_id=ticket_id, order_id=order_id))

    # --- the episode, remote or in process ------------------------------------------------

    def _act(self, action: SupportAction) -> str:
        if self._observation is None:
            raise ValueError("no episode in progress: reset() first")
        observation = self._step(action)
        self._observation = observation
        self._reward = round(self._reward + (observation.reward or 0.0), 4)
        if observation.last_action_error is not None:
            raise ValueError(compact.error_text(observation))
        return compact.result(action, observation)

    def _reset(self, arguments: dict[str, Any]) -> SupportObservation:
        if self._url is None:
            if self._environment is None:
                from ..environment import SupportEnvironment

                self._environment = SupportEnvironment()
            return self._environment.reset(**arguments)
        if self._client is None:
            from .client import SupportEnv  # websockets and OpenEnv's client: only when remote

            self._client = SupportEnv(base_url=self._url).sync()
            self._client.connect()
        observation = self._client.reset(**arguments).observation
        # A server of a version without reward modes drops the argument and plays dense:
        # refused, rather than training on rewards the row did not ask for.
        mode = arguments.get("reward_mode")
        if mode is not None and observation.reward_mode != mode:
            raise ValueError(f"the server at {self._url} played reward_mode {observation.reward_mode!r}, not {mode!r}: it does not take reward_mode")
        return observation

    def _step(self, action: SupportAction) -> SupportObservation:
        if self._url is None:
            return self._environment.step(action)
        return self._client.step(action).observation

    def _close(self) -> None:
        """Close the /ws session, if there is one (also done when the instance is collected)."""
        client, self._client = self._client, None
        if client is not None:
            client.close()

    def __del__(self) -> None:
        if sys.is_finalizing():
            return  # the connection ends with the process
        try:
            self._close()
        except Exception:
            pass


def in_process(environment: Any = None) -> SupportToolEnv:
    """An adapter that plays in this process (whatever SUPPORT_ENV_URL says), on
    `environment` if given: for transcripts and tests that need the episode itself."""
    tool_env = SupportToolEnv()
    tool_env._url = None
    tool_env._environment = environment
    return tool_env


def observation_of(tool_env: SupportToolEnv) -> Optional[SupportObservation]:
    """The latest observation of the adapter's episode (None before reset)."""
    return tool_env._observation


def run_tool_call(tool_env: SupportToolEnv, name: str, arguments: dict[str, Any]) -> str:
    """Run one tool call as TRL's GRPOTrainer does and return the tool message's
    content: the method's result, or `{'error': '<message>'}` when it raises (an
    unknown tool, missing or unexpected arguments, an action the episode rejects)."""
    try:
        if name not in ACTION_METHODS:
            raise ValueError(f"Tool {name} not found.")
        return str(getattr(tool_env, name)(**arguments))
    except Exception as exc:
        return str({"error": str(exc)})


ACTION_METHODS = (
    "classify_ticket", "search_kb", "reply_ticket", "escalate_ticket", "close_ticket",
    "lookup_record", "issue_refund", "revoke_api_key", "lock_account", "send_replacement",
)


def tool_definitions() -> list[dict[str, Any]]:
    """The action methods as OpenAI-format tools (`{"type": "function", "function":
    {name, description, parameters}}`), built as transformers' `get_json_schema`
    builds them from the same type hints and docstrings (tested to agree), without
    needing transformers."""
    return [_schema(getattr(SupportToolEnv, name)) for name in ACTION_METHODS]


_ARG = re.compile(r"^    (\w+):\s*(.*)$")  # "    name: description" in a dedented docstring's Args block


def _schema(method: Any) -> dict[str, Any]:
    description, _, args_block = (inspect.getdoc(method) or "").partition("\nArgs:\n")
    described: dict[str, str] = {}
    for line in args_block.splitlines():
        match = _ARG.match(line)
        if match:
            name = match.group(1)
            described[name] = match.group(2).strip()
        elif line.strip():
            described[name] += " " + line.strip()  # a description continued on the next line
    hints = get_type_hints(method)
    parameters = list(inspect.signature(method).parameters.values())[1:]  # after self
    properties = {p.name: {**_json_type(hints[p.name]), "description": described[p.name]} for p in parameters}
    schema: dict[str, Any] = {"type": "object", "properties": properties}
    required = [p.name for p in parameters if p.default is inspect.Parameter.empty]
    if required:
        schema["required"] = required
    return {"type": "function", "function": {"name": method.__name__, "description": description.strip(), "parameters": schema}}


def _json_type(hint: Any) -> dict[str, Any]:
    origin, args = get_origin(hint), get_args(hint)
    if origin is Union:
        (inner,) = [a for a in args if a is not type(None)]
        return {**_json_type(inner), "nullable": True}
    if origin is Literal:
        return {"type": "string", "enum": list(args)}
    return {"type": {str: "string", float: "number", int: "integer", bool: "boolean"}[hint]}
