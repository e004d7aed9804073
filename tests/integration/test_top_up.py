"""The opt-in auto-renewal retry, from the customer's side: what they were sent, what they were
charged, whether their mailbox was deleted. The real `run` works day by day on a real ledger
(SQLite and PostgreSQL) against a real HTTP billing peer; the policy is the shipped one plus
`examples/auto-renew-retry.yaml` (retries the day before expiry and 1, 7 and 15 days after).

mb-1 expires on 2026-12-04 (D); its auto-renewal is on D-3, when its balance (50.00) is short of
the 120.00 fee. A twin project with the shipped policy alone, fed the same snapshots, shows what
happens without retries: "as before" means exactly that.
"""

from __future__ import annotations

import shutil
from collections import Counter
from collections.abc import Callable, Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest

from peers.backend import BackendPeer
from renewd.act.run import run_day
from renewd.cli.options import load

from support import ROOT, Project, csv_row

EXPIRES = date(2026, 12, 4)
KEY = "renewd:charge:mb-1:2026-12-04"
RENEWED = "Mailbox mb-1 renewed after all, through December 3, 2027"
FAILED = "Action needed: auto-renewal failed for mb-1"


def on(offset: int) -> date:
    return EXPIRES + timedelta(days=offset)


Ledgers = Callable[[], str]


@pytest.fixture(params=["sqlite", "postgresql"])
def ledgers(request: pytest.FixtureRequest) -> Ledgers:
    """A new ledger for each project: a SQLite file in its folder (""), or a new database."""
    if request.param == "sqlite":
        return lambda: ""
    return request.getfixturevalue("postgres").database  # type: ignore[no-any-return]


@pytest.fixture
def peer() -> Iterator[BackendPeer]:
    with BackendPeer() as started:
        yield started


def rules_with_retry(root: Path) -> Path:
    rules = root / "rules"
    rules.mkdir(parents=True)
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules)
    shutil.copy(ROOT / "examples" / "auto-renew-retry.yaml", rules)
    return rules


def project_for(root: Path, peer: BackendPeer, ledgers: Ledgers, retry: bool = True) -> Project:
    root.mkdir(parents=True, exist_ok=True)
    billing = f"{{backend: http, url: '{peer.url}', timeout: 5, attempts: 1, backoff: 0}}"
    rules = rules_with_retry(root) if retry else ROOT / "rules"
    return Project(root, billing=billing, rules=rules, ledger=ledgers())


def export(project: Project, day: date, balance: str, expires_on: date = EXPIRES) -> Path:
    """The day's export: mb-1, and a signup of that day (every export differs, as real ones do:
    the deletion guard trusts only a sighting in another file)."""
    return project.snapshot(
        csv_row("mb-1", expires_on, auto_renew=True, balance=balance, locale="en"),
        csv_row(f"signup-{day}", date(2027, 9, 1), edition="free"),
    )


def run(project: Project, day: date) -> str:
    config, policy = load(project.config)
    return run_day(config, policy, project.root / "snapshot.csv", day).status


def subjects(project: Project) -> list[str]:
    return [str(m["Subject"]) for m in project.emails()]


def bodies(project: Project) -> list[str]:
    found = []
    for email in project.emails():
        part = email.get_body(("plain",))
        assert part is not None
        found.append(part.get_content())
    return found


def deleted(project: Project) -> list[str]:
    return [r["state"] for r in history(project) if r["kind"] == "delete"]


def history(project: Project) -> list[dict[str, Any]]:
    ledger = project.ledger()
    try:
        return [dict(row) for row in ledger.mailbox_history("mb-1")]
    finally:
        ledger.close()


def test_topped_up_after_expiry_it_is_renewed_on_the_first_retry_day_and_never_deleted(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    project = project_for(tmp_path, peer, ledgers)
    for offset, balance in ((-3, "50.00"), (-1, "50.00"), (0, "50.00"), (1, "500.00")):
        export(project, on(offset), balance)
        assert run(project, on(offset)) == "done"
    # D+7: the export has not caught up with the renewal yet; from D+15 it shows it
    export(project, on(7), "380.00")
    assert run(project, on(7)) == "done"
    for offset in (15, 25, 29, 30):
        export(project, on(offset), "380.00", expires_on=date(2027, 12, 4))
        assert run(project, on(offset)) == "done"

    assert [key for key, _ in peer.requests] == [KEY]  # one charge, the cycle's first order
    assert [(o["attempt"], o["state"], o["renewed_on"]) for o in project.orders()] == [
        (1, "charged", on(1))
    ]
    assert subjects(project) == [
        FAILED,
        "Your mailbox mb-1 expires tomorrow",
        "Your mailbox mb-1 expired today",
        RENEWED,
    ]
    failed, _, _, renewed = bodies(project)
    assert "We will try the renewal again on December 3, 2026: if your balance covers" in failed
    assert "expired on December 4, 2026 because its automatic renewal" in renewed
    assert "Amount deducted:    CN¥120.00" in renewed
    assert "Remaining balance:  CN¥380.00" in renewed
    assert not deleted(project)


def test_never_topped_up_nothing_is_charged_and_it_is_deleted_at_d30_as_before(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    retrying = project_for(tmp_path / "retry", peer, ledgers)
    shipped = project_for(tmp_path / "shipped", peer, ledgers, retry=False)
    for offset in (-3, -1, 0, 1, 7, 15, 25, 29, 30):
        for project in (retrying, shipped):
            export(project, on(offset), "50.00")
            assert run(project, on(offset)) == "done"
    assert peer.requests == [] and retrying.orders() == []
    assert subjects(retrying) == subjects(shipped)
    assert subjects(retrying)[-1] == "Your mailbox mb-1 has been deleted"
    assert Counter(m["body"] for m in retrying.sms()) == Counter(m["body"] for m in shipped.sms())
    assert deleted(retrying) == deleted(shipped) == ["done"]


def test_a_declined_retry_sends_nothing_and_leaves_grace_and_deletion_as_they_were(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    """Topped up from D+7 on, but billing declines every charge: D+7 and D+15 each make an
    attempt with a key of its own, and the customer hears exactly what they would without the
    retry: the grace reminders of those very days, then the deletion."""
    peer.default = "declined"
    retrying = project_for(tmp_path / "retry", peer, ledgers)
    shipped = project_for(tmp_path / "shipped", peer, ledgers, retry=False)
    for offset in (-3, -1, 0, 1, 7, 15, 25, 29, 30):
        for project in (retrying, shipped):
            export(project, on(offset), "50.00" if offset < 7 else "500.00")
            assert run(project, on(offset)) == "done"
    assert [key for key, _ in peer.requests] == [KEY, f"{KEY}:2"]
    assert [(o["attempt"], o["state"]) for o in retrying.orders()] == [
        (1, "declined"),
        (2, "declined"),
    ]
    assert subjects(retrying) == subjects(shipped)
    assert sum("left to renew mb-1 before deletion" in s for s in subjects(retrying)) == 4
    assert [m["body"] for m in retrying.sms()] == [m["body"] for m in shipped.sms()]
    assert deleted(retrying) == deleted(shipped) == ["done"]


def test_missed_days_make_one_attempt_at_the_latest_retry_step(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    """No run from D-2 to D+8: the next one, topped up, renews once, told as a late renewal;
    the expiry notice and the grace reminder it replaces are not sent late."""
    project = project_for(tmp_path, peer, ledgers)
    export(project, on(-3), "50.00")
    assert run(project, on(-3)) == "done"
    export(project, on(9), "500.00")
    assert run(project, on(9)) == "done"
    assert [key for key, _ in peer.requests] == [KEY]
    assert subjects(project) == [FAILED, RENEWED]
    steps = {(r["rule"], r["step"], r["state"]) for r in history(project) if r["day"] == on(9)}
    assert ("auto-renew-retry", 7, "done") in steps
    assert {("expired", 0, "superseded"), ("grace-reminder", 7, "superseded")} <= steps


def test_killed_between_the_retry_charge_and_its_record_it_is_charged_once(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    project = project_for(tmp_path, peer, ledgers)
    export(project, on(-3), "50.00")
    assert project.run(on(-3)).returncode == 0
    export(project, on(1), "500.00")
    killed = project.run(on(1), env={"RENEWD_CRASH_AT": "after-charge"})
    assert killed.returncode == -9
    assert len(peer.effects) == 1  # billing charged; the ledger did not hear of it
    again = project.run(on(1))
    assert again.returncode == 0, again.stderr
    assert [key for key, _ in peer.requests] == [KEY, KEY]
    assert len(peer.effects) == 1
    assert [(o["attempt"], o["state"]) for o in project.orders()] == [(1, "charged")]
    assert subjects(project) == [FAILED, RENEWED]


def test_killed_after_a_second_attempts_charge_it_is_that_attempt_that_is_charged_once(
    tmp_path: Path, peer: BackendPeer, ledgers: Ledgers
) -> None:
    """D+1's retry is declined; D+7's, the cycle's second attempt, is charged and the run dies
    before recording it: the next run sends the second attempt's key again, not a third."""
    peer.script["mb-1"] = ["declined"]
    project = project_for(tmp_path, peer, ledgers)
    export(project, on(-3), "50.00")
    assert project.run(on(-3)).returncode == 0
    export(project, on(1), "500.00")
    assert project.run(on(1)).returncode == 0
    export(project, on(7), "500.00")
    killed = project.run(on(7), env={"RENEWD_CRASH_AT": "after-charge"})
    assert killed.returncode == -9
    again = project.run(on(7))
    assert again.returncode == 0, again.stderr
    assert [key for key, _ in peer.requests] == [KEY, f"{KEY}:2", f"{KEY}:2"]
    assert [e["status"] for e in peer.effects.values()] == ["declined", "charged"]
    assert [(o["attempt"], o["state"]) for o in project.orders()] == [
        (1, "declined"),
        (2, "charged"),
    ]
    assert subjects(project)[-1] == RENEWED
    assert subjects(project).count(RENEWED) == 1
