"""What the progress display costs: `renewd dry-run` with stderr on a terminal (the bar shown)
against the same run with stderr on a pipe (no bar), in alternating pairs, best of each.

`python bench/progress.py [--count 1000000] [--repeat 5]`
"""

from __future__ import annotations

import argparse
import os
import pty
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from generate import REFERENCE, generate

ROOT = Path(__file__).resolve().parent.parent


def plain(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    return time.perf_counter() - start


def on_terminal(command: list[str]) -> float:
    """stderr on a pseudo-terminal, read as fast as it comes (as a terminal would)."""
    terminal, side = pty.openpty()
    reader = threading.Thread(target=_drain, args=(terminal,))
    reader.start()
    start = time.perf_counter()
    subprocess.run(command, check=True, stdout=subprocess.DEVNULL, stderr=side)
    seconds = time.perf_counter() - start
    os.close(side)
    reader.join(timeout=10)
    os.close(terminal)
    return seconds


def _drain(fd: int) -> None:
    try:
        while os.read(fd, 65536):
            pass
    except OSError:  # the other side closed
        return


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--count", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    config = work / "config.yaml"
    config.write_text(f"rules: {ROOT / 'rules'}\nledger: {work / 'none.sqlite3'}\n", "utf-8")
    snapshot = work / "snapshot.csv"
    generate(args.count, snapshot)
    command = [
        str(Path(sys.executable).parent / "renewd"),
        *("dry-run", "--config", str(config), "--snapshot", str(snapshot)),
        *("--date", REFERENCE.isoformat(), "--format", "jsonl"),
    ]
    pairs = [(plain(command), on_terminal(command)) for _ in range(args.repeat)]
    without, with_bar = min(p[0] for p in pairs), min(p[1] for p in pairs)
    print(
        f"{args.count:,} rows: no display {without:.2f} s, display {with_bar:.2f} s "
        f"({with_bar / without - 1:+.1%}); pairs: "
        + ", ".join(f"{a:.2f}/{b:.2f}" for a, b in pairs)
    )


if __name__ == "__main__":
    main()
