"""The day's plan as ledger steps: for each rule's step for a mailbox, the lead effect (a charge
or a deletion), its messages, and what stands by in case billing declines the charge.

Worked out before anything is done, so that the run's whole plan is written in one transaction.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

from renewd.config.model import Config
from renewd.core.dates import add_months
from renewd.core.model import Decision, Kind, Mailbox, StepKey
from renewd.core.money import Funds
from renewd.delivery.formats import formats_for
from renewd.delivery.messages import variables
from renewd.plan.day import DayResult, Part
from renewd.policy.model import Policy
from renewd.state.plans import PlannedStep


def ledger_steps(
    config: Config,
    policy: Policy,
    result: DayResult,
    mass: str,
    holds: dict[StepKey, str],
    seen: Callable[[Part], None] = lambda _: None,
) -> Iterator[PlannedStep]:
    """The plan as ledger steps, a part at a time; `seen` is shown each part as it is read
    (reading a big day's parts back from disk costs most of a second: once is enough).

    A step a deduction superseded but would send if billing declined it (a grace reminder due
    on a retry day) is not written as superseded: it stands by for the decline instead.
    """
    for part in result.parts():
        seen(part)
        groups: dict[StepKey, list[Decision]] = {}
        for decision in part.decisions:
            groups.setdefault(decision.key, []).append(decision)
        steps = {
            key: _step(config, policy, result, part, groups, key, mass or holds.get(key, ""))
            for key in groups
        }
        standing_by = {_key_of(row) for step in steps.values() for row in step.fallback}
        yield from (step for key, step in steps.items() if key not in standing_by)


def _step(
    config: Config,
    policy: Policy,
    result: DayResult,
    part: Part,
    groups: dict[StepKey, list[Decision]],
    key: StepKey,
    reason: str,
) -> PlannedStep:
    """One rule's step for one mailbox as ledger rows: the lead effect, messages, fallback."""
    members = groups[key]
    mailbox = part.mailboxes[key.mailbox_id]
    if members[0].superseded_by:
        return PlannedStep(None, [_row(d, "superseded") for d in members])
    lead = next((d for d in members if d.kind is not Kind.NOTIFY), None)
    free = lead is not None and lead.kind is Kind.DEDUCT and lead.amount == 0 and not reason
    messages = [d for d in members if d.kind is Kind.NOTIFY]
    rows = [
        _row(d, "waiting" if lead and not free else "pending", _payload(config, policy, mailbox, d))
        for d in messages
    ]
    if lead is None:
        return PlannedStep(None, rows)
    state = "held" if reason else "done" if free else "pending"
    step = PlannedStep(_row(lead, state, error=reason), rows)
    if lead.kind is not Kind.DEDUCT or free:
        if free:  # renewed at no charge: never billed, never invoiced
            step.order = {**_order(key, mailbox, lead), "backend": config.billing["backend"]}
            step.order["state"] = "free"
        return step
    fallback = _declined(result, part, groups, mailbox, lead)
    if reason:  # what it supersedes is decided again with it on the next run
        step.fallback = [
            {**_row(d, "held", error=reason), "superseded_by": lead.rule}
            for d in fallback
            if d.key in groups
        ]
        return step
    step.order = {**_order(key, mailbox, lead), "backend": config.billing["backend"]}
    step.fallback = [
        {
            **_row(d, "standby", _payload(config, policy, mailbox, d, declined=True)),
            "superseded_by": lead.rule if d.key in groups else "",
        }
        for d in fallback
    ]
    return step


def _declined(
    result: DayResult,
    part: Part,
    groups: dict[StepKey, list[Decision]],
    mailbox: Mailbox,
    lead: Decision,
) -> list[Decision]:
    """The messages the policy sends if billing declines `lead`, worked out now so that they can
    stand by in the ledger: those of steps not in today's plan, and those `lead` superseded."""
    funds = lead.funds or Funds(mailbox.balance)
    found = []
    for d in result.evaluator.declined(mailbox, result.window, part.history, funds):
        if d.superseded_by or d.kind is not Kind.NOTIFY:
            continue
        planned = groups.get(d.key)
        if planned is None or planned[0].superseded_by == lead.rule:
            found.append(d)
    return found


def _key_of(row: dict[str, Any]) -> StepKey:
    return StepKey(row["mailbox_id"], row["rule"], row["cycle"], row["step"])


def _order(key: StepKey, mailbox: Mailbox, lead: Decision) -> dict[str, Any]:
    """The consumption order: the ledger numbers it among the cycle's charge attempts and gives
    it the attempt's idempotency key. Its paid period ends where the cycle model moves the
    expiry, on the cycle's anchor day."""
    return {
        "mailbox_id": key.mailbox_id,
        "account_id": mailbox.account_id,
        "cycle": key.cycle,
        "amount": str(lead.amount),
        "currency": lead.currency,
        "period_from": key.cycle,
        "period_to": lead.next_expiry or add_months(key.cycle, mailbox.renewal_months),
        "anchor_day": lead.anchor_day or None,
        "renewed_on": lead.date,
    }


def _row(decision: Decision, state: str, payload: str = "{}", error: str = "") -> dict[str, Any]:
    return {
        "day": decision.date,
        "mailbox_id": decision.mailbox_id,
        "account_id": decision.account_id,
        "rule": decision.rule,
        "cycle": decision.cycle,
        "step": decision.step,
        "anchor": decision.anchor.value,
        "kind": decision.kind.value,
        "channel": decision.channel,
        "template": decision.template,
        "amount": "" if decision.amount is None else str(decision.amount),
        "currency": decision.currency,
        "superseded_by": decision.superseded_by,
        "state": state,
        "payload": payload,
        "error": error,
        "attempts": 0,
        "provider_id": "",
        "not_before": "",
    }


def _payload(
    config: Config, policy: Policy, mailbox: Mailbox, decision: Decision, declined: bool = False
) -> str:
    to = mailbox.phone if decision.channel == "sms" else mailbox.email
    formats = formats_for(mailbox.locale, config.locales, config.default_locale)
    values = variables(mailbox, decision, policy, config.messages, declined, formats)
    return _JSON.encode({"to": to, "locale": formats.written, "vars": values})


_JSON = json.JSONEncoder(ensure_ascii=False)  # what json.dumps(..., ensure_ascii=False) makes anew
