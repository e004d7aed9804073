"""`renewd simulate`, `diff` and `forecast` over a range at scale: wall time and peak memory.

`python bench/simulate.py [--counts 100000 1000000] [--days 90] [--commands simulate diff
forecast] [--snapshot FILE]` (FILE: a snapshot made already, used instead of one generated per
count). Each run is its own process group, measured by a small wrapper so that peak RSS is
that command's alone (the largest of its processes: the range is worked out by two at once on
two CPUs); times are the best of `--repeat` runs. The output is counted, then thrown away.
`diff` compares the shipped rules with the same rules reminding a day later (D-14 for D-15):
a change that touches a third of the mailboxes.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from datetime import timedelta
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import REFERENCE, generate

ROOT = Path(__file__).resolve().parent.parent
# Runs the command with its output counted; prints the largest RSS of its processes, in KiB.
WRAPPER = (
    "import resource, subprocess, sys\n"
    "run = subprocess.Popen(sys.argv[1:], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL)\n"
    "read = iter(lambda: run.stdout.read(1 << 20), b'')\n"
    "lines = sum(chunk.count(b'\\n') for chunk in read)\n"
    "assert run.wait() in (0, 1)\n"  # diff: 1 when the policies differ
    "use = resource.getrusage(resource.RUSAGE_CHILDREN)\n"
    "print(lines, use.ru_maxrss, use.ru_utime + use.ru_stime)\n"
)


def measure(command: list[str]) -> tuple[float, float, int, float]:
    """(seconds, peak RSS in MB, lines of output, CPU seconds of all its processes)."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    lines, rss, cpu = done.stdout.split()
    return seconds, int(rss) / 1024, int(lines), float(cpu)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument(
        "--snapshot",
        type=Path,
        help="use this snapshot (left as it is) instead of generating one per count; its rows "
        "are counted",
    )
    parser.add_argument(
        "--commands", nargs="+", default=["simulate", "diff", "forecast"], choices=COMMANDS
    )
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    config = work / "config.yaml"
    config.write_text(f"rules: {ROOT / 'rules'}\n", encoding="utf-8")
    changed = work / "rules-changed"
    changed.mkdir()
    shipped = (ROOT / "rules" / "lifecycle.yaml").read_text(encoding="utf-8")
    (changed / "lifecycle.yaml").write_text(
        shipped.replace("[30, 15, 7, 3, 1]", "[30, 14, 7, 3, 1]"), encoding="utf-8"
    )
    renewd = str(Path(sys.executable).parent / "renewd")
    end = REFERENCE + timedelta(days=args.days - 1)
    span = ["--from", REFERENCE.isoformat(), "--to", end.isoformat()]
    print(
        f"{'command':>9}  {'rows':>9}  {'days':>4}  {'time':>8}  {'CPU':>8}  {'peak RSS':>9}  "
        f"{'lines':>9}"
    )
    given = args.snapshot
    for count in [_rows(given)] if given else args.counts:
        snapshot = given or work / f"snapshot-{count}.csv"
        if not given:
            generate(count, snapshot)
        common = ["--config", str(config), "--snapshot", str(snapshot), *span]
        commands = {
            "simulate": [renewd, "simulate", *common, "--format", "jsonl"],
            "diff": [
                renewd,
                "diff",
                str(ROOT / "rules"),
                str(changed),
                *common,
                "--format",
                "jsonl",
            ],
            "forecast": [renewd, "forecast", *common],
        }
        for name in args.commands:
            runs = [measure(commands[name]) for _ in range(args.repeat)]
            seconds = min(r[0] for r in runs)
            cpu = min(r[3] for r in runs)
            rss = max(r[1] for r in runs)
            print(
                f"{name:>9}  {count:>9}  {args.days:>4}  {seconds:>6.1f} s  {cpu:>6.1f} s  "
                f"{rss:>6.0f} MB  {runs[0][2]:>9}",
                flush=True,
            )
        if not given:
            snapshot.unlink()


def _rows(snapshot: Path) -> int:
    with snapshot.open("rb") as lines:
        return sum(chunk.count(b"\n") for chunk in iter(lambda: lines.read(1 << 20), b"")) - 1


COMMANDS = ("simulate", "diff", "forecast")


if __name__ == "__main__":
    main()
