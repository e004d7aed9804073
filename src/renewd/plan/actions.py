"""A due step's decisions for one mailbox: made millions of times in a long simulation, so made
without the frozen dataclass's `__init__`, which sets each field through `object.__setattr__`
(a `Decision` of 16 fields took 5 us that way, 2 us this way)."""

from __future__ import annotations

from datetime import date

from renewd.core.cycles import Cycle
from renewd.core.model import Decision, Kind, Mailbox, StepKey, constructor
from renewd.core.money import Funds
from renewd.policy.model import Rule

DEDUCT, NOTIFY, DELETE = Kind.DEDUCT, Kind.NOTIFY, Kind.DELETE  # plain names: see plan.evaluate


decision = constructor(Decision)
step_key = constructor(StepKey)


class Actions:
    """What each rule does, kept by rule and by whether the mailbox has a phone."""

    def __init__(self) -> None:
        self._kinds: dict[tuple[str, bool], tuple[tuple[Kind, str, str], ...]] = {}

    def of(
        self,
        rule: Rule,
        key: StepKey,
        mailbox: Mailbox,
        today: date,
        superseded_by: str,
        funds: Funds,
        cycle: Cycle,
    ) -> list[Decision]:
        """A rule's actions in the order they happen: charge, tell, then delete."""
        phone = bool(mailbox.phone)
        kinds = self._kinds.get((rule.id, phone))
        if kinds is None:
            kinds = self._kinds[rule.id, phone] = _kinds(rule, phone)
        mailbox_id, account_id, anchor = mailbox.mailbox_id, mailbox.account_id, rule.anchor
        cycle_key, step, next_end, anchor_day = (
            key.cycle,
            key.step,
            cycle.next_end,
            cycle.anchor_day,
        )
        return [
            decision(
                today,
                mailbox_id,
                account_id,
                rule.id,
                cycle_key,
                step,
                kind,
                anchor,
                channel,
                template,
                mailbox.renewal_fee if kind is DEDUCT else None,
                mailbox.currency if kind is DEDUCT else "",
                superseded_by,
                funds,
                next_end,
                anchor_day,
            )
            for kind, channel, template in kinds
        ]


def _kinds(rule: Rule, phone: bool) -> tuple[tuple[Kind, str, str], ...]:
    """What a rule does for a mailbox with or without a phone, in order: (kind, channel,
    template)."""
    kinds = [(DEDUCT, "", "")] if rule.deduct else []
    kinds += [(NOTIFY, c, rule.template) for c in rule.notify if c != "sms" or phone]
    kinds += [(DELETE, "", "")] if rule.delete else []
    return tuple(kinds)
