"""Delivery throughput: renewd against the ceiling a bare client reaches on the same loopback sink.

    python bench/delivery.py [--n 2000] [--sms-n 1000] [--rate-n 200] [--rate 20]
                             [--connections 8] [--sms-concurrency 4] [--profile DIR] [--keep]

Prints figures, asserts nothing. Everything runs on 127.0.0.1; each sink (bench/sinks.py) is a
process of its own, and so is every renewd run.

Email  (a) aiosmtplib alone: `connections` SMTP clients sharing one SSLContext, each connected once
           (STARTTLS + AUTH, not timed), sending the pre-built messages as fast as they can.
       (b) renewd: a temp project whose snapshot puts N mailboxes at D-30 (no phone, so email only).
           `renewd run` with RENEWD_CRASH_AT=after-plan writes the plan and dies, leaving N pending
           emails in the outbox; a second run of the same day (bench/timed_run.py, the same library
           call as `renewd run`, phases timed) plans nothing new and delivers them: rendering,
           connecting, sending and the ledger updates. A third run finds the outbox empty: the cost
           of a day with nothing left to send.
           The messages of (a) are rendered beforehand from that very outbox, so (a) and (b) send
           the same bytes to the same sink.
SMS    (a) aiohttp alone, `sms-concurrency` connections, POSTing the form Twilio's client sends.
       (b) renewd's twilio sender with `rate: 0` (no spacing), the same concurrency, through the
           same outbox trick; the policy is the shipped one with the renewal reminder by SMS only.
       (ref) the official twilio client alone on the same messages: what any sender built on it
           can reach at best.
       rate: N more SMS with `rate: 20`: the send rate the sink saw (first to last arrival).
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import itertools
import json
import os
import platform
import shutil
import sqlite3
import ssl
import statistics
import subprocess
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable, Coroutine
from datetime import date, timedelta
from email.message import EmailMessage
from importlib.metadata import version
from pathlib import Path
from typing import Any

import aiohttp
import aiosmtplib

from renewd.delivery.senders.base import Outbound, email_message
from renewd.delivery.templating import Renderer

sys.path.insert(0, str(Path(__file__).resolve().parent))
from sinks import ACCOUNT, TOKEN, Sink

ROOT = Path(__file__).resolve().parent.parent
RENEWD = Path(sys.executable).parent / "renewd"
TIMED_RUN = Path(__file__).resolve().parent / "timed_run.py"
DAY = date(2026, 12, 1)
EXPIRES = DAY + timedelta(days=30)  # D-30: the first renewal reminder
FROM_EMAIL = "Renewals <renewals@mail.example.com>"
FROM_SMS = "+14155550000"
ENV = {"RENEWD_BENCH_SMTP_PASSWORD": "", "RENEWD_BENCH_TWILIO_TOKEN": TOKEN}
CSV_HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,"
    "email,phone,locale\n"
)
SMS_ONLY_POLICY = """\
# The shipped policy's timezone and editions; the renewal reminder by SMS only (benchmark).
timezone: Asia/Shanghai
editions: {free: [free], paid: [basic, standard, enterprise]}
lifecycle:
  renewal_reminder: {days_before: [30, 15, 7, 3, 1], notify: [sms]}
"""
RUN_TIMEOUT = 900


# -- projects ---------------------------------------------------------------------------------


LEDGER_DIR: Path | None = None  # --ledger-dir: elsewhere than the project (say, on tmpfs)


def ledger_path(config: Path) -> Path:
    base = LEDGER_DIR / config.parent.name if LEDGER_DIR else config.parent / "state"
    return base / "ledger.sqlite3"


def write_project(
    root: Path, n: int, email: dict[str, Any], sms: dict[str, Any], rules: Path, phones: bool
) -> Path:
    """config.yaml and a snapshot of `n` mailboxes at D-30, half zh-CN, half en."""
    root.mkdir(parents=True)
    config = root / "config.yaml"
    ledger_path(config).parent.mkdir(parents=True, exist_ok=True)
    config.write_text(
        f"rules: {json.dumps(str(rules))}\n"
        "snapshot: snapshot-{date}.csv\n"
        f"ledger: {json.dumps(str(ledger_path(config)))}\n"
        "senders:\n"
        f"  email: {json.dumps(email)}\n"
        f"  sms: {json.dumps(sms)}\n",
        encoding="utf-8",
    )
    lines = [CSV_HEADER]
    for i in range(n):
        mailbox = f"mb-{i:06d}"
        phone = f"+141555501{i % 100:02d}" if phones else ""
        locale = "zh-CN" if i % 2 else "en"
        lines.append(
            f"{mailbox},acct-{i:06d},standard,{EXPIRES},false,0.00,120.00,CNY,"
            f"{mailbox}@example.cn,{phone},{locale}\n"
        )
    (root / f"snapshot-{DAY}.csv").write_text("".join(lines), encoding="utf-8")
    return config


def child_env(**extra: str) -> dict[str, str]:
    env = {**os.environ, **ENV}
    env.pop("RENEWD_CRASH_AT", None)  # only where asked for
    return {**env, **extra}


def plan_only(config: Path) -> None:
    """A run that dies right after writing its plan: the outbox is left full."""
    done = subprocess.run(
        [str(RENEWD), "run", "--date", DAY.isoformat(), "--config", str(config)],
        capture_output=True,
        text=True,
        env=child_env(RENEWD_CRASH_AT="after-plan"),
        timeout=RUN_TIMEOUT,
        check=False,
    )
    if done.returncode != -9:
        raise SystemExit(f"the planning run did not stop after the plan:\n{done.stderr}")


def timed_run(config: Path, profile: Path | None = None) -> dict[str, Any]:
    command = [sys.executable, str(TIMED_RUN), str(config), DAY.isoformat()]
    if profile:
        command += ["--profile", str(profile)]
    start = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, env=child_env(), timeout=RUN_TIMEOUT, check=False
    )
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise SystemExit(f"the timed run failed ({done.returncode}):\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    result["wall"] = wall
    return result


def outbox(config: Path, channel: str) -> list[sqlite3.Row]:
    with contextlib.closing(sqlite3.connect(ledger_path(config))) as db:
        db.row_factory = sqlite3.Row
        return list(
            db.execute(
                "SELECT id, template, payload, state FROM actions"
                " WHERE kind = 'notify' AND channel = ? ORDER BY id",
                (channel,),
            )
        )


def states(config: Path, channel: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for row in outbox(config, channel):
        counts[row["state"]] = counts.get(row["state"], 0) + 1
    return counts


def rendered(config: Path, channel: str) -> list[tuple[str, Any]]:
    """The pending messages of the outbox, rendered as renewd renders them: (to, message)."""
    renderer = Renderer(None, "en")
    out: list[tuple[str, Any]] = []
    for row in outbox(config, channel):
        payload = json.loads(row["payload"])
        to, locale, values = payload["to"], payload["locale"], payload["vars"]
        key = f"renewd-{row['id']}"
        if channel == "sms":
            out.append((to, renderer.sms(row["template"], locale, values)))
        else:
            r = renderer.email(row["template"], locale, values)
            message = Outbound(key, "email", to, locale, r.subject, r.text, r.html)
            out.append((to, email_message(message, FROM_EMAIL)))
    return out


# -- the ceilings -----------------------------------------------------------------------------


async def smtp_ceiling(
    sink: Sink, messages: list[EmailMessage], connections: int
) -> dict[str, Any]:
    tls = ssl.create_default_context(cafile=sink.ca_file)
    clients = [
        aiosmtplib.SMTP(
            hostname="127.0.0.1",
            port=sink.port,
            start_tls=True,
            tls_context=tls,
            username=sink.info["username"],
            password=sink.info["password"],
            local_hostname="bench.test",
            timeout=30,
        )
        for _ in range(connections)
    ]
    start = time.perf_counter()
    await asyncio.gather(*(client.connect() for client in clients))
    connected = time.perf_counter() - start
    queue = deque(messages)
    errors = 0

    async def worker(client: aiosmtplib.SMTP) -> None:
        nonlocal errors
        while queue:
            message = queue.popleft()
            try:
                await client.send_message(message)
            except aiosmtplib.SMTPException:
                errors += 1

    start, start_cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker(client) for client in clients))
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    await asyncio.gather(*(client.quit() for client in clients))
    return {"seconds": seconds, "cpu": cpu, "connect": connected, "errors": errors}


async def sms_ceiling(
    sink: Sink, messages: list[tuple[str, str]], concurrency: int
) -> dict[str, Any]:
    endpoint = f"{sink.url}/2010-04-01/Accounts/{ACCOUNT}/Messages.json"
    token = base64.b64encode(f"{ACCOUNT}:{TOKEN}".encode()).decode()
    headers = {"Authorization": f"Basic {token}"}  # what the twilio client sends
    queue = deque(messages)
    errors = 0
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=concurrency)) as session:

        async def worker() -> None:
            nonlocal errors
            while queue:
                to, body = queue.popleft()
                form = {"To": to, "Body": body, "From": FROM_SMS}
                async with session.post(endpoint, data=form, headers=headers) as response:
                    answer = await response.json()
                    if response.status != 201 or not str(answer.get("sid", "")).startswith("SM"):
                        errors += 1

        start, start_cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(worker() for _ in range(concurrency)))
        seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    return {"seconds": seconds, "cpu": cpu, "errors": errors}


async def twilio_client_ceiling(
    sink: Sink, messages: list[tuple[str, str]], concurrency: int
) -> dict[str, Any]:
    """The official twilio client alone, as renewd sets it up: a reference for SMS, not (a)."""
    from twilio.http.async_http_client import AsyncTwilioHttpClient
    from twilio.rest import Client

    client = Client(ACCOUNT, TOKEN, http_client=AsyncTwilioHttpClient())
    client.region = client.edge = None
    client.api.base_url = sink.url
    queue = deque(messages)

    async def worker() -> None:
        while queue:
            to, body = queue.popleft()
            await client.messages.create_async(to=to, body=body, from_=FROM_SMS)

    start, start_cpu = time.perf_counter(), time.process_time()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    seconds, cpu = time.perf_counter() - start, time.process_time() - start_cpu
    await client.http_client.close()
    return {"seconds": seconds, "cpu": cpu, "count": len(messages)}


# -- the experiments --------------------------------------------------------------------------


def email_bench(work: Path, n: int, connections: int, profile: Path | None) -> dict[str, Any]:
    with Sink("smtp", work / "smtp-sink") as sink:
        ENV["RENEWD_BENCH_SMTP_PASSWORD"] = sink.info["password"]
        email = {
            "backend": "smtp",
            "host": "127.0.0.1",
            "port": sink.port,
            "security": "starttls",
            "username": sink.info["username"],
            "password_env": "RENEWD_BENCH_SMTP_PASSWORD",
            "from": FROM_EMAIL,
            "ca_file": sink.ca_file,
            "connections": connections,
            "attempts": 1,
            "timeout": 30,
            "local_hostname": "renewd.bench",
        }
        sms = {"backend": "file", "path": "out/sms.jsonl", "window": "00:00-24:00"}
        config = write_project(work / "email", n, email, sms, ROOT / "rules", phones=False)
        plan_only(config)
        messages = [m for _, m in rendered(config, "email")]
        result = measure(
            config, "email", sink, lambda: smtp_ceiling(sink, messages, connections), profile
        )
        result["bytes"] = result["seen"]["bytes"] / max(result["seen"]["count"], 1)
        return result


def measure(
    config: Path,
    channel: str,
    sink: Sink,
    ceiling: Callable[[], Coroutine[Any, Any, dict[str, Any]]],
    profile: Path | None,
) -> dict[str, Any]:
    """The same steps for each channel: planned outbox, the ceiling, renewd, an empty rerun."""
    pending = states(config, channel).get("pending", 0)
    bare = asyncio.run(ceiling())
    bare["count"] = sink.stats()["count"]
    sink.reset()
    run = timed_run(config, profile)
    seen = sink.stats()
    after = states(config, channel)
    sink.reset()
    empty = timed_run(config)
    return {
        "pending": pending,
        "ceiling": bare,
        "run": run,
        "seen": seen,
        "after": after,
        "empty": empty,
    }


def sms_project(work: Path, name: str, n: int, sink: Sink, rate: float, concurrency: int) -> Path:
    rules = work / f"{name}-rules"
    rules.mkdir()
    (rules / "lifecycle.yaml").write_text(SMS_ONLY_POLICY, encoding="utf-8")
    email = {"backend": "file", "path": "out/mail", "from": "renewals@mail.example.com"}
    sms = {
        "backend": "twilio",
        "account_sid": ACCOUNT,
        "auth_token_env": "RENEWD_BENCH_TWILIO_TOKEN",
        "from": FROM_SMS,
        "base_url": sink.url,
        "rate": rate,
        "concurrency": concurrency,
        "timeout": 30,
        "window": "00:00-24:00",
    }
    return write_project(work / name, n, email, sms, rules, phones=True)


def sms_bench(work: Path, n: int, concurrency: int, profile: Path | None) -> dict[str, Any]:
    with Sink("sms") as sink:
        config = sms_project(work, "sms", n, sink, 0, concurrency)
        plan_only(config)
        messages = list(rendered(config, "sms"))
        client = asyncio.run(twilio_client_ceiling(sink, messages, concurrency))
        sink.reset()
        result = measure(
            config, "sms", sink, lambda: sms_ceiling(sink, messages, concurrency), profile
        )
        return {**result, "client": client}


def rate_bench(work: Path, n: int, rate: float, concurrency: int) -> dict[str, Any]:
    with Sink("sms") as sink:
        config = sms_project(work, "sms-rate", n, sink, rate, concurrency)
        plan_only(config)
        run = timed_run(config)
        seen = sink.stats(times=True)
        times = seen["times"]
        span = times[-1] - times[0] if len(times) > 1 else 0.0
        measured = (len(times) - 1) / span if span > 0 else 0.0
        gaps = [b - a for a, b in itertools.pairwise(times)]
        return {
            "run": run,
            "count": len(times),
            "span": span,
            "measured": measured,
            "deviation": (measured - rate) / rate * 100 if rate else 0.0,
            "gaps": gaps,
            "after": states(config, "sms"),
        }


# -- output -----------------------------------------------------------------------------------


def machine() -> list[str]:
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    packages = ", ".join(
        f"{p} {version(p)}" for p in ("aiosmtplib", "aiosmtpd", "aiohttp", "twilio", "SQLAlchemy")
    )
    return [
        f"machine: {usable} usable CPUs (nproc), {os.cpu_count()} online, {model or 'unknown CPU'}",
        f"python {platform.python_version()} on {platform.platform()}; {packages}",
    ]


def load() -> str:
    try:
        return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())
    except OSError:
        return "load average unknown"


def rate(count: int, seconds: float) -> float:
    return count / seconds if seconds > 0 else 0.0


def table(rows: list[tuple[str, ...]]) -> None:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for j, row in enumerate(rows):
        cells = [
            row[0].ljust(widths[0]),
            *(cell.rjust(width) for cell, width in zip(row[1:], widths[1:], strict=True)),
        ]
        print("  ".join(cells).rstrip())
        if j == 0:
            print("  ".join("-" * w for w in widths))


def report_channel(title: str, result: dict[str, Any], n: int) -> None:
    ceiling, run, empty = result["ceiling"], result["run"], result["empty"]
    phases, seen = run["phases"], result["seen"]
    a = rate(n, ceiling["seconds"])
    deliver = phases["deliver"]
    whole = phases["run_day"]
    sink_span = (seen["last"] - seen["first"]) if seen["count"] > 1 else 0.0
    planning = whole - deliver
    steps = ("plan", "revalidate", "record_plan", "deliver")
    setup = whole - sum(phases.get(k, 0.0) for k in steps)
    rows: list[tuple[str, ...]] = [("", "messages", "seconds", "msg/s", "of (a)")]
    rows.append(
        ("(a) bare client", str(ceiling["count"]), f"{ceiling['seconds']:.2f}", f"{a:.0f}", "100%")
    )
    if "client" in result:  # what the official client alone reaches: a floor for renewd's cost
        client = result["client"]
        c = rate(client["count"], client["seconds"])
        rows.append(
            (
                "(ref) official twilio client alone",
                str(client["count"]),
                f"{client['seconds']:.2f}",
                f"{c:.0f}",
                f"{c / a:.0%}" if a else "-",
            )
        )
    for label, count, seconds in (
        ("(b) renewd, delivery only (Executor.run)", seen["count"], deliver),
        ("(b) renewd, whole run_day (+ plan, checks)", seen["count"], whole),
        ("(b) renewd, whole process (+ start, imports)", seen["count"], run["wall"]),
        ("(b) sink-side, first to last arrival", seen["count"] - 1, sink_span),
    ):
        b = rate(count, seconds)
        rows.append((label, str(count), f"{seconds:.2f}", f"{b:.0f}", f"{b / a:.0%}" if a else "-"))
    print(f"\n{title}")
    table(rows)
    connect = ceiling.get("connect")
    extra = f", connect {connect * 1000:.0f} ms (not timed)" if connect is not None else ""
    print(f"  (a) errors {ceiling['errors']}{extra}; client CPU {ceiling['cpu']:.2f}s")
    if "client" in result:
        print(f"  (ref) twilio client CPU {result['client']['cpu']:.2f}s")
    print(
        f"  (b) outbox before {result['pending']} pending, after {result['after']}; "
        f"outcomes {run['outcomes']}"
    )
    print(
        "  (b) phases: "
        + ", ".join(f"{k} {v:.2f}s" for k, v in phases.items())
        + f"; rest of run_day (lock, ledger, senders set up, run record) {setup:.2f}s"
        + f"; process wall {run['wall']:.2f}s"
    )
    print(
        f"  (b) renewd CPU during delivery {run['cpu']['deliver']:.2f}s of "
        f"{deliver:.2f}s wall (the rest: waiting for the sink, the disk, other processes)"
    )
    commits = run["commits"]
    if count := commits["count"]:
        print(
            f"  (b) ledger: {count} commits of outbox marks, {seen['count'] / count:.1f} messages "
            f"each; per commit {commits['seconds'] / count * 1000:.2f} ms wall, "
            f"{commits['cpu'] / count * 1000:.2f} ms CPU (in the writer thread)"
        )
    print(
        f"  (b) planning part of the delivering run: {planning:.2f}s; a rerun on the empty outbox: "
        f"run_day {empty['phases']['run_day']:.2f}s (plan {empty['phases'].get('plan', 0):.2f}s), "
        f"process wall {empty['wall']:.2f}s"
    )
    if "bytes" in result:
        print(f"  message size at the sink: {result['bytes']:.0f} bytes")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=2000, help="emails")
    parser.add_argument("--sms-n", type=int, default=1000, help="SMS, unlimited rate")
    parser.add_argument("--rate-n", type=int, default=200, help="SMS at --rate")
    parser.add_argument("--rate", type=float, default=20.0, help="SMS per second for the rate test")
    parser.add_argument("--connections", type=int, default=8, help="SMTP connections, (a) and (b)")
    parser.add_argument("--sms-concurrency", type=int, default=4, help="(a) and (b)")
    parser.add_argument("--profile", type=Path, help="cProfile renewd's delivery into this dir")
    parser.add_argument(
        "--ledger-dir", type=Path, help="put the ledgers here (/dev/shm: what fsync costs)"
    )
    parser.add_argument("--keep", action="store_true", help="keep the temp projects, print where")
    parser.add_argument("--only", choices=("email", "sms", "rate"), action="append")
    args = parser.parse_args()
    only = set(args.only or ("email", "sms", "rate"))

    for line in machine():
        print(line)
    print(f"at start: {load()} (other work on the machine skews every figure)")
    work = Path(tempfile.mkdtemp(prefix="renewd-bench-"))
    global LEDGER_DIR
    if args.ledger_dir:
        LEDGER_DIR = Path(tempfile.mkdtemp(prefix="renewd-bench-", dir=args.ledger_dir))
        print(f"ledgers in {LEDGER_DIR}")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    try:
        if "email" in only and args.n > 0:
            result = email_bench(
                work,
                args.n,
                args.connections,
                args.profile / "email.prof" if args.profile else None,
            )
            report_channel(
                f"Email: {args.n} reminders, {args.connections} connections, STARTTLS + AUTH",
                result,
                args.n,
            )
        if "sms" in only and args.sms_n > 0:
            result = sms_bench(
                work,
                args.sms_n,
                args.sms_concurrency,
                args.profile / "sms.prof" if args.profile else None,
            )
            report_channel(
                f"SMS: {args.sms_n} messages, concurrency {args.sms_concurrency}, rate 0",
                result,
                args.sms_n,
            )
        if "rate" in only and args.rate_n > 0:
            limited = rate_bench(work, args.rate_n, args.rate, args.sms_concurrency)
            gaps = sorted(limited["gaps"]) or [0.0]
            print(
                f"\nSMS with rate: {args.rate:g}/s, {args.rate_n} messages, "
                f"concurrency {args.sms_concurrency}"
            )
            table(
                [
                    ("", "messages", "seconds", "msg/s", "vs configured"),
                    (
                        "sink, first to last arrival",
                        str(limited["count"]),
                        f"{limited['span']:.2f}",
                        f"{limited['measured']:.2f}",
                        f"{limited['deviation']:+.1f}%",
                    ),
                ]
            )
            print(
                f"  gaps between arrivals: min {gaps[0] * 1000:.1f} ms, median "
                f"{statistics.median(gaps) * 1000:.1f} ms, max {gaps[-1] * 1000:.1f} ms "
                f"(ideal {1000 / args.rate:.1f} ms); outbox after {limited['after']}; "
                f"delivery {limited['run']['phases']['deliver']:.2f}s"
            )
    finally:
        if args.keep:
            print(f"\nprojects kept in {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)
            if LEDGER_DIR:
                shutil.rmtree(LEDGER_DIR, ignore_errors=True)
    print(f"\ntotal bench time {time.perf_counter() - started:.0f}s; at end: {load()}")


if __name__ == "__main__":
    main()
