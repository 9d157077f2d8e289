"""Characters an LLM reads per hard_mixed_queue episode: full observations against compact
results (over MCP and through the TRL adapter), and the LLM agent's prompts before and
after they were made compact.

    python benchmarks/bench_context.py [--seeds 20] [--mcp-seeds 20]

The reference policy plays the canonical hard queue and seeds 0..N-1 (train split) in
process. For each episode:

(a) MCP tool results, measured over MCP in the same run: the episode's actions are
    called as tools through an environment's own MCP client (`SupportToolEnvironment`,
    the server /mcp and /ws "mcp" messages reach), and the text of every tool result
    is counted (the JSON an MCP client hands its model; the JSON-RPC reply carries it
    once more as `structured_content`). Before: the first `get_observation`, then
    after each action the whole observation, as action tools answered before (read
    with `get_observation` after the call, the same observation they returned). After:
    the first `get_observation`, then each action tool's own result
    (`compact.structured`). Each result is checked against `compact.structured` of the
    in-process episode.
(b) TRL adapter results: every observation as JSON (`model_dump_json`, what a /step
    reply carries) against the compact text the adapter sends (`compact.first_prompt`,
    then `compact.result` per step);
(c) the LLM agent's prompts (support_env/agents/llm.py: system prompt plus the user
    message, one request per step): as it built them before (a frozen copy below,
    from commit c8dfcff) against `build_prompt` now. The tool definitions sent with
    each request are counted apart.

Prints characters per episode (mean, min, max), per step, and the ratios.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time
from statistics import mean

import _common  # noqa: F401  (puts the project root on sys.path)

from support_env.access import compact
from support_env.access.mcp_tools import OBSERVATION_TOOL, SupportToolEnvironment, as_tool_call
from support_env.agents import llm
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.environment import SupportEnvironment
from support_env.models import CATEGORIES, RECORDS, RESOLUTIONS, SupportAction, SupportObservation

TASK = "hard_mixed_queue"

# --- the LLM agent's prompts before (support_env/agents/llm.py at c8dfcff) --------------------

LEGACY_KB_TEXT_CHARS = 900
LEGACY_RECORDS_CHARS = 2500
LEGACY_THREAD_CHARS = 400
LEGACY_HISTORY_LINES = 8
LEGACY_SYSTEM_PROMPT = f"""You are a support agent for Stackwell Cloud, working a ticket queue one ticket at a time.
Each turn, choose exactly ONE action by calling a tool (or, without tools, answer with one JSON object:
{{"action_type": "...", ...fields}}).
Actions: classify_ticket(ticket_id, category in {list(CATEGORIES)}), search_kb(query),
reply_ticket(ticket_id, reply_text), escalate_ticket(ticket_id, reason), close_ticket(ticket_id, resolution?),
and, when the customer has an account_id: lookup_record(ticket_id, record in {list(RECORDS)}),
issue_refund(ticket_id, invoice_id, amount in dollars), revoke_api_key(ticket_id, key_id), lock_account(ticket_id),
send_replacement(ticket_id, order_id).
Rules: classify every ticket once. For questions, search the knowledge base first, then reply with the
exact policy values (durations, limits, amounts) that hold for the customer's plan, briefly; never state a
number you did not read in a current (not archived) article. Escalate only genuine emergencies (production
data deleted or lost, leaked credentials, account takeover). Spam and thank-you notes need no reply.
Before any account operation, look up the records that justify it; do only what the records and policy
support, and never disclose account details to an unverified sender. Close the ticket when done, with a
resolution in {list(RESOLUTIONS)}; closing moves to the next ticket."""
LEGACY_TOOLS_CHARS = 3804  # len(json.dumps(llm.TOOLS)) at c8dfcff


def legacy_prompt(observation: SupportObservation) -> str:
    """The user message llm.build_prompt sent at c8dfcff."""
    parts = [f"OBJECTIVE: {observation.objective}"]
    ticket = observation.current_ticket
    if ticket is not None:
        parts.append(
            f"CURRENT TICKET {ticket.id} (priority {ticket.priority}; {observation.tickets_remaining} left in queue)\n"
            f"From: {ticket.customer.name}, {ticket.customer.company}, plan: {ticket.customer.plan}"
            f"{', account: ' + ticket.customer.account_id if ticket.customer.account_id else ''}\n"
            f"Subject: {ticket.subject}\n{ticket.body}"
            + "".join(f"\n[{m.author}] {m.text[:LEGACY_THREAD_CHARS]}" for m in ticket.thread)
        )
    if observation.kb_search_results:
        parts.append(
            "KB RESULTS:\n"
            + "\n".join(f"[{r.article_id}] {r.title}\n{r.text[:LEGACY_KB_TEXT_CHARS]}" for r in observation.kb_search_results)
        )
    if observation.records:
        parts.append("RECORDS:\n" + json.dumps(observation.records, separators=(",", ":"))[:LEGACY_RECORDS_CHARS])
    if observation.conversation_history:
        recent = observation.conversation_history[-LEGACY_HISTORY_LINES:]
        parts.append("RECENT STEPS:\n" + "\n".join(f"{h.step}. {h.action} -> {h.result} ({h.reward:+.2f})" for h in recent))
    if observation.last_action_error:
        parts.append(f"LAST ACTION WAS INVALID: {observation.last_action_error}")
    parts.append(f"Steps remaining: {observation.steps_remaining}. Choose the next action.")
    return "\n\n".join(parts)


# --- measuring ------------------------------------------------------------------------------


async def over_mcp(seed: int | None, actions: list[SupportAction], observations: list[SupportObservation]) -> dict[str, int]:
    """Characters of the MCP tool results of one episode, before and after (see (a))."""
    env = SupportToolEnvironment()
    env.reset(task_id=TASK, seed=seed)
    try:
        async with env.mcp_session() as client:

            async def text(name: str, arguments: dict) -> str:
                answer = await client.call_tool(name, arguments)
                assert not answer.is_error and len(answer.content) == 1
                return answer.content[0].text

            first = await text(OBSERVATION_TOOL, {})
            before = after = len(first)
            for action, observation in zip(actions, observations[1:]):
                result = await text(*as_tool_call(action))
                assert json.loads(result) == compact.structured(action, observation)
                whole = await text(OBSERVATION_TOOL, {})  # what the action tool returned before
                before, after = before + len(whole), after + len(result)
    finally:
        env.close()
    return {"mcp_before": before, "mcp_after": after}


def measure(seed: int | None, mcp: bool) -> dict[str, int]:
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=TASK, seed=seed), env.step)
    assert rollout.grade.score == 1.0
    decisions = [o for o in rollout.observations if not o.done]  # one LLM request per step
    return {
        **(asyncio.run(over_mcp(seed, rollout.actions, rollout.observations)) if mcp else {}),
        "steps": len(rollout.actions),
        "full": sum(len(o.model_dump_json()) for o in rollout.observations),
        "compact": len(compact.first_prompt(rollout.observations[0]))
        + sum(len(compact.result(a, o)) for a, o in zip(rollout.actions, rollout.observations[1:])),
        "prompt_before": sum(len(LEGACY_SYSTEM_PROMPT) + len(legacy_prompt(o)) for o in decisions),
        "prompt_after": sum(len(llm.SYSTEM_PROMPT) + len(llm.build_prompt(o)) for o in decisions),
        "tools_before": LEGACY_TOOLS_CHARS * len(decisions),
        "tools_after": len(json.dumps(llm.TOOLS)) * len(decisions),
    }


def row(label: str, before: list[int], after: list[int], steps: list[int]) -> str:
    ratios = [a / b for a, b in zip(after, before)]
    per_step = lambda values: mean(v / s for v, s in zip(values, steps))  # noqa: E731
    return (
        f"| {label} | {mean(before):,.0f} ({min(before):,}-{max(before):,}) | {mean(after):,.0f} ({min(after):,}-{max(after):,}) "
        f"| {per_step(before):,.0f} -> {per_step(after):,.0f} | {mean(ratios):.3f} (max {max(ratios):.3f}) |"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=20, help="generated episodes besides the canonical one (default 20)")
    parser.add_argument("--mcp-seeds", type=int, default=None,
                        help="of those, how many are also played over MCP for (a) (default: all; ~1 s per episode)")
    args = parser.parse_args()
    mcp_seeds = args.seeds if args.mcp_seeds is None else min(args.mcp_seeds, args.seeds)
    started = time.perf_counter()
    runs = [measure(seed, mcp=seed is None or seed < mcp_seeds) for seed in [None, *range(args.seeds)]]
    column = lambda key: [r[key] for r in runs]  # noqa: E731
    steps = column("steps")
    over_mcp_runs = [r for r in runs if "mcp_before" in r]
    print(f"{TASK}: the canonical episode and seeds 0-{args.seeds - 1} (train), played by the reference policy; "
          f"{mean(steps):.1f} steps per episode on average; (a) over {len(over_mcp_runs)} of them "
          f"({time.perf_counter() - started:.0f} s)\n")
    print("| characters per episode | before: mean (min-max) | after: mean (min-max) | per step | after / before |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(row(
        "(a) MCP tool results: whole observation -> what the action produced",
        [r["mcp_before"] for r in over_mcp_runs], [r["mcp_after"] for r in over_mcp_runs], [r["steps"] for r in over_mcp_runs],
    ))
    print(row("(b) TRL adapter results: observation JSON -> compact text", column("full"), column("compact"), steps))
    print(row("(c) LLM agent prompts (system + user)", column("prompt_before"), column("prompt_after"), steps))
    print(row("LLM agent tool definitions, sent with each request", column("tools_before"), column("tools_after"), steps))
    print(row(
        "LLM agent requests: prompts + tool definitions",
        [r["prompt_before"] + r["tools_before"] for r in runs], [r["prompt_after"] + r["tools_after"] for r in runs], steps,
    ))


if __name__ == "__main__":
    main()
