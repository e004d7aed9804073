"""Evaluation speed: the csv-module floor, `renewd dry-run` end to end, and peak memory.

`python bench/evaluate.py [--counts 100000 1000000]`. Each figure is its own process, so peak
RSS is that command's alone (the largest of its processes: a big snapshot is read by two); times
are the best of `--repeat` runs. Run it under `taskset -c 0` for the one-CPU figure.
"""

from __future__ import annotations

import argparse
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import REFERENCE, generate

ROOT = Path(__file__).resolve().parent.parent
FLOOR = (
    "import csv, sys\n"
    "for row in csv.reader(open(sys.argv[1], newline='', encoding='utf-8')):\n"
    "    pass\n"
)


def measure(command: list[str]) -> tuple[float, float]:
    """(seconds, peak RSS in MB) of one child process."""
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.perf_counter() - start
    return seconds, resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024


def best(command: list[str], repeat: int) -> tuple[float, float]:
    runs = [measure(command) for _ in range(repeat)]
    return min(r[0] for r in runs), max(r[1] for r in runs)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--counts", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    config = work / "config.yaml"
    config.write_text(
        f"rules: {ROOT / 'rules'}\nledger: {work / 'none.sqlite3'}\n", encoding="utf-8"
    )
    renewd = str(Path(sys.executable).parent / "renewd")
    print(
        f"{'rows':>9}  {'(a) csv floor':>14}  {'(b) dry-run':>12}  {'b/a':>5}  {'(c) peak RSS':>13}"
    )
    for count in args.counts:
        snapshot = work / f"snapshot-{count}.csv"
        generate(count, snapshot)
        floor, _ = best([sys.executable, "-c", FLOOR, str(snapshot)], args.repeat)
        dry = [
            renewd,
            "dry-run",
            "--config",
            str(config),
            "--snapshot",
            str(snapshot),
            "--date",
            REFERENCE.isoformat(),
            "--format",
            "jsonl",
        ]
        seconds, rss = best(dry, args.repeat)
        ratio = seconds / floor
        print(f"{count:>9}  {floor:>12.2f} s  {seconds:>10.2f} s  {ratio:>5.1f}  {rss:>10.0f} MB")


if __name__ == "__main__":
    main()
