"""Compact tool results (support_env/access/compact.py): what an action produced, in a few
lines, from the observation alone; the facts an agent needs survive, the rest is left out."""

from __future__ import annotations

import json

import pytest

from support_env.access import compact
from support_env.agents.reference import ReferencePolicy
from support_env.agents.rollout import play
from support_env.domain.kb import default_kb
from support_env.environment import SupportEnvironment
from support_env.models import ACTION_TYPES, KBResult, SupportAction, SupportObservation, TicketView

KB = default_kb()


def hit(article_id: str) -> KBResult:
    article = KB.articles[article_id]
    return KBResult(article_id=article.id, title=article.title, text=article.body, score=1.0)


def reference_episode(task_id: str = "hard_mixed_queue", seed: int | None = 3):
    env = SupportEnvironment()
    return play(ReferencePolicy(), lambda: env.reset(task_id=task_id, seed=seed), env.step)


# --- fact lines -------------------------------------------------------------------------


@pytest.mark.parametrize("article_id", sorted(a.id for a in KB.articles.values() if not a.archived))
def test_every_value_an_article_states_survives_in_its_fact_lines(article_id):
    article = KB.articles[article_id]
    text = " ".join(compact.fact_lines(article.body)).lower()
    for fact in article.facts:
        if not fact.rule:
            assert str(fact.value).lower() in text, f"{article_id} lost {fact.key}: {fact.value}"


def test_fact_lines_are_a_fraction_of_the_articles():
    current = [a for a in KB.articles.values() if not a.archived]
    kept = sum(len(" ".join(compact.fact_lines(a.body))) for a in current)
    assert kept < 0.6 * sum(len(a.body) for a in current)
    assert all(len(compact.fact_lines(a.body)) <= compact.FACT_LINES_PER_ARTICLE for a in current)


def test_fact_lines_keep_rules_figures_and_paths_and_drop_headings_markdown_and_plain_prose():
    text = (
        "Welcome to the article. It explains things.\n\n## Rules\n\n"
        "- **Pro:** 600 requests per minute\n"
        "- Refunds are never issued for overages. They are a separate line.\n"
        "- Keys expire after 90 days. We email you before. The old key cannot be restored.\n\n"
        "## What to do\n\n1. Open `Console > Billing`.\n2. Click the button and wait.\n3. Email support@stackwell.example.\n"
        "4. Email security@stackwell.example with the details.\n\nSome prose mentioning 2FA and KB-S01 but no figure."
    )
    assert compact.fact_lines(text) == [
        "Pro: 600 requests per minute",
        "Refunds are never issued for overages.",
        "Keys expire after 90 days. The old key cannot be restored.",
        "Open `Console > Billing`.",
        "Email security@stackwell.example with the details.",
    ]


def test_archived_articles_show_their_status_and_no_lines():
    text = compact.search_hits([hit("KB-B02"), hit("KB-B01")])
    lines = text.splitlines()
    assert lines[0] == "KB-B02 Refund policy (archived) [archived]"
    assert lines[1] == "KB-B01 Refunds for monthly subscription charges [current]"
    assert any("14 days" in line for line in lines[2:]) and not any("30 days" in line for line in lines)


def test_a_plan_list_keeps_only_the_customers_plan_and_lists_naming_it():
    pro = compact.search_hits([hit("KB-T01"), hit("KB-B07")], plan="pro")
    assert "Pro: 600 requests per minute" in pro
    assert "Business: 3,000" not in pro and "Free: 60" not in pro and "Enterprise: 10,000" not in pro
    assert "Free and Pro plans:" in pro and "Business plan:" not in pro
    everyone = compact.search_hits([hit("KB-T01")])
    assert all(f"{plan}:" in everyone for plan in ("Free", "Pro", "Business", "Enterprise"))


def test_facts_of_limits_how_many_current_articles_show_their_lines():
    text = compact.search_hits([hit("KB-B02"), hit("KB-B01"), hit("KB-B03")], facts_of=1)
    assert text.splitlines()[0].endswith("[archived]")
    assert "14 days" in text and "60 days" not in text and text.splitlines()[-1] == "KB-B03 Refunds for annual plans [current]"
    assert compact.search_hits([]) == "no matching articles"


# --- records, thread, ticket, grade, objective ------------------------------------------------


def test_records_are_one_row_per_line_without_the_repeated_account_and_parent_ids():
    rows = [
        {"invoice_id": "INV-1", "account_id": "acct_A", "amount_cents": 4900,
         "payments": [{"payment_id": "pay_1", "invoice_id": "INV-1", "amount_cents": 4900, "status": "captured"}]},
        {"invoice_id": "INV-2", "account_id": "acct_A", "amount_cents": 100, "payments": [], "notes": "a; b"},
    ]
    assert compact.record_text("invoices", rows, "acct_A") == (
        "invoices (2 rows):\n"
        "invoice_id=INV-1; amount_cents=4900; payments=[(payment_id=pay_1; status=captured)]\n"
        'invoice_id=INV-2; amount_cents=100; payments=[]; notes="a; b"'
    )
    assert compact.record_text("account", {"account_id": "acct_A", "plan": "pro"}, "acct_A") == "account: plan=pro"
    assert compact.record_text("orders", [], "acct_A") == "orders: no rows"


def test_a_long_record_is_cut_saying_how_many_rows_were_left_out():
    rows = [{"event": "login", "detail": "x" * 100, "n": i} for i in range(100)]
    text = compact.record_text("audit_log", rows)
    assert len(text) <= compact.RECORD_CHARS + 40
    shown = len(text.splitlines()) - 2
    assert text.endswith(f"... {100 - shown} more rows not shown")


def test_the_customers_new_words_are_what_followed_the_last_reply():
    env = SupportEnvironment()
    observation = env.reset(task_id="medium_kb_reply")
    ticket = observation.current_ticket.id
    env.step(SupportAction(action_type="search_kb", query=observation.current_ticket.subject))
    question = SupportAction(action_type="reply_ticket", ticket_id=ticket, reply_text="Thanks, we are looking into it. Which plan are you on?")
    observation = env.step(question)
    words = compact.customer_words(observation)
    assert words and words == [m.text for m in observation.current_ticket.thread[1:]]
    text = compact.result(question, observation)
    assert text.splitlines()[0].startswith(f"reply sent on {ticket}") and f"[customer] {words[0]}" in text


def test_the_ticket_shows_who_wrote_it_when_and_the_thread_with_the_agents_own_words_cut():
    ticket = TicketView.model_validate({
        "id": "R01", "subject": "Charged twice", "body": "Please refund.", "priority": "high", "created_at": "2026-03-18T08:13:00Z",
        "customer": {"name": "Ana Ruiz", "company": "Acme", "plan": "pro", "email": "a@acme.example", "account_id": "acct_A"},
        "thread": [{"author": "agent", "text": "Hello\n\n" + "word " * 100}, {"author": "customer", "text": "Thanks!"}],
    })
    observation = SupportObservation(current_ticket=ticket, tickets_total=3, tickets_remaining=2, today="2026-03-18")
    lines = compact.ticket_text(observation).splitlines()
    assert lines[:4] == [
        "TICKET R01 (priority high; ticket 2 of 3; opened 2026-03-18T08:13:00Z; today is 2026-03-18)",
        "From: Ana Ruiz <a@acme.example>, Acme (plan pro; account acct_A)",  # the address: is the sender the owner?
        "Subject: Charged twice", "Please refund.",
    ]
    assert lines[4] == "Thread:" and lines[5].startswith("[agent] Hello word") and len(lines[5]) <= len("[agent] ") + compact.OWN_MESSAGE_CHARS
    assert lines[6] == "[customer] Thanks!"


@pytest.mark.parametrize("task_id", ["easy_classify", "medium_kb_reply", "hard_mixed_queue", "duplicate_charge_refund", "account_takeover_fraud"])
def test_the_objective_drops_only_the_parts_asked(task_id):
    env = SupportEnvironment()
    objective = env.reset(task_id=task_id, seed=None).objective
    assert compact.objective_text(objective) == objective
    bare = compact.objective_text(objective, categories=False, reply_rules=False, records_rules=False)
    assert "Categories:" not in bare and "Replies are graded" not in bare and "Tickets whose customer" not in bare
    assert bare and objective.startswith(bare.split(".")[0])
    with_rubric = compact.objective_text(objective, reply_rules=False, records_rules=False)
    assert with_rubric.startswith(bare) and "Categories:" in with_rubric


def test_the_records_rule_of_a_seeded_hard_queue_is_dropped_on_its_own():
    env = SupportEnvironment()
    objective = next(o for seed in range(20) if "account_id" in (o := env.reset(task_id="hard_mixed_queue", seed=seed).objective))
    text = compact.objective_text(objective, records_rules=False)
    assert "Tickets whose customer" not in text and "Categories:" in text and "Replies are graded" in text


# --- whole results ---------------------------------------------------------------------


def test_the_first_prompt_has_the_objective_the_ticket_and_the_tools():
    rollout = reference_episode()
    first = rollout.observations[0]
    prompt = compact.first_prompt(first)
    assert prompt.startswith(first.objective)
    assert f"TICKET {first.current_ticket.id}" in prompt and first.current_ticket.body in prompt
    assert all(name in prompt for name in ACTION_TYPES)
    assert len(prompt) < len(first.model_dump_json())


def test_each_result_says_what_its_action_produced():
    rollout = reference_episode("hard_mixed_queue", 3)
    for action, observation in zip(rollout.actions, rollout.observations[1:]):
        text = compact.result(action, observation)
        first_line = text.splitlines()[0]
        assert first_line.endswith(f"(reward {observation.reward:+.2f})")
        if action.action_type == "search_kb":
            assert first_line.startswith("found 3 articles")
            assert all(f"{r.article_id} {r.title}" in text for r in observation.kb_search_results)
        elif action.action_type == "close_ticket" and not observation.done:
            assert f"TICKET {observation.current_ticket.id}" in text and observation.current_ticket.body in text
        elif action.action_type == "lookup_record":  # rows ("invoices (2 rows):") or one record's fields ("account: ...")
            assert text.splitlines()[1].startswith((f"{action.record} (", f"{action.record}: "))
        elif not observation.done:
            assert text == f"{observation.conversation_history[-1].result} (reward {observation.reward:+.2f})"
    last = compact.result(rollout.actions[-1], rollout.final)
    assert "Episode over: grade 1.00, success." in last
    assert all(f"{t.ticket_id} 1.00" in last for t in rollout.grade.tickets)


def test_a_record_lookup_shows_the_record():
    rollout = reference_episode("account_takeover_fraud", None)
    lookups = [(a, o) for a, o in zip(rollout.actions, rollout.observations[1:]) if a.action_type == "lookup_record"]
    assert lookups
    for action, observation in lookups:
        text = compact.result(action, observation)
        data = observation.records[action.record]
        assert text.split("\n", 1)[1].startswith((f"{action.record} (", f"{action.record}: ")) and "acct_" not in text.split("\n", 1)[1]
        for row in data if isinstance(data, list) else [data]:
            assert all(str(v) in text for k, v in row.items() if isinstance(v, str) and k != "account_id")


def test_an_invalid_action_shows_the_error_and_its_penalty():
    env = SupportEnvironment()
    env.reset(task_id="easy_classify")
    action = SupportAction(action_type="classify_ticket", ticket_id="E01", category="sales")
    observation = env.step(action)
    assert compact.result(action, observation) == f"invalid: {observation.last_action_error} (reward -0.20)"
    assert compact.error_text(observation) == observation.last_action_error


def test_compact_results_cost_at_most_a_third_of_full_observations():
    """Each observation as JSON (what a /step reply carries, and what MCP action tools
    returned before) against what the TRL adapter sends (the first prompt, then each
    step's compact text) and what MCP action tools send now (the first observation
    in full, then each step's structured result)."""
    rollout = reference_episode("hard_mixed_queue", 0)
    full = sum(len(o.model_dump_json()) for o in rollout.observations)
    steps = list(zip(rollout.actions, rollout.observations[1:]))
    text = len(compact.first_prompt(rollout.observations[0])) + sum(len(compact.result(a, o)) for a, o in steps)
    mcp = len(rollout.observations[0].model_dump_json()) + sum(
        len(json.dumps(compact.structured(a, o), separators=(",", ":"))) for a, o in steps
    )
    assert text * 3 <= full and mcp * 3 <= full


def test_results_depend_on_the_observation_alone():
    rollout = reference_episode("hard_mixed_queue", 4)
    for action, observation in zip(rollout.actions, rollout.observations[1:]):
        copy = SupportObservation.model_validate_json(observation.model_dump_json())
        assert compact.result(action, copy) == compact.result(action, observation)


# --- the LLM agent's prompts are built from the same pieces -------------------------------------


def test_the_llm_prompt_shows_what_the_next_decision_needs():
    from support_env.agents.llm import SYSTEM_PROMPT, build_prompt

    rollout = reference_episode("hard_mixed_queue", None)
    prompts = [build_prompt(o) for o in rollout.observations if not o.done]
    first, after_classify, after_search, after_reply = prompts[:4]  # H01: classify, search, reply, close
    assert "CURRENT TICKET H01" in first and "Categories:" in first and "Replies are graded" not in first
    assert "classify_ticket(H01, billing) (+0.10)" in after_classify and "Categories:" not in after_classify
    assert "Replies are graded" in after_search and "KB RESULTS" in after_search and "- " in after_search
    assert "KB RESULTS" not in after_reply and "reply_ticket(H01" in after_reply
    assert "classify_ticket(H01" not in prompts[4]  # the next ticket's history starts afresh
    assert all("Tickets whose customer" not in p for p in prompts)  # the canonical queue has no records
    assert max(len(SYSTEM_PROMPT) + len(p) for p in prompts) < 4000


def test_the_llm_prompt_keeps_an_invalid_actions_error():
    from support_env.agents.llm import build_prompt

    env = SupportEnvironment()
    env.reset(task_id="easy_classify")
    observation = env.step(SupportAction(action_type="search_kb", query=" "))
    prompt = build_prompt(observation)
    assert "search_kb(' ') -> invalid: query is required and must not be empty (-0.20)" in prompt
    assert "LAST ACTION WAS INVALID: query is required" in prompt and "KB RESULTS" not in prompt


# --- the same selection as JSON (MCP action tools) ----------------------------------------------


@pytest.mark.parametrize("task_id, seed", [("hard_mixed_queue", 3), ("account_takeover_fraud", None), ("damaged_item_replacement", None)])
def test_the_text_and_the_json_show_the_same_selection(task_id, seed):
    """`result` (text) and `structured` (JSON) render the one `produced`: every piece the
    JSON carries is in the text, and the JSON carries the outcome line of the text."""
    rollout = reference_episode(task_id, seed)
    for action, observation in zip(rollout.actions, rollout.observations[1:]):
        data, text = compact.structured(action, observation), compact.result(action, observation)
        assert compact.ActionResult.model_validate(data) == compact.produced(action, observation)
        assert text.splitlines()[0] == f"{data['result']} (reward {data['reward']:+.2f})"
        assert data["reward"] == observation.reward and data["done"] == observation.done and data["error"] is None
        for hit in data.get("search_hits", []):
            assert f"{hit['article_id']} {hit['title']} [{hit['status']}]" in text
            assert all(f"- {line}" in text for line in hit["facts"])
        if "record" in data:
            assert data["record"] == {"name": action.record, "data": observation.records[action.record]}
            assert compact.record_text(action.record, data["record"]["data"], observation.current_ticket.customer.account_id) in text
        assert all(f"[customer] {words}" in text for words in data.get("customer_words", []))
        if "next_ticket" in data:
            assert data["next_ticket"] == observation.current_ticket.model_dump(mode="json") and f"TICKET {data['next_ticket']['id']}" in text
        if observation.done:
            assert data["grade"] == observation.grade.model_dump(mode="json") and compact.grade_text(observation.grade) in text
        else:
            assert "grade" not in data


def test_the_json_carries_only_what_the_action_produced():
    rollout = reference_episode("hard_mixed_queue", 3)
    pieces = {"search_kb": {"search_hits"}, "lookup_record": {"record"}, "reply_ticket": {"customer_words"}}
    for action, observation in zip(rollout.actions, rollout.observations[1:]):
        data = compact.structured(action, observation)
        expected = {"result", "reward", "done", "error"} | pieces.get(action.action_type, set())
        if action.action_type == "close_ticket":
            expected |= {"grade"} if observation.done else {"next_ticket", "tickets_remaining"}
        assert set(data) == expected, action.action_type
        assert not {"objective", "conversation_history", "kb_search_results", "records", "current_ticket"} & set(data)
        assert all("text" not in hit for hit in data.get("search_hits", []))  # fact lines, never the article


def test_json_hits_are_the_texts_hits():
    hits = [hit("KB-B02"), hit("KB-B01"), hit("KB-T01")]
    shown = compact.hits_of(hits, plan="pro")
    assert compact.hits_text(shown) == compact.search_hits(hits, plan="pro")
    assert [(h.article_id, h.status) for h in shown] == [("KB-B02", "archived"), ("KB-B01", "current"), ("KB-T01", "current")]
    assert shown[0].facts == [] and "Pro: 600 requests per minute" in shown[2].facts
    assert not any(line.startswith("Business:") for line in shown[2].facts)


def test_an_invalid_action_as_json_is_its_error_and_penalty():
    env = SupportEnvironment()
    env.reset(task_id="easy_classify")
    action = SupportAction(action_type="classify_ticket", ticket_id="E01", category="sales")
    observation = env.step(action)
    error = observation.last_action_error
    assert compact.structured(action, observation) == {"result": f"invalid: {error}", "reward": -0.2, "done": False, "error": error}
