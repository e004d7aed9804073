"""Evaluation speed per export format: the floor, `renewd dry-run` end to end, and peak memory.

`python bench/evaluate.py [--dialect plain jsonl ...] [--counts 100000 1000000] [--repeat 3]
[--simulate DAYS]`

Every snapshot comes from `bench/generate.py` (one seeded generator, one `--dialect` per export
format). The floor reads the same file and does nothing else: `csv.reader` over a CSV, `json.loads`
of every line of a JSON Lines file. Each figure is its own process, timed from start to exit, so
peak RSS is that command's alone (the largest of its processes: a big snapshot is read by two);
times are the best of `--repeat` runs, floor and dry-run taken in turn. `--long-line MB` adds a
file whose one row is that long (and one whose quote never closes): its peak RSS is what counts.
`--simulate DAYS` also runs `renewd simulate --format jsonl` over that many days from the same
date on each snapshot, once: its time and peak RSS (`bench/simulate.py` adds diff and forecast).
Run it under `taskset -c 0` for the one-CPU figure.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import DIALECTS, REFERENCE, generate

ROOT = Path(__file__).resolve().parent.parent
CSV_FLOOR = (
    "import csv, sys\n"
    "for row in csv.reader(open(sys.argv[1], newline='', encoding='utf-8')):\n"
    "    pass\n"
)
JSON_FLOOR = (
    "import json, sys\n"
    "for line in open(sys.argv[1], newline='', encoding='utf-8'):\n"
    "    json.loads(line)\n"
)


def measure(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one child process and the children it waited for."""
    start = time.perf_counter()
    child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    _, status, usage = os.wait4(child.pid, 0)
    seconds = time.perf_counter() - start
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"{' '.join(command)} exited {child.returncode}")
    return seconds, usage.ru_maxrss / 1024


def best(commands: list[list[str]], repeat: int) -> list[tuple[float, float]]:
    """Best time and largest RSS of each command, run in turn so that load hits them alike."""
    runs = [[measure(command) for command in commands] for _ in range(repeat)]
    return [(min(r[n][0] for r in runs), max(r[n][1] for r in runs)) for n in range(len(commands))]


def dry_run(config: Path, snapshot: Path) -> list[str]:
    renewd = str(Path(sys.executable).parent / "renewd")
    return [
        *(renewd, "dry-run", "--config", str(config), "--snapshot", str(snapshot)),
        *("--date", REFERENCE.isoformat(), "--format", "jsonl"),
    ]


def simulate(config: Path, snapshot: Path, days: int) -> list[str]:
    renewd = str(Path(sys.executable).parent / "renewd")
    end = REFERENCE + timedelta(days=days - 1)
    return [
        *(renewd, "simulate", "--config", str(config), "--snapshot", str(snapshot)),
        *("--from", REFERENCE.isoformat(), "--to", end.isoformat(), "--format", "jsonl"),
    ]


def long_lines(work: Path, megabytes: int) -> list[tuple[str, Path]]:
    """A valid row, one row `megabytes` long, a quote that never closes, and a valid row."""
    header = "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency"
    header += ",email"
    good = "mb-{0},acct-1,standard,2026-12-04,true,500,120,CNY,mb-{0}@example.com\n"
    files = []
    for name, middle in (("long-line", "x"), ("open-quote", '"x')):
        path = work / f"{name}.csv"
        with path.open("w", encoding="utf-8") as f:
            f.write(header + "\n" + good.format(1) + "mb-2,acct-1," + middle[:-1])
            chunk = middle[-1] * (1 << 20)
            for _ in range(megabytes):
                f.write(chunk)
            f.write("\n" + good.format(3))
        files.append((f"{name}, {megabytes} MB", path))
    return files


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--dialect", nargs="+", choices=DIALECTS, default=list(DIALECTS))
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--long-line", type=int, default=0, metavar="MB")
    parser.add_argument("--simulate", type=int, default=0, metavar="DAYS")
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    config = work / "config.yaml"
    config.write_text(f"rules: {ROOT / 'rules'}\nledger: {work / 'none.sqlite3'}\n", "utf-8")
    print(f"{'snapshot':<14} {'rows':>9}  {'(a) floor':>10}  {'(b) dry-run':>11}", end="")
    print(f"  {'b/a':>5}  {'(c) peak RSS':>12}", end="")
    print(f"  {'(d) simulate':>12}  {'(e) peak RSS':>12}" if args.simulate else "", flush=True)
    for dialect in args.dialect:
        for count in args.counts:
            snapshot = work / f"{dialect}-{count}.{'jsonl' if dialect == 'jsonl' else 'csv'}"
            generate(count, snapshot, dialect=dialect)
            floor = [sys.executable, "-c", JSON_FLOOR if dialect == "jsonl" else CSV_FLOOR]
            (low, _), (seconds, rss) = best(
                [[*floor, str(snapshot)], dry_run(config, snapshot)], args.repeat
            )
            print(f"{dialect:<14} {count:>9}  {low:>8.2f} s  {seconds:>9.2f} s", end="")
            print(f"  {seconds / low:>5.1f}  {rss:>9.0f} MB", end="")
            if args.simulate:
                played, most = measure(simulate(config, snapshot, args.simulate))
                print(f"  {played:>10.1f} s  {most:>9.0f} MB", end="")
            print(flush=True)
            snapshot.unlink()
    if args.long_line:
        for name, path in long_lines(work, args.long_line):
            seconds, rss = best([dry_run(config, path)], 1)[0]
            print(f"{name:<25} {'':>10}  {seconds:>9.2f} s  {'':>5}  {rss:>9.0f} MB", flush=True)
            path.unlink()


if __name__ == "__main__":
    main()
