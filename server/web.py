"""The playground at /web: work the queue by hand, as a helpdesk shows it.

Built through OpenEnv's `gradio_builder` hook (ENABLE_WEB_INTERFACE=true). Each
browser session gets its own `SupportEnvironment`, so visitors never share an
episode, and every button is one `SupportAction` through `step`, exactly as an
agent's would be: same rewards, same invalid actions, same grade.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from typing import Any, Callable, Iterable, Optional

import gradio as gr

from support_env.environment import SupportEnvironment
from support_env.models import CATEGORIES, RECORDS, RESOLUTIONS, Grade, SupportAction, SupportObservation
from support_env.episodes.catalogue import DEFAULT_TASK_ID, TASK_IDS

TAB_NAME = "Helpdesk"
IDLE_SESSION_S = 1800
NO_RESOLUTION = "(none)"

_MUTED = "opacity:.72"
_CARD = "border:1px solid rgba(128,128,128,.35);border-radius:6px;padding:12px 14px;margin:0 0 10px 0"
_PRIORITY_COLOURS = {"low": "#6e7781", "normal": "#0969da", "high": "#bf8700", "urgent": "#cf222e"}


@dataclass
class Desk:
    """One visitor's episode."""

    env: SupportEnvironment
    observation: SupportObservation


def build_playground(web_manager: Any, action_fields: Any, metadata: Any, is_chat_env: bool, title: str, quick_start_md: Any) -> gr.Blocks:
    """OpenEnv's gradio_builder signature; only the title is used (the other
    arguments describe OpenEnv's generic form, which this tab replaces)."""
    with gr.Blocks(title=title, analytics_enabled=False) as blocks:
        desk = gr.State(None, time_to_live=IDLE_SESSION_S)
        gr.Markdown(
            "## Stackwell Cloud helpdesk\n"
            "Pick a task (and a seed, or leave it empty for the canonical queue), start, and work the queue: "
            "classify, search the knowledge base, reply, escalate emergencies, close. Every button is one step."
        )
        with gr.Row(equal_height=True):
            task = gr.Radio(list(TASK_IDS), value=DEFAULT_TASK_ID, label="Task", elem_id="task", scale=3)
            seed = gr.Textbox(value="", label="Seed (empty: canonical queue)", placeholder="e.g. 7", elem_id="seed", scale=1)
            start = gr.Button("Start episode", variant="primary", elem_id="start", scale=1)
        status = gr.HTML(_notice("Press <b>Start episode</b> to open the queue."), elem_id="status")
        step_result = gr.HTML("", elem_id="step-result")
        with gr.Row():
            with gr.Column(scale=3):
                grade = gr.HTML("", elem_id="grade")
                ticket = gr.HTML("", elem_id="ticket")
                kb_results = gr.HTML("", elem_id="kb-results")
                records = gr.HTML("", elem_id="records")
            with gr.Column(scale=2):
                with gr.Group():
                    gr.Markdown("**Classify**")
                    with gr.Row():
                        classify_buttons = [gr.Button(c, size="sm", elem_id=f"classify-{c}") for c in CATEGORIES]
                with gr.Group():
                    query = gr.Textbox(label="Knowledge base search", placeholder="e.g. refund annual plan", elem_id="kb-query")
                    search = gr.Button("Search KB", size="sm", elem_id="search")
                with gr.Group():
                    reply_text = gr.Textbox(label="Reply to the customer", lines=4, elem_id="reply-text")
                    reply = gr.Button("Send reply", size="sm", elem_id="reply")
                with gr.Group():
                    reason = gr.Textbox(label="Escalation reason", elem_id="escalate-reason")
                    escalate = gr.Button("Escalate to on-call", size="sm", variant="stop", elem_id="escalate")
                with gr.Accordion("Records and account operations", open=False):
                    record = gr.Radio(list(RECORDS), value=RECORDS[0], label="Record", elem_id="record")
                    lookup = gr.Button("Look up record", size="sm", elem_id="lookup")
                    with gr.Row():
                        invoice_id = gr.Textbox(label="Invoice id", elem_id="invoice-id")
                        amount = gr.Textbox(label="Amount (USD)", elem_id="amount")
                    refund = gr.Button("Issue refund", size="sm", elem_id="refund")
                    key_id = gr.Textbox(label="API key id", elem_id="key-id")
                    revoke = gr.Button("Revoke API key", size="sm", elem_id="revoke")
                    order_id = gr.Textbox(label="Order id", elem_id="order-id")
                    replace = gr.Button("Send replacement", size="sm", elem_id="replace")
                    lock = gr.Button("Lock account", size="sm", variant="stop", elem_id="lock")
                with gr.Row(equal_height=True):
                    resolution = gr.Dropdown([NO_RESOLUTION, *RESOLUTIONS], value=NO_RESOLUTION, label="Resolution", elem_id="resolution")
                    close = gr.Button("Close ticket", variant="primary", elem_id="close")
        with gr.Accordion("Episode log", open=False):
            log = gr.HTML("", elem_id="log")

        views = [desk, status, ticket, kb_results, records, step_result, grade, log]

        def on(trigger, make_action: Callable[..., SupportAction], *fields):
            return trigger(_acting(make_action), inputs=[desk, *fields], outputs=views)

        start.click(_start, inputs=[task, seed], outputs=views)
        for button, category in zip(classify_buttons, CATEGORIES):
            on(button.click, _classify(category))
        on(search.click, _search, query)
        on(query.submit, _search, query)
        on(reply.click, _reply, reply_text).success(lambda: "", outputs=[reply_text])
        on(escalate.click, _escalate, reason)
        on(lookup.click, _lookup, record)
        on(refund.click, _refund, invoice_id, amount)
        on(revoke.click, _revoke, key_id)
        on(replace.click, _replace, order_id)
        on(lock.click, _lock)
        on(close.click, _close, resolution)
    return blocks


# --- actions: each button is one SupportAction on the current ticket -------------


def _classify(category: str) -> Callable[[str], SupportAction]:
    return lambda ticket_id: SupportAction(action_type="classify_ticket", ticket_id=ticket_id, category=category)


def _search(ticket_id: str, query: str) -> SupportAction:
    return SupportAction(action_type="search_kb", query=query)


def _reply(ticket_id: str, text: str) -> SupportAction:
    return SupportAction(action_type="reply_ticket", ticket_id=ticket_id, reply_text=text)


def _escalate(ticket_id: str, reason: str) -> SupportAction:
    return SupportAction(action_type="escalate_ticket", ticket_id=ticket_id, reason=reason)


def _lookup(ticket_id: str, record: str) -> SupportAction:
    return SupportAction(action_type="lookup_record", ticket_id=ticket_id, record=record)


def _refund(ticket_id: str, invoice_id: str, amount: str) -> SupportAction:
    try:
        dollars: Optional[float] = float(amount.replace("$", "").replace(",", "").strip())
    except ValueError:
        dollars = None  # the episode explains what a valid amount is
    return SupportAction(action_type="issue_refund", ticket_id=ticket_id, invoice_id=invoice_id, amount=dollars)


def _revoke(ticket_id: str, key_id: str) -> SupportAction:
    return SupportAction(action_type="revoke_api_key", ticket_id=ticket_id, key_id=key_id)


def _replace(ticket_id: str, order_id: str) -> SupportAction:
    return SupportAction(action_type="send_replacement", ticket_id=ticket_id, order_id=order_id)


def _lock(ticket_id: str) -> SupportAction:
    return SupportAction(action_type="lock_account", ticket_id=ticket_id)


def _close(ticket_id: str, resolution: str) -> SupportAction:
    chosen = None if resolution in (None, "", NO_RESOLUTION) else resolution
    return SupportAction(action_type="close_ticket", ticket_id=ticket_id, resolution=chosen)


# --- handlers -------------------------------------------------------------------


def _start(task_id: str, seed: str):
    try:
        env = SupportEnvironment()
        observation = env.reset(task_id=task_id, seed=_seed(seed))
    except ValueError as exc:
        return _nothing(f"Could not start: {html.escape(str(exc))}")
    return _views(Desk(env, observation), started=True)


def _seed(text: str) -> Optional[int]:
    text = (text or "").strip()
    if not text:
        return None
    if not text.isdigit():
        raise ValueError(f"the seed must be a non-negative whole number, got {text!r}")
    return int(text)


def _acting(make_action: Callable[..., SupportAction]):
    """A click handler: build the action for the current ticket, step, re-render."""

    def handler(desk: Optional[Desk], *fields: str):
        if desk is None:
            return _nothing("Start an episode first.")
        current = desk.observation.current_ticket
        desk.observation = desk.env.step(make_action(current.id if current else "", *fields))
        return _views(desk)

    return handler


# --- rendering ------------------------------------------------------------------


def _views(desk: Desk, started: bool = False) -> tuple:
    obs = desk.observation
    return (
        desk,
        _status(obs, started),
        _ticket(obs),
        _kb_results(obs),
        _records(obs),
        "" if started else _step_result(obs),
        _grade(obs.grade) if obs.grade else "",
        _log(obs),
    )


def _nothing(message: str) -> tuple:
    return (None, _notice(message, error=True), "", "", "", "", "", "")


def _notice(text: str, error: bool = False) -> str:
    colour = "#cf222e" if error else "inherit"
    return f'<div style="padding:6px 2px;color:{colour}">{text}</div>'


def _status(obs: SupportObservation, started: bool) -> str:
    total = sum(entry.reward for entry in obs.conversation_history)
    position = obs.tickets_total - obs.tickets_remaining + 1
    where = "queue empty" if obs.current_ticket is None else f"ticket {position} of {obs.tickets_total}"
    seed = "canonical queue" if obs.seed is None else f"seed {obs.seed}"
    head = "Episode started. " if started else ("Episode over. " if obs.done else "")
    return _notice(
        f"{head}<b>{html.escape(obs.task_id)}</b> ({html.escape(obs.difficulty)}, {seed}) · {where} · "
        f"{obs.steps_remaining} steps left · invalid actions {obs.invalid_actions}/{obs.max_invalid_actions} · "
        f'total reward <b id="total-reward">{total:+.2f}</b>'
        f'<details style="margin-top:4px"><summary style="cursor:pointer;{_MUTED}">Objective</summary>'
        f'<div style="white-space:pre-wrap">{html.escape(obs.objective)}</div></details>'
    )


def _ticket(obs: SupportObservation) -> str:
    t = obs.current_ticket
    if t is None:
        return f'<div style="{_CARD}"><i>No open ticket: the queue is done.</i></div>'
    c = t.customer
    colour = _PRIORITY_COLOURS.get(t.priority, "#6e7781")
    account = getattr(c, "account_id", None)
    thread = "".join(
        f'<div style="{_CARD};margin:8px 0 0 {24 if m.author == "agent" else 0}px">'
        f'<div style="{_MUTED};font-size:.85em">{"You" if m.author == "agent" else html.escape(c.name)}</div>'
        f'<div style="white-space:pre-wrap">{html.escape(m.text)}</div></div>'
        for m in getattr(t, "thread", None) or []
    )
    return (
        f'<div style="{_CARD}">'
        f'<div style="display:flex;justify-content:space-between;gap:8px;align-items:baseline">'
        f'<div style="font-size:1.15em"><b id="ticket-id">{html.escape(t.id)}</b> · {html.escape(t.subject)}</div>'
        f'<span style="background:{colour};color:#fff;border-radius:10px;padding:1px 9px;font-size:.8em">'
        f"{html.escape(t.priority)}</span></div>"
        f'<div style="{_MUTED};margin:4px 0 10px 0">{html.escape(c.name)} &lt;{html.escape(c.email)}&gt; · '
        f"{html.escape(c.company)} · plan <b>{html.escape(c.plan)}</b>"
        f'{f" · account {html.escape(account)}" if account else ""}</div>'
        f'<div style="white-space:pre-wrap">{html.escape(t.body)}</div>{thread}</div>'
    )


def _kb_results(obs: SupportObservation) -> str:
    if not obs.kb_search_results:
        return ""
    items = "".join(
        f'<details style="{_CARD}"><summary style="cursor:pointer"><b>{html.escape(r.article_id)}</b> '
        f'{html.escape(r.title)} <span style="{_MUTED}">score {r.score:.2f}</span></summary>'
        f'<div style="white-space:pre-wrap;margin-top:8px">{html.escape(r.text)}</div></details>'
        for r in obs.kb_search_results
    )
    return f'<div><b>Knowledge base results</b> <span style="{_MUTED}">(click to read)</span>{items}</div>'


def _records(obs: SupportObservation) -> str:
    found = getattr(obs, "records", None) or {}
    items = "".join(
        f'<details style="{_CARD}" open><summary style="cursor:pointer"><b>{html.escape(name)}</b></summary>'
        f'<pre style="white-space:pre-wrap;margin:8px 0 0 0">{html.escape(json.dumps(data, indent=2))}</pre></details>'
        for name, data in found.items()
    )
    return f"<div><b>Records</b>{items}</div>" if items else ""


def _step_result(obs: SupportObservation) -> str:
    if not obs.conversation_history:
        return ""
    last = obs.conversation_history[-1]
    detail = obs.reward_detail
    parts = ", ".join(f"{html.escape(k)} {v:+.2f}" for k, v in detail.components.items()) or "no reward"
    colour = "#1a7f37" if detail.value > 0 else ("#cf222e" if detail.value < 0 else "inherit")
    error = f'<div style="color:#cf222e">Invalid action: {html.escape(obs.last_action_error)}</div>' if obs.last_action_error else ""
    return (
        f'<div style="{_CARD}"><div style="display:flex;gap:16px;align-items:baseline">'
        f'<div style="font-size:1.6em;color:{colour}">reward <b id="step-reward">{detail.value:+.2f}</b></div>'
        f"<div>step {last.step}: <code>{html.escape(last.action)}</code> → {html.escape(last.result)}"
        f'<div style="{_MUTED}">{parts}</div></div></div>{error}</div>'
    )


def _grade(grade: Grade) -> str:
    verdict = "success" if grade.success else ("failed" if grade.failed else "not a success")
    tickets = _table(
        ["ticket", "score", "components (weight)", "notes"],
        (
            [
                f"<b>{html.escape(t.ticket_id)}</b>",
                f"{t.score:.2f}",
                ", ".join(f"{html.escape(k)} {v:.2f} (×{t.weights.get(k, 0):g})" for k, v in t.components.items()),
                "<br>".join(html.escape(n) for n in t.notes) or "—",
            ]
            for t in grade.tickets
        ),
        style="width:100%;margin-top:8px;border-collapse:collapse",
        element_id="grade-tickets",
    )
    return (
        f'<div style="{_CARD}"><div style="font-size:1.4em">Episode grade <b id="grade-score">{grade.score:.2f}</b> · '
        f'{verdict}</div><div style="{_MUTED}">escalation precision {grade.escalation_precision:.2f} · '
        f"recall {grade.escalation_recall:.2f}</div>{tickets}</div>"
    )


def _log(obs: SupportObservation) -> str:
    if not obs.conversation_history:
        return "<i>No steps yet.</i>"
    return _table(
        ["step", "action", "result", "reward"],
        ([str(e.step), f"<code>{html.escape(e.action)}</code>", html.escape(e.result), f"{e.reward:+.2f}"] for e in obs.conversation_history),
        style="width:100%;border-collapse:collapse",
    )


def _table(headings: list[str], rows: Iterable[list[str]], style: str, element_id: str = "") -> str:
    """A table with left-aligned headings; the cells are HTML already."""
    head = "".join(f"<th align=left>{h}</th>" for h in headings)
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>" for row in rows)
    ident = f' id="{element_id}"' if element_id else ""
    return f'<table{ident} style="{style}"><tr>{head}</tr>{body}</table>'
