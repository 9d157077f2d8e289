"""Every phrasing of every template carries the cues the scripted reference policy reads.

The reference policy is the proof that generated episodes are solvable; it reads
keyword cues (category words, emergency and noise cues, what records a case calls
for). Seeds sample phrasings, so this checks all of them: each subject with each
body, with and without each distractor sentence.
"""

from __future__ import annotations

import itertools

import pytest

from support_env.agents import casework
from support_env.episodes.cases import case_templates
from support_env.episodes.generator import SPLITS, pools, templates
from support_env.models import Customer, TicketView
from support_env.agents.reading import classify, emergency, noise_kind

SAMPLE_SLOTS = {
    "month": "March", "weekday": "Monday", "amount": "$49.00", "invoice_id": "INV-12345", "key_last4": "3e1d",
    "card_last4": "4417", "own_email": "owner@example.com", "pack": "5-pack", "delivered_weekday": "Monday",
}


def slot_variants(split: str, texts: list[str]) -> list[dict[str, str]]:
    """Slot values to fill with: every error code where a text uses one (codes are cues), else one set."""
    pool = pools()[split]
    base = {**SAMPLE_SLOTS, "first_name": pool["first_names"][0], "company": pool["companies"][0],
            "project": pool["projects"][0], "region": pool["regions"][0], "error_code": pool["error_codes"][0]}
    if any("{error_code}" in t for t in texts):
        return [{**base, "error_code": code} for code in pool["error_codes"]]
    return [base]


def views(template, details=()) -> list[TicketView]:
    prose = getattr(template, "prose", template)  # a case template keeps its words in `prose`
    bodies = [b for texts in prose.bodies.values() for b in texts]
    out = []
    for slots in slot_variants(template.split, [*prose.subjects, *bodies, *details]):
        for subject, body, detail in itertools.product(prose.subjects, bodies, [None, *details]):
            text = body if detail is None else f"{body} {detail}"
            out.append(TicketView(
                id="T01", subject=subject.format_map(slots), body=text.format_map(slots), priority="normal",
                customer=Customer(name="A B", company=slots["company"], plan="pro", email="a@b.example.com"),
            ))
    return out


def misread(view: TicketView, kind: str, category: str | None) -> str | None:
    rule = emergency(view)
    if kind == "noise":
        return None if noise_kind(view) else "not recognised as noise"
    if noise_kind(view):
        return f"read as {noise_kind(view)}"
    if (rule is not None) != (kind == "critical"):
        return f"emergency rule {rule.name if rule else None} on a {kind} ticket"
    if classify(view) != category:
        return f"classified {classify(view)}, expected {category}"
    return None


@pytest.mark.parametrize("template", templates(), ids=lambda t: t.id)
def test_every_template_phrasing_carries_its_cues(template):
    problems = {f"{misread(v, template.kind, template.category)}: {v.subject} | {v.body[:120]}" for v in views(template, template.details) if misread(v, template.kind, template.category)}
    assert not problems, "\n".join(sorted(problems)[:5])


@pytest.mark.parametrize("template", [t for t in case_templates() if t.family is None], ids=lambda t: t.id)
def test_every_case_phrasing_carries_its_cues_and_calls_for_its_records(template):
    for view in views(template):
        assert misread(view, template.kind, template.category) is None, (misread(view, template.kind, template.category), view.subject, view.body)
        rule = emergency(view)
        assert sorted(casework.records_to_check(view, rule.name if rule else None)) == sorted(template.evidence), (view.subject, view.body)


def test_both_splits_are_checked():
    assert {t.split for t in templates()} == {t.split for t in case_templates()} == set(SPLITS)
