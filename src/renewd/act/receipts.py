"""Recording receipts and telling what they mean: deliveries by channel and state, and the final
warnings before a deletion that did not arrive (what an operator must look at before data goes).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta

from renewd.config.model import Config
from renewd.config.plugins import Secret, SettingsError, secret
from renewd.core.delivery import NOT_ARRIVED, Receipt
from renewd.core.model import Anchor
from renewd.policy.model import Policy
from renewd.state.receipts import Receipts, Recorded


def final_steps(policy: Policy) -> dict[str, int]:
    """Per channel, the step of the last warning before the deletion: the latest day, before the
    policy's first deleting step, on which a rule sends on that channel (D+29 in the shipped
    policy, on both channels). Nothing without a deleting rule."""
    deletion = policy.deletion_after
    steps: dict[str, int] = {}
    if deletion is None:
        return steps
    for rule in policy.rules:
        if rule.anchor is not Anchor.EXPIRY or rule.delete:
            continue
        before = [step for step in rule.steps if step < deletion]
        if not before:
            continue
        for channel in rule.notify:
            steps[channel] = max(steps.get(channel, max(before)), max(before))
    return steps


def twilio_credentials(config: Config) -> tuple[Secret, str]:
    """The auth token Twilio signs callbacks with, and the account: the SMS sender's."""
    settings = config.senders.get("sms", {})
    if settings.get("backend") != "twilio":
        raise SettingsError("receipts.listen: Twilio's callbacks need senders.sms to be twilio")
    if not config.callback_url:
        raise SettingsError(
            "receipts.listen: set senders.sms.status_callback (or receipts.callback_url) to the "
            "URL Twilio posts to"
        )
    token = secret(settings, "auth_token", "senders.sms", config.base)
    return token, str(settings.get("account_sid", ""))


@dataclass
class Tally:
    """What a batch of receipts did: outcomes (recorded, unchanged, unknown, and the reader's
    own such as malformed), new delivery states by channel, the final warnings that did not
    arrive, and the reader's problems (a malformed file: where it is kept), one line each."""

    outcomes: Counter[str] = field(default_factory=Counter)
    deliveries: Counter[tuple[str, str]] = field(default_factory=Counter)
    final: list[tuple[str, str]] = field(default_factory=list)  # (channel, what happened)
    problems: list[str] = field(default_factory=list)

    def add(self, other: Tally) -> None:
        self.outcomes.update(other.outcomes)
        self.deliveries.update(other.deliveries)
        self.final += other.final
        self.problems += other.problems


def record(ledger: Receipts, receipts: Sequence[Receipt], policy: Policy) -> Tally:
    """Record receipts in one transaction and tally what they did."""
    tally = Tally()
    if receipts:
        tally.add(judge(ledger.record_receipts(receipts), policy))
    return tally


def judge(results: Sequence[Recorded], policy: Policy) -> Tally:
    """The tally of recorded receipts under `policy` (which says which warnings are final)."""
    tally = Tally()
    finals = final_steps(policy)
    deletion = policy.deletion_after
    for result in results:
        tally.outcomes[result.outcome] += 1
        receipt, row = result.receipt, result.row
        if result.outcome != "recorded" or row is None:
            continue
        tally.deliveries[(receipt.channel, receipt.status)] += 1
        final = (
            receipt.status in NOT_ARRIVED
            and row["anchor"] == Anchor.EXPIRY.value
            and finals.get(row["channel"]) == row["step"]
            and deletion is not None
        )
        if final and deletion is not None:
            due = row["cycle"] + timedelta(days=deletion)
            code = f" {receipt.code}" if receipt.code else ""
            why = f": {receipt.detail}" if receipt.detail else ""
            tally.final.append(
                (
                    row["channel"],
                    f"the final warning to {row['mailbox_id']} before its deletion on {due} "
                    f"({row['rule']} D{row['step']:+d}, {row['channel']}) did not arrive: "
                    f"{receipt.status}{code}{why}",
                )
            )
    return tally
