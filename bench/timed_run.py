"""`renewd run` for one day, with its phases timed; prints one JSON line.

    python bench/timed_run.py CONFIG YYYY-MM-DD [--profile OUT.prof]

It calls the same library function as the `run` command (`renewd.act.run.run_day`, with the lock,
the ledger upgrade and the run record) and only wraps, from the outside, the functions that
mark its phases: planning (`plan_day`), checking what earlier runs left open (`_revalidate`),
writing the plan (`Ledger.record_plan`) and the executor (`Executor.run`), itself split into
charges, deletions and messages (rendering, sending, the ledger updates); it also counts and
times the executor's commits of outbox claims and outcomes (`Ledger.mark_many`, in its writer
thread). `total` is the wall time from the interpreter's start, `peak_rss_mb` the process's
largest resident set. `--profile` runs cProfile around the executor alone. Nothing in renewd is
changed; the wrappers only read the clock.
"""

from __future__ import annotations

import time

STARTED = time.perf_counter()

import argparse  # noqa: E402
import cProfile  # noqa: E402
import functools  # noqa: E402
import json  # noqa: E402
import resource  # noqa: E402
from collections.abc import Callable  # noqa: E402
from datetime import date  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import renewd.act.run as runner  # noqa: E402
from renewd.act.executor import Executor  # noqa: E402
from renewd.config.load import load_config  # noqa: E402
from renewd.plan.day import plan_day  # noqa: E402
from renewd.policy.loader import load_policy, policy_files  # noqa: E402
from renewd.state.ledger import Ledger  # noqa: E402

IMPORTED = time.perf_counter()
phases: dict[str, float] = {}
cpu: dict[str, float] = {}  # CPU seconds of this process in the same phases (the rest is waiting)
system: dict[str, float] = {}  # of which in the kernel (file writes, fsync, SQLite's journal)
commits = {"count": 0, "seconds": 0.0, "cpu": 0.0}  # the executor's outbox marks (its thread)


def _sys() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_stime


def _add(name: str, start: float, start_cpu: float, start_sys: float) -> None:
    phases[name] = phases.get(name, 0.0) + time.perf_counter() - start
    cpu[name] = cpu.get(name, 0.0) + time.process_time() - start_cpu
    system[name] = system.get(name, 0.0) + _sys() - start_sys


def timed(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, start_cpu, start_sys = time.perf_counter(), time.process_time(), _sys()
        try:
            return function(*args, **kwargs)
        finally:
            _add(name, start, start_cpu, start_sys)

    return wrapper


def timed_async(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
    """The executor's phases are coroutines: time each from its start to its end."""

    @functools.wraps(function)
    async def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, start_cpu, start_sys = time.perf_counter(), time.process_time(), _sys()
        try:
            return await function(*args, **kwargs)
        finally:
            _add(name, start, start_cpu, start_sys)

    return wrapper


def counted(function: Callable[..., Any]) -> Callable[..., Any]:
    """Ledger.mark_many: one call is one commit, made in the executor's writer thread."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        start, start_cpu = time.perf_counter(), time.thread_time()
        try:
            return function(*args, **kwargs)
        finally:
            commits["count"] += 1
            commits["seconds"] += time.perf_counter() - start
            commits["cpu"] += time.thread_time() - start_cpu

    return wrapper


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("config", type=Path)
    parser.add_argument("day", type=date.fromisoformat)
    parser.add_argument("--profile", type=Path)
    args = parser.parse_args()

    setattr(runner, "plan_day", timed("plan", plan_day))  # noqa: B010
    setattr(runner, "_revalidate", timed("revalidate", runner._revalidate))  # noqa: B010
    setattr(Ledger, "record_plan", timed("record_plan", Ledger.record_plan))  # noqa: B010
    setattr(Ledger, "mark_many", counted(Ledger.mark_many))  # noqa: B010
    for phase in ("charges", "deletions", "messages"):
        method = getattr(Executor, f"_{phase}")
        setattr(Executor, f"_{phase}", timed_async(phase, method))
    original = Executor.run
    deliver: Callable[..., Any] = original
    if args.profile:
        profiler = cProfile.Profile()

        def profiled(self: Executor, *a: Any, **k: Any) -> Any:
            profiler.enable()
            try:
                return original(self, *a, **k)
            finally:
                profiler.disable()
                profiler.dump_stats(str(args.profile))

        deliver = profiled
    setattr(Executor, "run", timed("deliver", deliver))  # noqa: B010

    start = time.perf_counter()
    config = load_config(args.config)
    policy = load_policy(policy_files(config.rules))
    phases["load"] = time.perf_counter() - start
    report = timed("run_day", runner.run_day)(
        config, policy, config.snapshot_for(args.day), args.day
    )
    phases["imports"] = IMPORTED - STARTED
    phases["total"] = time.perf_counter() - STARTED
    print(
        json.dumps(
            {
                "status": report.status,
                "written": report.written,
                "outcomes": dict(report.outcomes),
                "stopped": report.stopped,
                "phases": phases,
                "cpu": cpu,
                "cpu_system": system,
                "commits": commits,
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
            }
        )
    )


if __name__ == "__main__":
    main()
