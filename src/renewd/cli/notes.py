"""What a command says beside its results, so that they never mislead: steps already in the
ledger, a template rendered in another locale than the one asked for."""

from __future__ import annotations

from collections import Counter
from collections.abc import Collection
from datetime import date
from typing import TYPE_CHECKING

from renewd.config.model import Config
from renewd.core.errors import suggest
from renewd.policy.model import Policy

if TYPE_CHECKING:
    from renewd.delivery.templating import Renderer

SHOWN_STATES = (
    "done",
    "held",
    "pending",
    "sending",
    "waiting",
    "failed",
    "superseded",
    "cancelled",
    "standby",
)


def recorded(states: Counter[str], days: Collection[date]) -> list[str]:
    """A dry-run after `run`: the day's steps already in the ledger are not shown again; say how
    many there are and where to see them, rather than a bare `(no actions)`."""
    total = sum(states.values())
    if not total:
        return []
    ordered = sorted(days)
    span = ordered[0].isoformat() + (f" to {ordered[-1]}" if len(ordered) > 1 else "")
    named = [f"{states[s]:,} {s}" for s in SHOWN_STATES if states[s]]
    other = total - sum(states[s] for s in SHOWN_STATES)
    named += [f"{other:,} other"] if other else []
    lines = [
        f"already in the ledger for {span}, so not shown: {total:,} actions ({', '.join(named)})"
    ]
    where = "renewd runs (and runs --show N for a run's held steps), renewd history MAILBOX_ID"
    lines.append(f"  see: {where}")
    return lines


def fallbacks(
    config: Config, policy: Policy, renderer: Renderer, rule_id: str, locale: str
) -> list[str]:
    """`render --locale fr` when there is no `fr` template: it is rendered as a customer with
    that locale would get it, in the default locale, and says so."""
    from renewd.delivery.templating import PARTS

    rule = next((r for r in policy.rules if r.id == rule_id), None)
    if rule is None:
        return []
    missing = sorted(
        {
            part
            for channel in rule.notify
            for part in PARTS[channel]
            if renderer.find(rule.template, locale, part) is None
        }
    )
    if not missing:
        return []
    notes = [
        f"no {locale!r} template {rule.template}/{', '.join(missing)}: rendered in "
        f"{config.default_locale!r} (the config's default_locale), as a customer whose locale "
        f"is {locale!r} would receive it"
    ]
    if locale not in config.locales:
        known, close = ", ".join(config.locales), suggest(locale, config.locales)
        notes.append(f"{locale!r} is not one of the config's locales ({known}){close}")
    return notes
