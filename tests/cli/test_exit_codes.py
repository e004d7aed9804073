"""The README's exit-code table, walked for every command.

0 done; 1 `check` found problems in files it could read (or `diff` a difference); 2 a file (or an
argument) could not be used at all, a missing config for every command, `check` included; 3 `run`
held deletions or deductions back; 75 another renewd holds the ledger.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from renewd.cli.main import main
from renewd.state.lock import RunLock

from support import ROOT, TODAY, Project, csv_row

DAY = TODAY.isoformat()
EVERY_COMMAND = [
    ["check"],
    ["dry-run", "--date", DAY],
    ["simulate", "--from", DAY, "--to", DAY],
    ["diff", str(ROOT / "rules"), str(ROOT / "rules"), "--from", DAY, "--days", "1"],
    ["forecast", "--from", DAY, "--days", "1"],
    ["explain", "mb-1", "--date", DAY],
    ["run", "--date", DAY],
    ["history", "mb-1"],
    ["runs"],
    ["orders", "--month", "2026-12"],
    ["bounces"],
    ["render", "expired"],
    ["serve"],
    ["status"],
    ["prune"],
]


def invoke(project: Project, *args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(project.config)])


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Project:
    """A project whose day has run once: a ledger, a run, an order to invoice."""
    project = Project(tmp_path_factory.mktemp("world"), extra="serve: {listen: ''}\n")
    project.snapshot(
        csv_row("mb-1", TODAY + timedelta(days=30)),
        csv_row("mb-renew", TODAY + timedelta(days=3), auto_renew=True, balance="500.00"),
    )
    first = invoke(project, "run", "--date", DAY)
    assert first.exit_code == 0, first.output
    return project


@pytest.mark.parametrize("args", EVERY_COMMAND, ids=lambda args: args[0])
def test_a_missing_config_exits_2_for_every_command(tmp_path: Path, args: list[str]) -> None:
    result = CliRunner().invoke(main, [*args, "--config", str(tmp_path / "nope.yaml")])
    assert result.exit_code == 2, result.output
    assert "nope.yaml: config file not found" in result.stderr
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("args", "code"),
    [
        (["check"], 0),
        (["dry-run", "--date", DAY], 0),
        (["simulate", "--from", DAY, "--to", DAY], 0),
        (["diff", str(ROOT / "rules"), str(ROOT / "rules"), "--from", DAY], 0),
        (["forecast", "--from", DAY], 0),
        (["explain", "mb-1", "--date", DAY], 0),
        (["run", "--date", DAY], 0),  # again: nothing new, still done
        (["history", "mb-1"], 0),
        (["runs"], 0),
        (["runs", "--show", "1"], 0),
        (["orders", "--month", "2026-12"], 0),
        (["render", "expired"], 0),
        (["status"], 0),
        (["prune"], 0),
        (["dry-run", "--snapshot", "no-such.csv"], 2),
        (["run", "--date", DAY, "--snapshot", "no-such.csv"], 2),
        (["simulate", "--from", DAY, "--to", DAY, "--mailbox", "mb-nope"], 2),
        (["history", "mb-999999"], 2),
        (["runs", "--show", "99"], 2),
        (["orders", "--month", "2026-13"], 2),
        (["render", "expird"], 2),
        (["diff", str(ROOT / "rules"), "no-such-rules", "--from", DAY], 2),
        (["forecast", "--from", DAY, "--out", "forecast.png"], 2),
        (["explain", "mb-nope", "--date", DAY], 2),
        (["bounces"], 2),  # no Maildir configured
        (["bounces", "--maildir", "no-such-maildir"], 2),
    ],
    ids=lambda value: " ".join(value) if isinstance(value, list) else str(value),
)
def test_each_command_exits_as_the_table_says(world: Project, args: list[str], code: int) -> None:
    result = invoke(world, *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output


def test_check_exits_1_for_problems_in_files_it_could_read(tmp_path: Path) -> None:
    project = Project(tmp_path, extra="catch_up_days: -1\n")
    result = invoke(project, "check")
    assert result.exit_code == 1
    assert result.stderr.endswith(
        "config.yaml:8: catch_up_days must be a whole number from 0 to 366\n"
    )


def test_run_exits_3_when_it_held_deletions_back(tmp_path: Path) -> None:
    project = Project(tmp_path)
    project.snapshot(csv_row("mb-old", TODAY - timedelta(days=30)))
    result = invoke(project, "run", "--date", DAY)
    assert result.exit_code == 3, result.output


@pytest.fixture
def locked(world: Project) -> Iterator[Project]:
    """Another renewd holds the world's ledger."""
    ledger = world.ledger()
    try:
        with RunLock(ledger.engine):
            yield world
    finally:
        ledger.close()


@pytest.mark.parametrize(
    "args", [["run", "--date", DAY], ["serve"], ["prune"]], ids=lambda args: args[0]
)
def test_run_and_serve_exit_75_while_another_renewd_works(locked: Project, args: list[str]) -> None:
    result = invoke(locked, *args)
    assert result.exit_code == 75, result.output
    assert "another renewd is working on this ledger" in result.stderr


def test_serve_exits_0_when_stopped(world: Project) -> None:
    served = subprocess.Popen(
        [str(Path(sys.executable).parent / "renewd"), "serve", "--config", str(world.config)],
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "RENEWD_FAKE_NOW": "2026-12-01T10:00:00+08:00"},
    )
    assert served.stderr is not None
    assert any("renewd serving" in line for line in served.stderr)
    served.send_signal(signal.SIGTERM)
    assert served.wait(timeout=30) == 0


def test_init_exits_0_then_2_rather_than_overwrite(tmp_path: Path) -> None:
    args = ["init", str(tmp_path / "etc"), "--state-dir", str(tmp_path / "state")]
    assert CliRunner().invoke(main, args).exit_code == 0
    again = CliRunner().invoke(main, args)
    assert again.exit_code == 2
    assert "never overwrites" in again.stderr
