"""Receipts throughput: signed Twilio status callbacks through the callback listener into a real
ledger, and bounces read from a Maildir.

    python bench/receipts.py [--n 20000] [--clients 16] [--ledger URL]

Prints figures, asserts nothing. The ledger (a fresh SQLite file unless --ledger names a
PostgreSQL database to fill) holds N SMS and N email outbox rows, as a large day's run leaves
them. Callbacks: `clients` concurrent connections on loopback post 2N callbacks signed as Twilio
does (each SMS's `sent`, then its final state) to the listener `serve` runs (the same Callbacks
class, the same record() as its receipt service; its request rate bound raised out of the way).
Bounces: N reports in the shapes of Postfix, Exim and a Gmail-style report (tests/peers/mta.py),
a tenth of them about no message of ours, delivered into a Maildir and read once, as `renewd
bounces` does.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import resource
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from datetime import date
from pathlib import Path

from sqlalchemy import insert

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))
from peers import mta  # noqa: E402
from peers.twilio import ACCOUNT, TOKEN, sign  # noqa: E402
from renewd.act.bounces import read_bounces  # noqa: E402
from renewd.act.receipts import record  # noqa: E402
from renewd.config.plugins import Secret  # noqa: E402
from renewd.core.delivery import Receipt  # noqa: E402
from renewd.delivery.receipts import ReturnPath  # noqa: E402
from renewd.policy.loader import load_policy, policy_files  # noqa: E402
from renewd.service.callbacks import Callbacks  # noqa: E402
from renewd.state.ledger import Ledger  # noqa: E402
from renewd.state.schema import actions, runs  # noqa: E402

URL = "https://renewd.example.com/twilio/status"
VERP = "bounces+{id}@bounce.example.com"
DAY = date(2026, 12, 1)


def fill(ledger: Ledger, n: int) -> tuple[list[str], list[int]]:
    """N sent SMS rows and N sent email rows; their MessageSids and outbox ids."""
    now = "2026-12-01T02:00:00+00:00"
    with ledger.engine.begin() as conn:
        run_id = conn.execute(
            insert(runs)
            .returning(runs.c.id)
            .values(
                day=DAY,
                started_at=now,
                status="done",
                snapshot_path="bench",
                snapshot_sha256="0" * 64,
                snapshot_time=now,
                policy_digest="bench",
            )
        ).scalar_one()
        base = {"run_id": run_id, "day": DAY, "cycle": DAY, "anchor": "expiry", "kind": "notify"}
        rows = [
            {
                **base,
                "mailbox_id": f"mb-{i:07d}",
                "account_id": f"acct-{i:07d}",
                "rule": "grace-reminder",
                "step": 29,
                "channel": channel,
                "state": "done",
                "provider_id": f"SM{i:032x}" if channel == "sms" else f"<{i}@mail.example.com>",
                "updated_at": now,
            }
            for channel in ("sms", "email")
            for i in range(n)
        ]
        for start in range(0, len(rows), 5000):
            conn.execute(insert(actions), rows[start : start + 5000])
    with ledger.engine.connect() as conn:
        ids = [row[0] for row in conn.execute(actions.select().with_only_columns(actions.c.id))]
    return [f"SM{i:032x}" for i in range(n)], ids[n:]


def requests(sids: list[str]) -> list[bytes]:
    """Each sid's `sent`, then its final state: signed requests, built before the clock starts."""
    finals = ("delivered", "delivered", "delivered", "undelivered", "failed")
    built = []
    for n, sid in enumerate(sids):
        for status, code in (("sent", ""), (finals[n % 5], "30003" if n % 5 > 2 else "")):
            form = {"AccountSid": ACCOUNT, "MessageSid": sid, "MessageStatus": status}
            form["ErrorCode"] = code
            body = urllib.parse.urlencode(form).encode()
            head = (
                "POST /twilio/status HTTP/1.1\r\nHost: renewd.example.com\r\n"
                "Content-Type: application/x-www-form-urlencoded\r\n"
                f"X-Twilio-Signature: {sign(TOKEN, URL, form)}\r\n"
                f"Content-Length: {len(body)}\r\n\r\n"
            )
            built.append(head.encode() + body)
    return built


async def post_all(address: str, built: list[bytes], clients: int) -> Counter[int]:
    """Post every request over `clients` concurrent connections (one request each, as Twilio
    does; raw sockets, so the clients cost little of the CPU the listener shares with them)."""
    host, port = address.rsplit(":", 1)
    answers: Counter[int] = Counter()
    pending = iter(built)

    async def worker() -> None:
        for data in pending:
            reader, writer = await asyncio.open_connection(host, int(port))
            writer.write(data)
            answer = await reader.read()
            writer.close()
            answers[int(answer[9:12] or 0)] += 1

    await asyncio.gather(*(worker() for _ in range(clients)))
    return answers


def cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20_000)
    parser.add_argument("--clients", type=int, default=16)
    parser.add_argument("--ledger", default="")
    args = parser.parse_args()
    policy = load_policy(policy_files(ROOT / "rules"))
    with tempfile.TemporaryDirectory() as tmp:
        ledger = Ledger(args.ledger or f"sqlite:///{tmp}/ledger.sqlite3")
        ledger.upgrade()
        sids, email_ids = fill(ledger, args.n)
        print(f"ledger: {'PostgreSQL' if args.ledger else 'SQLite'}, {2 * args.n:,} outbox rows")

        def apply(receipts: list[Receipt]) -> None:
            record(ledger, receipts, policy)

        callbacks = Callbacks(
            "127.0.0.1:0", URL, Secret(TOKEN, "bench"), ACCOUNT, apply, lambda _: None, rate=1e9
        )
        callbacks.start()
        built = requests(sids)
        try:
            started, spent = time.perf_counter(), cpu()
            answers = asyncio.run(post_all(callbacks.address, built, args.clients))
            took, used = time.perf_counter() - started, cpu() - spent
        finally:
            callbacks.stop()
        print(
            f"callbacks: {len(built):,} signed posts, answers {dict(answers)}, {took:.1f} s: "
            f"{len(built) / took:,.0f}/s over {args.clients} clients "
            f"(CPU of this process, clients included: {used / took:.0%})"
        )

        folder = mta.maildir(Path(tmp) / "bounces")
        verp = ReturnPath.parse(VERP, "bench")
        shapes = (mta.postfix, mta.exim, mta.gmail)
        for n, action_id in enumerate(email_ids):
            to = f"mb-{n:07d}@example.cn"
            if n % 10 == 9:  # a bounce of someone else's mail
                mta.deliver(folder, mta.postfix("newsletter@elsewhere.example", to))
            else:
                mta.deliver(folder, shapes[n % 3](VERP.format(id=action_id), to))
        size = sum(f.stat().st_size for f in (folder / "new").iterdir())
        started, spent = time.perf_counter(), cpu()
        tally = read_bounces(folder, ledger, verp, policy)
        took, used = time.perf_counter() - started, cpu() - spent
        print(
            f"bounces: {args.n:,} reports ({size / args.n / 1024:.1f} KiB each on average), "
            f"{dict(tally.outcomes)}, {took:.1f} s: {args.n / took:,.0f}/s "
            f"(CPU {used / took:.0%})"
        )
        print(f"left in new/: {len(os.listdir(folder / 'new'))}")
        ledger.close()


if __name__ == "__main__":
    main()
