"""`renewd run` over several days: what one run leaves open must still be right on the next.

Each test replays a way an earlier renewd charged twice, deleted or reminded on stale data, or
left a row open for good, against real SQLite files, real processes and a real HTTP peer.
"""

from __future__ import annotations

import functools
import os
import shutil
import time
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from peers.backend import BackendPeer
from renewd.state.schema import actions

import support
from support import ROOT, Project, csv_row

DAY = date(2026, 12, 1)
STILL_OPEN = ("held", "waiting", "standby")  # a row in these waits on another row or a later run


def days(n: int) -> date:
    return DAY + timedelta(days=n)


@pytest.fixture(autouse=True, params=["sqlite", "postgresql"])
def on_both_ledgers(request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every hole found here once is checked on both ledgers: each Project of a test gets the
    same new PostgreSQL database in the second run."""
    if request.param == "postgresql":
        url = request.getfixturevalue("postgres").database()
        monkeypatch.setitem(globals(), "Project", functools.partial(support.Project, ledger=url))


def http(url: str, timeout: float = 5) -> str:
    """A billing or provisioning setting: one attempt, so a dead peer costs one timeout."""
    return f"{{backend: http, url: '{url}', timeout: {timeout}, attempts: 1, backoff: 0}}"


def newer(snapshot: Path) -> None:
    """Date the file a second ahead: written after anything recorded so far (no sleep)."""
    later = time.time() + 1
    os.utime(snapshot, (later, later))


def dead_url() -> str:
    """The address of a peer that has gone away: connections to it are refused."""
    with BackendPeer() as peer:
        return peer.url


def crowd() -> list[str]:
    """100 mailboxes far from expiry: enough rows for the shrink guard to notice half going."""
    return [csv_row(f"mb-{n:03d}", days(100 + n)) for n in range(100)]


def two_on_one_account(balance: str) -> tuple[str, str]:
    return (
        csv_row("mb-a", days(3), account_id="acct-1", auto_renew=True, balance=balance),
        csv_row("mb-b", days(4), account_id="acct-1", auto_renew=True, balance=balance),
    )


def action_rows(project: Project, mailbox_id: str) -> list[tuple[str, str, str, str, str]]:
    """(rule, kind, channel, state, error) of every ledger row for the mailbox, oldest first."""
    ledger = project.ledger()
    try:
        with ledger.engine.connect() as conn:
            query = select(actions).where(actions.c.mailbox_id == mailbox_id).order_by(actions.c.id)
            return [(r.rule, r.kind, r.channel, r.state, r.error) for r in conn.execute(query)]
    finally:
        ledger.close()


def outbox_depth(project: Project) -> int:
    ledger = project.ledger()
    try:
        return ledger.outbox_depth()
    finally:
        ledger.close()


class RefusingPeer(BackendPeer):
    """A billing peer that answers every request with one HTTP error, e.g. 401 for a bad token."""

    def __init__(self, status: int) -> None:
        super().__init__()
        self.status = status

    def answer(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        with self.lock:
            self.requests.append((key, body))
        return self.status, {"error": "token expired"}, 0.0


# -- balances -------------------------------------------------------------------------------


def test_a_charge_left_pending_by_a_crash_counts_against_a_later_snapshot(
    tmp_path: Path,
) -> None:
    """A charge decided but not yet made is subtracted from the balance of a snapshot written
    after the decision: the snapshot cannot show money that has not been taken yet."""
    project = Project(tmp_path)
    project.snapshot(*two_on_one_account("150.00"))
    assert project.run(DAY, env={"RENEWD_CRASH_AT": "after-plan"}).returncode == -9
    # the next export is newer than the order for mb-a, which is still to be charged
    newer(project.snapshot(*two_on_one_account("150.00")))
    assert project.run(days(1)).returncode == 0
    charged = sum(
        (Decimal(o["amount"]) for o in project.orders() if o["state"] == "charged"), Decimal(0)
    )
    assert charged <= Decimal("150.00"), project.orders()


def test_a_charge_left_pending_by_a_billing_outage_counts_against_a_later_snapshot(
    tmp_path: Path,
) -> None:
    """A charge billing could not make yet is subtracted from a later snapshot's balance, so two
    mailboxes on one account are not both charged from money that only covers one."""
    project = Project(tmp_path, billing=http(dead_url(), timeout=1))
    project.snapshot(*two_on_one_account("150.00"))
    assert project.run(DAY).returncode == 0
    assert [o["state"] for o in project.orders()] == ["pending"]
    newer(project.snapshot(*two_on_one_account("150.00")))  # billing was down: nothing taken
    with BackendPeer() as peer:
        project = Project(tmp_path, billing=http(peer.url))
        assert project.run(days(1)).returncode == 0
    assert len(peer.effects) <= 1, f"150.00 paid two fees of 120.00: {list(peer.effects)}"


# -- one payment per period -----------------------------------------------------------------


def test_an_expiry_moved_by_a_day_is_not_charged_again(tmp_path: Path) -> None:
    """A period already paid is not paid again when the export moves `expires_on` by a day
    (a day granted for an outage, another time zone) before billing applies the renewal."""
    project = Project(tmp_path)
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0
    project.snapshot(csv_row("mb-1", days(4), auto_renew=True, balance="380.00"))
    assert project.run(days(1)).returncode == 0
    charged = [
        (o["cycle"], o["period_from"], o["period_to"])
        for o in project.orders()
        if o["state"] == "charged"
    ]
    assert len(charged) == 1, f"the same year was paid twice: {charged}"


def test_a_pending_charge_is_dropped_once_the_customer_renewed_by_hand(tmp_path: Path) -> None:
    """A charge left open by a billing outage is not made once the snapshot shows the customer
    already paid the next period some other way."""
    project = Project(tmp_path, billing=http(dead_url(), timeout=1))
    project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0  # billing down: the order stays pending
    with BackendPeer() as peer:
        project = Project(tmp_path, billing=http(peer.url))
        project.snapshot(csv_row("mb-1", days(3 + 365), auto_renew=True, balance="500.00"))
        assert project.run(days(1)).returncode == 0
    assert peer.effects == {}, "charged for a period the customer had already paid by hand"


def test_a_charge_and_a_deletion_of_one_cycle_have_different_idempotency_keys(
    tmp_path: Path,
) -> None:
    """The charge and the deletion of the same cycle never share an Idempotency-Key, so a backend
    cannot answer the deletion with the charge's stored result."""
    with BackendPeer() as peer:
        peer.script["mb-1"] = ["declined", "deleted"]
        project = Project(
            tmp_path, billing=http(peer.url), extra=f"provisioning: {http(peer.url)}\n"
        )
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0  # declined: the failure path goes out
        for n in (3 + 29, 3 + 30):
            project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="0.00"))
            project.run(days(n))
    keys = [key for key, _ in peer.requests]
    assert len(set(keys)) == len(keys), f"one Idempotency-Key for a charge and a deletion: {keys}"


# -- what earlier runs left open meets today's snapshot -------------------------------------


def test_a_pending_deletion_is_dropped_once_the_mailbox_was_renewed(tmp_path: Path) -> None:
    """A deletion left open by a provisioning outage is not carried out once the snapshot shows
    the mailbox renewed."""
    project = Project(tmp_path, extra=f"provisioning: {http(dead_url(), timeout=1)}\n")
    other = csv_row("mb-other", days(200), phone="")
    project.snapshot(csv_row("mb-1", days(-29)), other)
    assert project.run(DAY).returncode == 0  # seen expired (D+29)
    new = csv_row("mb-new", days(300), phone="")
    project.snapshot(csv_row("mb-1", days(-29)), other, new)
    result = project.run(days(1))  # D+30: provisioning is down, the deletion stays open
    assert "delete:retry" in result.stdout, result.stdout
    with BackendPeer(default="deleted") as peer:
        project = Project(tmp_path, extra=f"provisioning: {http(peer.url, timeout=1)}\n")
        project.snapshot(csv_row("mb-1", days(-29 + 365)), other, new)  # renewed by hand
        assert project.run(days(2)).returncode == 0
    assert peer.effects == {}, "a renewed mailbox was deleted from a days-old decision"


def test_a_held_run_makes_no_charge_an_earlier_run_left_open(tmp_path: Path) -> None:
    """A run the shrink guard holds charges nobody, not even for a charge an earlier run
    decided and could not make."""
    project = Project(tmp_path, billing=http(dead_url(), timeout=1))
    others = crowd()
    project.snapshot(*others, csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 0  # billing down: the order stays pending
    with BackendPeer() as peer:
        project = Project(tmp_path, billing=http(peer.url))
        project.snapshot(
            *others[:40], csv_row("mb-renew", days(3), auto_renew=True, balance="0.00")
        )
        held = project.run(days(1))
        assert held.returncode == 3 and "shrank" in held.stdout
    assert peer.effects == {}, "a run the shrink guard held charged a customer"


def test_a_reminder_is_not_sent_after_the_mailbox_was_renewed(tmp_path: Path) -> None:
    """A reminder that could not go out is dropped, not sent late, once the snapshot shows the
    mailbox renewed."""
    project = Project(tmp_path)
    spool = tmp_path / "out" / "mail"
    for sub in ("new", "cur"):
        (spool / sub).mkdir(parents=True)
    (spool / "tmp").write_text("not a directory")  # the mail spool is broken
    project.snapshot(csv_row("mb-1", days(7), phone=""))
    first = project.run(DAY)
    assert "retry" in first.stdout, first.stdout
    (spool / "tmp").unlink()
    (spool / "tmp").mkdir()
    # the customer renews by hand before the spool is fixed
    project.snapshot(csv_row("mb-1", days(7 + 365), phone=""))
    assert project.run(days(3)).returncode == 0
    subjects = [str(m["Subject"]) for m in project.emails()]
    assert subjects == [], f"renewed mailbox got the old cycle's reminder: {subjects}"


# -- guards and held steps ------------------------------------------------------------------


def test_a_rerun_of_the_same_shrunken_snapshot_is_still_held(tmp_path: Path) -> None:
    """Running again does not lift the shrink guard: only --allow-mass-deletion does."""
    project = Project(tmp_path)
    rows = crowd()
    project.snapshot(*rows)
    assert project.run(DAY).returncode == 0
    project.snapshot(*rows[:50], csv_row("mb-renew", days(4), auto_renew=True, balance="500.00"))
    held = project.run(days(1))
    assert held.returncode == 3 and project.orders() == []
    again = project.run(days(1))  # nobody overrode anything: cron just runs again
    assert again.returncode == 3, again.stdout
    assert project.orders() == [], (
        "the shrunken export charged a customer without --allow-mass-deletion"
    )


def test_a_held_deduction_the_balance_no_longer_covers_leaves_nothing_open(
    tmp_path: Path,
) -> None:
    """A deduction held by a guard, then not decided again because the balance has gone, is
    closed with what waits on it instead of staying held for good."""
    project = Project(tmp_path)
    others = crowd()
    project.snapshot(*others, csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"))
    assert project.run(days(-1)).returncode == 0
    # a bad export on the auto-renew day: the shrink guard holds the deduction
    project.snapshot(*others[:50], csv_row("mb-renew", days(3), auto_renew=True, balance="500.00"))
    assert project.run(DAY).returncode == 3
    # the next export is whole again; the customer's balance has meanwhile gone
    project.snapshot(*others, csv_row("mb-renew", days(3), auto_renew=True, balance="0.00"))
    assert project.run(days(1)).returncode == 0
    for n in (2, 3, 10):
        project.snapshot(*others, csv_row("mb-renew", days(3), auto_renew=True, balance="0.00"))
        project.run(days(n))
    rows = action_rows(project, "mb-renew")
    stuck = [r for r in rows if r[3] in STILL_OPEN]
    told = [str(m["Subject"]) for m in project.emails() if str(m["To"]) == "mb-renew@example.cn"]
    assert not stuck, (
        f"rows never leave held/waiting/standby: {stuck}; all rows: {rows}; mails: {told}"
    )


def test_a_held_deduction_then_a_manual_renewal_leaves_nothing_open(tmp_path: Path) -> None:
    """A deduction held by a guard is closed, with what waits on it, once the snapshot shows
    the customer renewed by hand."""
    project = Project(tmp_path)
    others = crowd()
    renew = csv_row("mb-renew", days(3), auto_renew=True, balance="500.00")
    project.snapshot(*others, renew)
    assert project.run(days(-1)).returncode == 0
    project.snapshot(*others[:50], renew)
    assert project.run(DAY).returncode == 3
    project.snapshot(*others, csv_row("mb-renew", days(3 + 365), auto_renew=True, balance="380.00"))
    assert project.run(days(1)).returncode == 0
    stuck = [r for r in action_rows(project, "mb-renew") if r[3] in STILL_OPEN]
    depth = outbox_depth(project)
    assert not stuck and depth == 0, f"stuck: {stuck}; outbox_depth={depth}"


def second_deduction(rule: str, *, renewed_condition: bool) -> str:
    """A hand-written rule that deducts again on the day before expiry."""
    renewed = "      renewed: false\n" if renewed_condition else ""
    return f"""
rules:
  - id: {rule}
    priority: 5
    when:
      is_paid: true
      auto_renew: true
{renewed}      balance_covers_fee: true
      days_to_expiry: 1
    then: {{deduct: true, notify: [email], template: auto-renew}}
"""


def with_rule(tmp_path: Path, text: str, billing: str) -> Project:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules / "lifecycle.yaml")
    (rules / "extra.yaml").write_text(text, encoding="utf-8")
    project = Project(tmp_path, billing=billing)
    config = project.config.read_text().replace(f"rules: {ROOT / 'rules'}", f"rules: {rules}")
    project.config.write_text(config)
    return project


def test_a_second_deduction_in_a_paid_cycle_fails_and_leaves_no_message_waiting(
    tmp_path: Path,
) -> None:
    """When a later rule decides a second deduction in a cycle that already has a charged order,
    the deduction fails and its message is closed with it, never left waiting."""
    with BackendPeer() as peer:
        rule = second_deduction("charge-again", renewed_condition=False)
        project = with_rule(tmp_path, rule, http(peer.url))
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        second = project.run(days(2))
        assert second.returncode == 0, second.stderr
    assert [(o["attempt"], o["state"]) for o in project.orders()] == [(1, "charged")]
    assert len(peer.requests) == 1
    rows = action_rows(project, "mb-1")
    assert ("charge-again", "deduct", "", "failed") in [r[:4] for r in rows], rows
    waiting = [r for r in rows if r[3] in STILL_OPEN]
    depth = outbox_depth(project)
    assert not waiting and depth == 0, f"{waiting}; outbox_depth={depth}; all: {rows}"


def test_a_deduction_after_a_decline_is_a_new_attempt_with_its_own_key(tmp_path: Path) -> None:
    """A declined charge leaves its cycle open: a later deduction in it is the cycle's second
    attempt, sent with a key of its own (an idempotent peer would answer the first key with the
    first decline), and nothing is left waiting."""
    with BackendPeer() as peer:
        peer.script["mb-1"] = ["declined"]
        project = with_rule(
            tmp_path, second_deduction("charge-again", renewed_condition=True), http(peer.url)
        )
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(DAY).returncode == 0
        project.snapshot(csv_row("mb-1", days(3), auto_renew=True, balance="500.00"))
        assert project.run(days(2)).returncode == 0
    keys = ["renewd:charge:mb-1:2026-12-04", "renewd:charge:mb-1:2026-12-04:2"]
    assert [key for key, _ in peer.requests] == keys
    assert [(o["attempt"], o["idempotency_key"], o["state"]) for o in project.orders()] == [
        (1, keys[0], "declined"),
        (2, keys[1], "charged"),
    ]
    rows = action_rows(project, "mb-1")
    assert not [r for r in rows if r[3] in STILL_OPEN] and outbox_depth(project) == 0, rows


# -- billing refusals -----------------------------------------------------------------------


def test_an_expired_billing_token_leaves_the_charge_for_the_next_run(tmp_path: Path) -> None:
    """A 401 from billing is the operator's problem, not the customer's refusal: the charge stays
    open and is tried again once the token is fixed."""
    row = csv_row("mb-1", days(3), auto_renew=True, balance="500.00")
    with RefusingPeer(401) as refusing:
        project = Project(tmp_path, billing=http(refusing.url, timeout=2))
        project.snapshot(row)
        assert project.run(DAY).returncode == 0
    assert refusing.requests, "the first run never asked billing"
    after_401 = (project.orders()[0]["state"], len(project.emails()), len(project.sms()))
    with BackendPeer() as peer:  # the operator fixes the token
        project = Project(tmp_path, billing=http(peer.url))
        project.snapshot(row)
        assert project.run(days(1)).returncode == 0
    assert peer.requests, (
        f"after a 401 the order is {after_401[0]!r}, {after_401[1]} emails / {after_401[2]} sms "
        "sent to the customer, and the charge is never tried again"
    )
