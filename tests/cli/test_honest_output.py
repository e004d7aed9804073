"""Output that never misleads: what is already done, a locale that fell back, an unknown
mailbox, an impossible month, and config errors that say where and offer the near name."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from renewd.cli.main import main

from support import ROOT, TODAY, Project, csv_row

DAY = TODAY.isoformat()


def invoke(config: Path, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(config)])


@pytest.fixture
def project(tmp_path: Path) -> Project:
    project = Project(tmp_path)
    project.snapshot(
        csv_row("mb-1", TODAY + timedelta(days=30)),
        csv_row("mb-quiet", TODAY + timedelta(days=100)),
        csv_row("mb-bad", TODAY + timedelta(days=30), fee="-1.00"),
    )
    return project


def test_a_dry_run_of_a_day_already_run_says_what_is_done_and_where_to_look(
    project: Project,
) -> None:
    assert invoke(project.config, "run", "--date", DAY).exit_code == 0
    result = invoke(project.config, "dry-run", "--date", DAY)
    assert result.exit_code == 0
    assert result.stdout.splitlines()[-1] == "(no actions)"
    assert result.stderr.splitlines()[-2:] == [
        f"already in the ledger for {DAY}, so not shown: 2 actions (2 done)",
        "  see: renewd runs (and runs --show N for a run's held steps), renewd history MAILBOX_ID",
    ]


def test_a_dry_run_without_a_ledger_says_nothing_of_one(project: Project) -> None:
    result = invoke(project.config, "dry-run", "--date", DAY)
    assert "mb-1" in result.stdout and "already in the ledger" not in result.stderr


def test_render_says_when_it_falls_back_to_another_locale() -> None:
    config = ROOT / "config.example.yaml"
    result = invoke(config, "render", "expired", "--locale", "fr")
    assert result.exit_code == 0
    assert result.stderr.splitlines() == [
        "no 'fr' template expired/body.html, body.txt, sms.txt, subject.txt: rendered in 'en' "
        "(the config's default_locale), as a customer whose locale is 'fr' would receive it",
        "'fr' is not one of the config's locales (en, zh-CN)",
    ]
    assert "Subject: Your mailbox" in result.stdout
    near = invoke(config, "render", "expired", "--locale", "zh_CN")
    assert near.stderr.splitlines()[-1].endswith("(did you mean 'zh-CN'?)")
    assert invoke(config, "render", "expired", "--locale", "zh-CN").stderr == ""


def test_history_of_an_unknown_mailbox_is_an_error(project: Project) -> None:
    result = invoke(project.config, "history", "mb-999999")
    assert result.exit_code == 2
    assert result.stderr == (
        "unknown mailbox 'mb-999999': nothing recorded in the ledger and no row in "
        f"{project.root / 'snapshot.csv'}\n"
    )


def test_history_of_a_quiet_mailbox_says_so(project: Project) -> None:
    assert invoke(project.config, "run", "--date", DAY).exit_code == 0
    quiet = invoke(project.config, "history", "mb-quiet")
    assert quiet.exit_code == 0
    assert quiet.stdout == "mb-quiet: nothing recorded yet; no step of the policy has come due\n"
    bad = invoke(project.config, "history", "mb-bad")
    assert bad.exit_code == 0
    assert "its row is rejected: " in bad.stdout and "snapshot.csv:4: renewal_fee:" in bad.stdout
    known = invoke(project.config, "history", "mb-1")
    assert known.exit_code == 0 and "renewal-reminder" in known.stdout


@pytest.mark.parametrize(
    ("month", "message"),
    [
        ("2026-13", "--month 2026-13: there is no month 13; months go from 01 to 12"),
        ("2026-00", "--month 2026-00: there is no month 00; months go from 01 to 12"),
        ("2026/11", "--month '2026/11': write the month as YYYY-MM, such as 2026-11"),
    ],
)
def test_orders_says_what_is_wrong_with_the_month(
    project: Project, month: str, message: str
) -> None:
    result = invoke(project.config, "orders", "--month", month)
    assert result.exit_code == 2
    assert result.stderr == message + "\n"


def test_runs_before_any_run(project: Project) -> None:
    result = invoke(project.config, "runs")
    assert result.exit_code == 0 and result.stdout == ""
    assert "no runs yet" in result.stderr
    assert not (project.root / "state").exists()  # reading never creates a ledger


def check(tmp_path: Path, config: str) -> list[str]:
    (tmp_path / "config.yaml").write_text(config, encoding="utf-8")
    result = invoke(tmp_path / "config.yaml", "check")
    assert result.exit_code == 1, result.output
    return [line.replace(f"{tmp_path}/", "") for line in result.stderr.splitlines()]


def test_an_unknown_sender_is_reported_at_its_line_with_the_near_name(tmp_path: Path) -> None:
    config = f"rules: {ROOT / 'rules'}\nsenders:\n  email:\n    backend: smpt\n    host: x\n"
    [problem] = check(tmp_path, config)
    assert problem.startswith(
        "config.yaml:4: senders.email: unknown sender 'smpt' (did you mean 'smtp'?)"
    )


def test_a_backends_setting_is_reported_at_its_line(tmp_path: Path) -> None:
    config = (
        f"rules: {ROOT / 'rules'}\nsenders:\n  email:\n    backend: smtp\n"
        "    host: smtp.example.com\n    from: a@example.com\n    hots: x\n"
    )
    [problem] = check(tmp_path, config)
    assert problem.startswith(
        "config.yaml:7: senders.email: unknown setting(s) hots (did you mean 'host'?)"
    )


def test_a_missing_rules_directory_is_reported_at_its_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    assert check(tmp_path, "snapshot: x.csv\nrules: rule\n") == [
        "config.yaml:2: rules: no such file or directory: rule (did you mean 'rules'?)"
    ]
    assert check(tmp_path, "rules: rules\ntemplates: /nowhere/at/all\n") == [
        "config.yaml:2: templates: no such file or directory: /nowhere/at/all"
    ]
