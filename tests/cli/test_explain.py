"""`renewd explain` on the example snapshot, as an operator asks it: against dry-run, after a
real run (the ledger's side), and for mailboxes that get nothing or are not there."""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import defaultdict
from datetime import date
from pathlib import Path

from click.testing import CliRunner, Result

from renewd.cli.main import main

from support import ROOT, Project

SNAPSHOT = ROOT / "examples" / "snapshot.csv"
CONFIG = ROOT / "config.example.yaml"
VERDICT = re.compile(r"^(\S+)\s+(ACTS|SUPERSEDED by (\S+)|ALREADY DONE|NOT IN THIS CYCLE|NO)\b")


def run(*args: str, config: Path = CONFIG) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)], catch_exceptions=False)


def verdicts(output: str) -> dict[str, str]:
    """Rule -> ACTS, SUPERSEDED by x, ALREADY DONE, NO..., from the RULES section."""
    found = {}
    for line in output.split("\nRULES\n", 1)[1].splitlines():
        match = VERDICT.match(line)
        if match:
            found[match[1]] = match[2]
    return found


def test_explain_agrees_with_dry_run_for_mailboxes_of_the_example() -> None:
    rng = random.Random(7)
    ids = [line.split(",", 1)[0] for line in SNAPSHOT.read_text().splitlines()[1:301]]
    for day in ("2026-12-01", "2026-12-04", "2027-01-15"):
        dry = run("dry-run", "--date", day, "--format", "jsonl")
        acting: defaultdict[str, set[str]] = defaultdict(set)
        for line in dry.stdout.splitlines():
            record = json.loads(line)
            acting[record["mailbox_id"]].add(record["rule"])
        table = run("dry-run", "--date", day).stdout
        superseded = {
            (parts[1], parts[3]): line.rsplit("superseded by ", 1)[1]
            for line in table.splitlines()
            if "superseded by" in line and (parts := line.split())
        }
        chosen = sorted(acting)[:6] + rng.sample(ids, 6)
        for mailbox in chosen:
            result = run("explain", mailbox, "--date", day)
            assert result.exit_code == 0, result.output
            said = verdicts(result.stdout)
            assert {r for r, v in said.items() if v == "ACTS"} == acting.get(mailbox, set()), (
                mailbox,
                day,
            )
            for (box, rule), by in superseded.items():
                if box == mailbox:
                    assert said[rule] == f"SUPERSEDED by {by}"


def test_explain_shows_the_ledgers_side_after_a_real_run(tmp_path: Path) -> None:
    project = Project(tmp_path)
    shutil.copy(SNAPSHOT, tmp_path / "snapshot.csv")
    assert project.run(date(2026, 12, 1)).returncode in (0, 3)  # 3: deletions held (first sight)
    result = run("explain", "mb-000153", "--date", "2026-12-01", config=project.config)
    assert result.exit_code == 0, result.output
    said = verdicts(result.stdout)
    assert said["auto-renew-failed"] == "ALREADY DONE"
    assert said["renewal-reminder"] == "ALREADY DONE"  # superseded, recorded, never sent later
    assert "steps already taken or superseded in this cycle: renewal-reminder D-3" in (
        result.stdout.replace("auto-renew-failed D-3, ", "")
    )
    assert "decides  nothing" in result.stdout
    ledger = result.stdout.split("\nLEDGER (this cycle)\n", 1)[1]
    assert "auto-renew-failed" in ledger and "done" in ledger


def test_why_a_mailbox_gets_nothing_today() -> None:
    result = run("explain", "mb-000017", "--date", "2026-12-01")
    assert result.exit_code == 0
    assert "No rule has a step for this mailbox on 2026-12-01" in result.stdout
    assert "    why not: days_to_expiry is 328, needs one of 30, 15, 7, 3, 1" in result.stdout
    assert "covered" in result.stdout  # its account's money, as the plan would see it


def test_a_mailbox_that_is_not_there_or_whose_row_is_bad(tmp_path: Path) -> None:
    missing = run("explain", "mb-nobody", "--date", "2026-12-01")
    assert missing.exit_code == 2
    assert missing.stderr.strip() == f"{SNAPSHOT}: no mailbox 'mb-nobody' in the snapshot"
    bad_row = SNAPSHOT.read_text().splitlines()[302].split(",", 1)[0]  # balance -5.00
    rejected = run("explain", bad_row, "--date", "2026-12-01")
    assert rejected.exit_code == 2
    assert (
        f"the row of mailbox '{bad_row}' was rejected: {SNAPSHOT}:303: balance" in rejected.stderr
    )
    twice = run("explain", "mb-000300", "--date", "2026-12-01")
    assert twice.exit_code == 0
    assert "mb-000300 is on more than one row" in twice.stdout
