"""The command line as a user drives it, through click's runner."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from renewd.cli.main import main

from support import ROOT

HEADER = "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,email,phone,locale\n"
ROWS = [
    "mb-remind,acct-1,standard,2026-12-31,false,0.00,120.00,CNY,a@example.com,+8613800138000,zh-CN",
    "mb-renew,acct-2,standard,2026-12-04,true,500.00,120.00,CNY,b@example.com,+8613800138001,zh-CN",
    "mb-short,acct-3,basic,2026-12-04,true,10.00,60.00,USD,c@example.com,,en",
    "mb-free,acct-4,free,2026-12-31,false,0.00,0.00,CNY,d@example.com,,en",
    "mb-bad,acct-5,standard,2026-02-30,false,0.00,120.00,CNY,e@example.com,,en",
]


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(
        f"rules: {ROOT / 'rules'}\nsnapshot: snap-{{date}}.csv\n", encoding="utf-8"
    )
    (tmp_path / "snap-2026-12-01.csv").write_text(HEADER + "\n".join(ROWS) + "\n", encoding="utf-8")
    return tmp_path


def run(workdir: Path, *args: str) -> Result:
    return CliRunner().invoke(
        main, [*args, "--config", str(workdir / "config.yaml")], catch_exceptions=False
    )


def test_dry_run_table_shows_actions_and_superseded_steps(workdir: Path) -> None:
    result = run(workdir, "dry-run", "--date", "2026-12-01")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert lines[0].split() == [
        "DATE",
        "MAILBOX",
        "ACCOUNT",
        "RULE",
        "STEP",
        "ACTION",
        "DETAIL",
        "NOTE",
    ]
    assert lines[1].split() == [
        "2026-12-01",
        "mb-renew",
        "acct-2",
        "auto-renew",
        "D-3",
        "deduct",
        "120.00",
        "CNY",
    ]
    assert any("renewal-reminder" in line and "superseded by auto-renew" in line for line in lines)
    assert "mb-free" not in result.stdout
    assert "rows read: 5, rejected: 1" in result.stderr
    assert "snap-2026-12-01.csv:6: expires_on: '2026-02-30' is not a calendar date" in result.stderr


def test_dry_run_jsonl_is_one_object_per_action(workdir: Path) -> None:
    result = run(workdir, "dry-run", "--date", "2026-12-01", "--format", "jsonl")
    assert result.exit_code == 0
    records = [json.loads(line) for line in result.stdout.splitlines()]
    assert records[0] == {
        "date": "2026-12-01",
        "mailbox_id": "mb-renew",
        "account_id": "acct-2",
        "rule": "auto-renew",
        "action": "deduct",
        "cycle": "2026-12-04",
        "step": -3,
        "amount": "120.00",
        "currency": "CNY",
    }
    assert [(r["mailbox_id"], r["rule"], r.get("channel")) for r in records[1:]] == [
        ("mb-renew", "auto-renew", "email"),
        ("mb-short", "auto-renew-failed", "email"),
        ("mb-remind", "renewal-reminder", "email"),
        ("mb-remind", "renewal-reminder", "sms"),
    ]
    assert all(r["template"] == r["rule"] for r in records[1:])
    assert "rows read" not in result.stderr


def test_dry_run_writes_nothing(workdir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in workdir.rglob("*")}
    assert run(workdir, "dry-run", "--date", "2026-12-01").exit_code == 0
    assert {p: p.stat().st_mtime_ns for p in workdir.rglob("*")} == before


def test_dry_run_defaults_to_the_snapshot_of_the_day(workdir: Path) -> None:
    result = run(workdir, "dry-run", "--date", "2026-12-02")
    assert result.exit_code == 2
    assert "snap-2026-12-02.csv: cannot read" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "empty file, not a snapshot"),
        (b"\x89PNG\r\n\x1a\n\0\0\0", "binary data, not a snapshot"),
        (b"id,name\n1,x\n", "not a mailbox snapshot: missing column(s) mailbox_id"),
    ],
)
def test_a_file_that_is_not_a_snapshot_is_a_clear_error(
    workdir: Path, content: bytes, message: str
) -> None:
    (workdir / "snap-2026-12-01.csv").write_bytes(content)
    result = run(workdir, "dry-run", "--date", "2026-12-01")
    assert result.exit_code == 2
    assert message in result.stderr
    assert "Traceback" not in result.output


def test_config_from_the_environment(workdir: Path) -> None:
    result = CliRunner().invoke(
        main,
        ["dry-run", "--date", "2026-12-01"],
        env={"RENEWD_CONFIG": str(workdir / "config.yaml")},
    )
    assert result.exit_code == 0 and "mb-renew" in result.stdout


def test_check_exits_non_zero_with_one_line_per_problem(workdir: Path) -> None:
    (workdir / "config.yaml").write_text("rules: rules\nsnapshott: x\n", encoding="utf-8")
    (workdir / "rules").mkdir()
    (workdir / "rules" / "a.yaml").write_text(
        "timezone: Nowhere/City\neditions: {free: [free], paid: [x]}\n"
    )
    result = run(workdir, "check")
    assert result.exit_code == 1
    assert result.stderr.splitlines() == [
        f"{workdir}/config.yaml:2: unknown key 'snapshott' in the config (did you mean 'snapshot'?)",
    ]
    (workdir / "config.yaml").write_text("rules: rules\n", encoding="utf-8")
    result = run(workdir, "check")
    assert result.stderr.splitlines() == [
        f"{workdir}/rules/a.yaml:1: unknown timezone 'Nowhere/City' (use an IANA name such as 'Asia/Shanghai')"
    ]


def test_check_passes_on_the_shipped_config() -> None:
    result = CliRunner().invoke(main, ["check", "--config", str(ROOT / "config.example.yaml")])
    assert result.exit_code == 0, result.output


def test_simulate_follows_one_mailbox(workdir: Path) -> None:
    snapshot = str(workdir / "snap-2026-12-01.csv")
    result = run(
        workdir,
        "simulate",
        "--snapshot",
        snapshot,
        "--from",
        "2026-12-01",
        "--to",
        "2027-01-31",
        "--mailbox",
        "mb-short",
        "--format",
        "jsonl",
    )
    assert result.exit_code == 0
    timeline = [(r["date"], r["rule"]) for r in map(json.loads, result.stdout.splitlines())]
    assert timeline == [
        ("2026-12-01", "auto-renew-failed"),
        ("2026-12-03", "renewal-reminder"),
        ("2026-12-04", "expired"),
        ("2026-12-11", "grace-reminder"),
        ("2026-12-19", "grace-reminder"),
        ("2026-12-29", "grace-reminder"),
        ("2027-01-02", "grace-reminder"),
        ("2027-01-03", "deletion"),
        ("2027-01-03", "deletion"),
    ]


def test_simulate_refuses_an_unknown_mailbox(workdir: Path) -> None:
    snapshot = str(workdir / "snap-2026-12-01.csv")
    result = run(
        workdir,
        "simulate",
        "--snapshot",
        snapshot,
        "--from",
        "2026-12-01",
        "--to",
        "2026-12-02",
        "--mailbox",
        "mb-bad",
    )
    assert result.exit_code != 0
    assert "mb-bad" in result.output and "Traceback" not in result.output


@pytest.mark.parametrize(
    "command",
    [
        [],
        ["check"],
        ["dry-run"],
        ["simulate"],
        ["run"],
        ["history"],
        ["runs"],
        ["orders"],
        ["render"],
    ],
)
def test_every_command_has_help(command: list[str]) -> None:
    result = CliRunner().invoke(main, [*command, "--help"])
    assert result.exit_code == 0
    assert "Usage:" in result.stdout


def test_the_installed_command_runs() -> None:
    """The console script the README tells people to run, not just the click object."""
    script = Path(sys.executable).parent / "renewd"
    result = subprocess.run([script, "--help"], capture_output=True, text=True, check=False)
    assert result.returncode == 0 and "dry-run" in result.stdout


def test_render_shows_what_a_customer_receives() -> None:
    config = str(ROOT / "config.example.yaml")
    result = CliRunner().invoke(
        main, ["render", "renewal-reminder", "--locale", "zh-CN", "--config", config]
    )
    assert result.exit_code == 0, result.output
    sections = result.stdout.split("----- ")[1:]
    assert [s.splitlines()[0].split(" to ")[0] for s in sections] == [
        "email",
        "email, HTML part",
        "sms",
    ]
    assert "Subject: 您的邮箱 postmaster-sales-team 将在 30 天后到期" in sections[0]
    assert sections[1].startswith("email, HTML part\n<!DOCTYPE html>")
    assert "segment(s)" in sections[2].splitlines()[0]


def test_render_for_a_mailbox_of_the_snapshot(workdir: Path) -> None:
    result = run(
        workdir, "render", "auto-renew-failed", "--mailbox", "mb-short", "--date", "2026-12-01"
    )
    assert result.exit_code == 0, result.output
    assert "email to c@example.com" in result.stdout and "$60.00" in result.stdout


def test_render_an_unknown_rule(workdir: Path) -> None:
    result = run(workdir, "render", "renewal-remider", "--date", "2026-12-01")
    assert result.exit_code == 2
    assert "no rule 'renewal-remider' (did you mean 'renewal-reminder'?)" in result.stderr


def test_an_id_that_would_break_a_line_never_reaches_the_jsonl(workdir: Path) -> None:
    """A line separator in an id would split a record for `str.splitlines()`: the row is rejected."""
    snapshot = workdir / "snap-2026-12-01.csv"
    snapshot.write_text(HEADER + ROWS[0].replace("mb-remind", "mb\u2028x") + "\n", encoding="utf-8")
    result = run(workdir, "dry-run", "--date", "2026-12-01", "--format", "jsonl")
    assert result.exit_code == 0 and result.stdout == ""
    assert "mailbox_id: contains U+2028 LINE SEPARATOR" in result.stderr
