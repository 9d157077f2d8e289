"""Playbooks: the reference policy's reasoning for record-backed cases, one module per domain.

A playbook reads only the observation (ticket, thread, records looked up so far, `today`) and
the public knowledge base. `plan` returns every step for the ticket in order, given what is
known now, or None when the ticket is not its kind; the reference policy takes the first step
not yet done, and asks again after every step (records and the customer's answers arrive).
"""

from __future__ import annotations

from . import accounts, billing, incidents

# Checked in this order; the first that recognises a ticket plans it.
PLAYBOOKS = (accounts.plan, billing.plan, incidents.plan)
