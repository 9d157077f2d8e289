"""Characters an LLM reads per hard_mixed_queue episode: full observations against compact
results, and the LLM agent's prompts before and after they were made compact.

    python benchmarks/bench_context.py [--seeds 20]

The reference policy plays the canonical hard queue and seeds 0..N-1 (train split) in
process. For each episode:

(a) tool results: every observation as JSON (`model_dump_json`, what an MCP tool
    result or a /step reply sends today: the first observation and one per step)
    against the compact text the TRL adapter sends (`compact.first_prompt`, then
    `compact.result` per step);
(b) the LLM agent's prompts (support_env/agents/llm.py: system prompt plus the user
    message, one request per step): as it built them before (a frozen copy below,
    from commit c8dfcff) against `build_prompt` now. The tool definitions sent with
    each request are counted apart.

Prints characters per episode (mean, min, max), per step, and the ratios.
"""

from __future__ import annotations

import argparse
import json
from statistics import mean

import _common  # noqa: F401  (puts the project root on sys.path)

from support_env.access import compact
from support_env.agents import llm
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.environment import SupportEnvironment
from support_env.models import CATEGORIES, RECORDS, RESOLUTIONS, SupportObservation

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


def measure(seed: int | None) -> dict[str, int]:
    env = SupportEnvironment()
    rollout = play(ReferencePolicy(), lambda: env.reset(task_id=TASK, seed=seed), env.step)
    assert rollout.grade.score == 1.0
    decisions = [o for o in rollout.observations if not o.done]  # one LLM request per step
    return {
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
    args = parser.parse_args()
    runs = [measure(seed) for seed in [None, *range(args.seeds)]]
    column = lambda key: [r[key] for r in runs]  # noqa: E731
    steps = column("steps")
    print(f"{TASK}: the canonical episode and seeds 0-{args.seeds - 1} (train), played by the reference policy; "
          f"{mean(steps):.1f} steps per episode on average\n")
    print("| characters per episode | before: mean (min-max) | after: mean (min-max) | per step | after / before |")
    print("| --- | ---: | ---: | ---: | ---: |")
    print(row("(a) tool results: observation JSON -> compact", column("full"), column("compact"), steps))
    print(row("(b) LLM agent prompts (system + user)", column("prompt_before"), column("prompt_after"), steps))
    print(row("LLM agent tool definitions, sent with each request", column("tools_before"), column("tools_after"), steps))
    print(row(
        "LLM agent requests: prompts + tool definitions",
        [r["prompt_before"] + r["tools_before"] for r in runs], [r["prompt_after"] + r["tools_after"] for r in runs], steps,
    ))


if __name__ == "__main__":
    main()
