"""A big day is planned in parts of whole accounts, kept on disk, so memory stays flat: the plan,
the run and the ledger must come out exactly as when the whole day fits in memory."""

from __future__ import annotations

import random
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import select

from renewd.act import executor
from renewd.act.run import run_day
from renewd.cli.options import load
from renewd.cli.report import decision_record, json_line, write_jsonl
from renewd.core.model import Decision, Kind
from renewd.plan import day as day_module
from renewd.plan import fork, merge
from renewd.plan import simulate as simulate_module
from renewd.plan.day import plan_day
from renewd.plan.simulate import Simulation
from renewd.snapshot import claims
from renewd.state import db, plans
from renewd.state.schema import actions, orders, sightings

from support import Project, csv_row

DAY = date(2026, 12, 1)
# Days to expiry that some rule acts on (and one that none does), spread over shared accounts.
OFFSETS = [30, 15, 8, 7, 4, 3, 1, 0, -1, -7, -25, -29, -30, 90]


def busy_day(seed: int, count: int = 120) -> list[str]:
    """Accounts of one to four mailboxes whose balance pays for some of their renewals, not all."""
    rng = random.Random(seed)
    rows = [  # accounts whose balance pays for two of three renewals due today
        csv_row(
            f"mb-s{a}{m}",
            DAY + timedelta(days=3),
            account_id=f"acct-s{a}",
            auto_renew=True,
            balance="240.00",
        )
        for a in range(4)
        for m in range(3)
    ]
    n = 0
    while n < count:
        account = f"acct-{n}"
        balance = rng.choice(["0.00", "120.00", "240.00", "1000.00"])
        for _ in range(rng.randint(1, 4)):
            expires = DAY + timedelta(days=rng.choice(OFFSETS))
            rows.append(
                csv_row(
                    f"mb-{n:04d}",
                    expires,
                    account_id=account,
                    auto_renew=rng.random() < 0.6,
                    balance=balance,
                    edition=rng.choice(["standard", "standard", "free"]),
                    phone=rng.choice(["+8613800138000", ""]),
                )
            )
            n += 1
    rows.append(rows[20].replace("120.00,CNY", "99.00,CNY"))  # one id twice: no action for it
    return rows


def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    """Parts of two mailboxes, the duplicate check's hashes on disk every eight, ledger writes in
    threes, the outbox read two rows at a time: every spill, merge and page there is, on a day
    small enough for a test."""
    monkeypatch.setattr(day_module, "PART_SIZE", 2)
    monkeypatch.setattr(executor, "PAGE", 2)
    monkeypatch.setattr(claims, "LIMIT", 8)
    monkeypatch.setattr(db, "BATCH", 3)  # the ledger's reads
    monkeypatch.setattr(plans, "BATCH", 3)  # and its writes
    monkeypatch.setattr(merge, "FAN_IN", 3)  # a simulated day's runs, merged three at a time
    monkeypatch.setattr(merge, "BLOCK", 2)


def action_line(decision: Decision) -> str | None:
    return None if decision.superseded_by else json_line(decision_record(decision))


def shared_by(monkeypatch: pytest.MonkeyPatch, module: Any, cpus: int) -> set[int]:
    """Run `module`'s groups on `cpus` CPUs; the set fills with the spills the results were in
    (two: the forked process did its share)."""
    monkeypatch.setattr(fork, "cpus", lambda: set(range(cpus)))
    shared = fork.alternate
    spills: set[int] = set()

    def counted(*args: Any, **kwargs: Any) -> Any:
        done = shared(*args, **kwargs)
        spills.update(id(spill) for spill, _ in done)
        return done

    monkeypatch.setattr(module, "alternate", counted)
    return spills


@pytest.mark.parametrize(("seed", "cpus"), [(0, 1), (1, 2), (2, 1), (3, 2)])
def test_a_day_planned_in_parts_is_the_same_plan(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, seed: int, cpus: int
) -> None:
    """A dry-run's day planned in parts of two mailboxes' accounts, on one CPU or with a forked
    second process taking every other part (no ledger to read), is the day planned whole."""
    project = Project(tmp_path)
    path = project.snapshot(*busy_day(seed))
    config, policy = load(project.config)
    whole = plan_day(config, policy, path, DAY, keep_parts=True)
    in_memory = "".join(plan_day(config, policy, path, DAY, encode=action_line).encoded())
    small_parts(monkeypatch)
    spills = shared_by(monkeypatch, day_module, cpus)
    parted = plan_day(config, policy, path, DAY, keep_parts=True)

    assert len(spills) == cpus
    assert len(list(parted.parts())) > 10 and len(list(whole.parts())) == 1
    assert list(parted.plan.decisions) == list(whole.plan.decisions)
    assert parted.deletions == whole.deletions
    assert parted.snapshot.duplicates == whole.snapshot.duplicates == {"mb-0008"}
    assert [str(e) for e in parted.snapshot.errors] == [str(e) for e in whole.snapshot.errors]
    out = tmp_path / "plan.jsonl"
    with out.open("w", encoding="utf-8") as handle:
        write_jsonl([parted.plan], handle)
    assert out.read_text(encoding="utf-8").count("\n") == sum(
        1 for d in whole.plan.decisions if not d.superseded_by
    )
    # dry-run's jsonl, written by the processes that plan the parts, is the same text
    printed = plan_day(config, policy, path, DAY, encode=action_line)
    assert "".join(printed.encoded()) == in_memory == out.read_text(encoding="utf-8")
    printed.close()
    parted.close()
    assert list(parted.plan.decisions) == []


def ledger_content(project: Project) -> dict[str, list[Any]]:
    ledger = project.ledger()
    try:
        with ledger.engine.connect() as conn:
            outbox = conn.execute(
                select(
                    actions.c.day,
                    actions.c.mailbox_id,
                    actions.c.rule,
                    actions.c.step,
                    actions.c.kind,
                    actions.c.channel,
                    actions.c.state,
                    actions.c.error,
                    actions.c.payload,
                )
            )
            charged = conn.execute(select(orders.c.mailbox_id, orders.c.amount, orders.c.state))
            seen = conn.execute(select(sightings.c.mailbox_id, sightings.c.first_seen))
            return {
                "actions": sorted(tuple(r) for r in outbox),
                "orders": sorted(tuple(r) for r in charged),
                "sightings": sorted(tuple(r) for r in seen),
            }
    finally:
        ledger.close()


@pytest.fixture(params=["sqlite", "postgresql"])
def ledgers(request: pytest.FixtureRequest, tmp_path: Path) -> tuple[Project, Project]:
    for name in ("whole", "parts"):
        (tmp_path / name).mkdir()
    if request.param == "sqlite":
        return Project(tmp_path / "whole"), Project(tmp_path / "parts")
    server = request.getfixturevalue("postgres")
    return (
        Project(tmp_path / "whole", ledger=server.database()),
        Project(tmp_path / "parts", ledger=server.database()),
    )


def test_days_run_in_parts_leave_the_same_ledger(
    ledgers: tuple[Project, Project], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Two days, so that the second deletes what the first saw expired (and holds the rest)."""
    rows = busy_day(7, count=80)

    def run_days(project: Project) -> dict[str, list[Any]]:
        config, policy = load(project.config)
        held = []
        for day in (DAY, DAY + timedelta(days=1)):
            project.snapshot(*rows)
            path = project.export_again() if day > DAY else project.root / "snapshot.csv"
            held.append(run_day(config, policy, path, day).held)
        sent = [len(project.emails()), len(project.sms())]
        return {**ledger_content(project), "held": held, "sent": sent}

    whole, parts = ledgers
    expected = run_days(whole)
    small_parts(monkeypatch)
    got = run_days(parts)
    assert got == expected
    states = {(kind, state) for _, _, _, _, kind, _, state, _, _ in expected["actions"]}
    assert {("deduct", "done"), ("delete", "done"), ("notify", "superseded")} <= states
    [first_sight] = expected["held"][0].values()  # deletions at first sight, in the plan's order
    assert len(first_sight) > 1
    assert expected["sightings"] and expected["orders"] and min(expected["sent"]) > 20


@pytest.mark.parametrize("cpus", [1, 2])
def test_a_range_simulated_in_parts_is_the_same_simulation(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cpus: int
) -> None:
    """simulate in groups of two mailboxes' accounts, on one CPU or with a forked second process
    taking every other group, predicts exactly the days it predicts with everything in memory."""
    project = Project(tmp_path)
    path = project.snapshot(*busy_day(3, count=150))
    config, policy = load(project.config)
    end = DAY + timedelta(days=45)

    def days(only: tuple[str, ...] = ()) -> list[tuple[date, list[Any]]]:
        return [
            (p.day, list(p.decisions)) for p in Simulation(config, policy, path, only).run(DAY, end)
        ]

    whole = days()
    alone = days(("mb-s01",))
    small_parts(monkeypatch)
    spills = shared_by(monkeypatch, simulate_module, cpus)
    assert days() == whole
    assert len(spills) == cpus  # with two CPUs, the forked process did its groups
    assert days(("mb-s01",)) == alone
    assert [d.mailbox_id for _, plan in alone for d in plan] == ["mb-s01"] * sum(
        len(plan) for _, plan in alone
    )
    assert sum(len(plan) for _, plan in whole) > 500
    assert {d.kind for _, plan in whole for d in plan} == {Kind.NOTIFY, Kind.DEDUCT, Kind.DELETE}
