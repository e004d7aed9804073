"""Progress where people wait: the meter a job moves, and rich's display of it on a terminal."""

from __future__ import annotations

import io
import os
import pty
import re
import subprocess
import sys
import threading
from collections import Counter
from pathlib import Path

from click.testing import CliRunner
from rich.console import Console

from renewd.cli.main import main
from renewd.cli.progress import shown
from renewd.core.meter import Meter, tally

from support import ROOT, until

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")


def test_a_stage_is_counted_through_a_function_or_by_advancing() -> None:
    meter, rows = Meter(), [0]
    meter.begin("reading the snapshot", "rows", done=lambda: rows[0])
    rows[0] = 1500
    assert meter.describe() == "reading the snapshot: 1,500 rows"
    assert meter.totals() == (1500, None)
    meter.begin("planning", "mailboxes", 40)
    meter.advance(30)
    assert (meter.describe(), meter.totals(), meter.serial) == (
        "planning 30/40 mailboxes",
        (30, 40),
        2,
    )


def test_effects_show_side_by_side_and_empty_kinds_not_at_all() -> None:
    meter, outcomes = Meter(), Counter[str]()
    meter.begin_many(
        "acting",
        [
            ("charging", tally(outcomes, "deduct:"), 3, "charges"),
            ("deleting", tally(outcomes, "delete:"), 0, "deletions"),
            ("sending", tally(outcomes, "notify:"), 39000, "messages"),
        ],
    )
    outcomes.update({"deduct:charged": 2, "deduct:declined": 1, "notify:email:sent": 1200})
    assert meter.describe() == "charging 3/3 charges, sending 1,200/39,000 messages"
    assert meter.totals() == (1203, 39003)


def test_a_tally_can_be_read_while_the_outcomes_change() -> None:
    outcomes: Counter[str] = Counter()
    count = tally(outcomes, "notify:")
    stop = threading.Event()

    def writer() -> None:
        n = 0
        while not stop.is_set():
            n += 1
            outcomes[f"notify:c{n % 500}:sent"] += 1

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        for _ in range(2000):
            count()  # never "dictionary changed size during iteration"
    finally:
        stop.set()
        thread.join()


def test_the_display_shows_counts_on_a_terminal() -> None:
    screen = io.StringIO()
    console = Console(file=screen, force_terminal=True, width=120)
    meter, rows = Meter(), [0]
    with shown(meter, console=console):
        meter.begin("reading the snapshot", "rows", done=lambda: rows[0])
        rows[0] = 123456
        until(lambda: "123,456" in ANSI.sub("", screen.getvalue()), "the rows read shown")
        meter.begin("planning", "mailboxes", 900)
        meter.advance(300)
        until(lambda: "planning 300/900 mailboxes" in screen.getvalue(), "the plan's progress")
    assert "300/900" in ANSI.sub("", screen.getvalue())


def test_no_display_where_stderr_is_not_a_terminal() -> None:
    screen = io.StringIO()
    meter = Meter()
    with shown(meter, console=Console(file=screen)):
        meter.begin("planning", "mailboxes", 10)
        meter.advance(5)
    assert screen.getvalue() == ""
    result = CliRunner().invoke(
        main, ["dry-run", "--config", str(ROOT / "config.example.yaml"), "--date", "2026-12-01"]
    )
    assert "\x1b[" not in result.stderr


def test_stdout_is_the_same_with_a_terminal_on_stderr(tmp_path: Path) -> None:
    """The display goes to the terminal on stderr, never into the output a script reads."""
    config = tmp_path / "config.yaml"
    config.write_text(f"rules: {ROOT / 'rules'}\n", encoding="utf-8")
    command = [
        str(Path(sys.executable).parent / "renewd"),
        "dry-run",
        "--config",
        str(config),
        "--snapshot",
        str(ROOT / "examples" / "snapshot.csv"),
        "--date",
        "2026-12-01",
        "--format",
        "jsonl",
    ]
    plain = subprocess.run(command, capture_output=True, check=True).stdout
    terminal, side = pty.openpty()
    seen: list[bytes] = []
    reader = threading.Thread(target=_drain, args=(terminal, seen))  # a full pty would block it
    reader.start()
    try:
        with subprocess.Popen(command, stdout=subprocess.PIPE, stderr=side) as process:
            os.close(side)
            on_terminal = process.communicate(timeout=60)[0]
        reader.join(timeout=60)
    finally:
        os.close(terminal)
    assert process.returncode == 0
    assert on_terminal == plain and plain.count(b"\n") > 10
    screen = b"".join(seen)
    assert b"\x1b[?25l" in screen  # rich took the terminal (hid the cursor) while it worked
    assert b"snapshot.csv:302: expires_on: '2026-02-30' is not a calendar date" in screen


def _drain(fd: int, into: list[bytes]) -> None:
    while True:
        try:
            chunk = os.read(fd, 65536)
        except OSError:  # EIO: the other side is closed and everything read
            return
        if not chunk:
            return
        into.append(chunk)
