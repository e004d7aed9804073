"""The opt-in retry as an operator meets it: the example policy passes `check`, a retry day on
the deletion day is refused as `file:line`, and `simulate --top-up` and `dry-run` show the
renewal made after all."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from renewd.cli.main import main

from support import ROOT

HEADER = "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,locale\n"
SHORT = "mb-short,acct-3,basic,2026-12-04,true,10.00,60.00,USD,c@example.com,en\n"


@pytest.fixture
def home(tmp_path: Path) -> Path:
    rules = tmp_path / "rules"
    rules.mkdir()
    shutil.copy(ROOT / "rules" / "lifecycle.yaml", rules)
    shutil.copy(ROOT / "examples" / "auto-renew-retry.yaml", rules)
    (tmp_path / "config.yaml").write_text(f"rules: {rules}\nsnapshot: snap.csv\n", encoding="utf-8")
    return tmp_path


def run(home: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(home / "config.yaml")])


def test_check_passes_on_the_example_retry_policy(home: Path) -> None:
    result = run(home, "check")
    assert result.exit_code == 0, result.output
    assert result.stdout.strip() == f"{home}/config.yaml: ok"


def test_check_refuses_a_retry_on_the_deletion_day_and_names_the_line(home: Path) -> None:
    example = home / "rules" / "auto-renew-retry.yaml"
    text = example.read_text(encoding="utf-8").replace("[1, 7, 15]", "[1, 7, 30]")
    example.write_text(text, encoding="utf-8")
    line = next(n for n, s in enumerate(text.splitlines(), 1) if "auto_renew_retry:" in s)
    result = run(home, "check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{example}:{line}: lifecycle.auto_renew_retry: 30 days after expiry is on or after "
        "deletion (30 days after expiry); a retry must come before it"
    ]


def simulate(home: Path, *top_ups: str) -> list[tuple[str, str, str]]:
    (home / "snap.csv").write_text(HEADER + SHORT, encoding="utf-8")
    args = [f"--top-up={t}" for t in top_ups]
    result = run(
        home, "simulate", "--from", "2026-12-01", "--to", "2027-01-10", *args, "--format", "jsonl"
    )
    assert result.exit_code == 0, result.output
    rows = map(json.loads, result.stdout.splitlines())
    return [(r["date"], r["rule"], r["action"]) for r in rows if r.get("channel") != "sms"]


def test_simulate_with_a_top_up_shows_the_renewal_on_the_next_retry_day(home: Path) -> None:
    assert simulate(home, "2026-12-06:acct-3:100.00") == [
        ("2026-12-01", "auto-renew-failed", "notify"),
        ("2026-12-03", "renewal-reminder", "notify"),
        ("2026-12-04", "expired", "notify"),
        ("2026-12-11", "auto-renew-retry", "deduct"),  # D+7: the first retry after the top-up
        ("2026-12-11", "auto-renew-retry", "notify"),
    ]


def test_simulate_without_a_top_up_retries_nothing(home: Path) -> None:
    timeline = simulate(home)
    assert not [step for step in timeline if step[1] == "auto-renew-retry"]
    assert timeline[-2:] == [
        ("2027-01-03", "deletion", "notify"),
        ("2027-01-03", "deletion", "delete"),
    ]


def test_a_bad_top_up_is_one_line_that_says_what_to_write(home: Path) -> None:
    (home / "snap.csv").write_text(HEADER + SHORT, encoding="utf-8")
    result = run(
        home, "simulate", "--from", "2026-12-01", "--to", "2026-12-02", "--top-up", "acct-3:100"
    )
    assert result.exit_code == 2
    assert "DATE:ACCOUNT:AMOUNT" in result.stderr
    assert "Traceback" not in result.output


def test_dry_run_on_a_retry_day_shows_the_charge_and_what_it_replaces(home: Path) -> None:
    """Topped up (100.00 covers the 60.00 fee): D+7's retry charges, and the grace reminder of
    that day is superseded (it goes out only if billing declines the charge)."""
    (home / "snap.csv").write_text(HEADER + SHORT.replace("10.00", "100.00"), encoding="utf-8")
    result = run(home, "dry-run", "--date", "2026-12-11")
    assert result.exit_code == 0, result.output
    rows = [line.split("  ") for line in result.stdout.splitlines()[1:]]
    assert [[cell.strip() for cell in row if cell.strip()][3:] for row in rows] == [
        ["auto-renew-retry", "D+7", "deduct", "60.00 USD"],
        ["auto-renew-retry", "D+7", "notify", "email:auto-renew-retry"],
        [
            "grace-reminder",
            "D+7",
            "notify",
            "email:grace-reminder",
            "superseded by auto-renew-retry",
        ],
    ]
