"""`renewd simulate` over a range at scale: wall time and peak memory, end to end.

`python bench/simulate.py [--counts 100000 1000000] [--days 90]`. Each run is its own process
group, measured by a small wrapper so that peak RSS is that command's alone (the largest of its
processes: the range is worked out by two at once on two CPUs); times are the best of
`--repeat` runs. The output (`--format jsonl`) is counted, then thrown away.
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
    "assert run.wait() == 0\n"
    "print(lines, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
)


def measure(command: list[str]) -> tuple[float, float, int]:
    """(seconds, peak RSS in MB, lines of output) of one command."""
    start = time.perf_counter()
    done = subprocess.run(
        [sys.executable, "-c", WRAPPER, *command], check=True, capture_output=True, text=True
    )
    seconds = time.perf_counter() - start
    lines, rss = done.stdout.split()
    return seconds, int(rss) / 1024, int(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--days", type=int, default=90)
    parser.add_argument("--repeat", type=int, default=1)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    config = work / "config.yaml"
    config.write_text(f"rules: {ROOT / 'rules'}\n", encoding="utf-8")
    renewd = str(Path(sys.executable).parent / "renewd")
    end = REFERENCE + timedelta(days=args.days - 1)
    print(f"{'rows':>9}  {'days':>4}  {'simulate':>10}  {'peak RSS':>9}  {'actions':>9}")
    for count in args.counts:
        snapshot = work / f"snapshot-{count}.csv"
        generate(count, snapshot)
        command = [
            renewd,
            "simulate",
            "--config",
            str(config),
            "--snapshot",
            str(snapshot),
            "--from",
            REFERENCE.isoformat(),
            "--to",
            end.isoformat(),
            "--format",
            "jsonl",
        ]
        runs = [measure(command) for _ in range(args.repeat)]
        seconds = min(r[0] for r in runs)
        rss = max(r[1] for r in runs)
        print(f"{count:>9}  {args.days:>4}  {seconds:>8.1f} s  {rss:>6.0f} MB  {runs[0][2]:>9}")


if __name__ == "__main__":
    main()
