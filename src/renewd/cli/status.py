"""`renewd status`: what the ledger and the running daemon say about themselves."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from renewd.config.model import Config
from renewd.core.errors import ProblemsError
from renewd.policy.model import Policy
from renewd.service.schedule import next_run
from renewd.state.db import database_url
from renewd.state.ledger import Ledger


def daemon_status(config: Config, policy: Policy | ProblemsError) -> list[str]:
    """`policy` is what the files say now: when they have problems (a reload the daemon refused),
    status still shows the rest; the daemon's view comes from its /healthz."""
    if isinstance(policy, ProblemsError):
        count = len(policy.problems)
        lines = [f"policy files: {count} problem{'s' if count > 1 else ''} (see renewd check)"]
    else:
        zone = ZoneInfo(policy.timezone)
        upcoming = next_run(datetime.now(UTC), config.serve.run_at, zone).isoformat()
        lines = [f"policy: {policy.digest} ({len(policy.rules)} rules)"]
        lines.append(f"next scheduled run: {upcoming}")
    ledger = Ledger.existing(database_url(config.ledger, config.base))
    if ledger is None:
        lines.append("ledger: empty, nothing has run yet")
    else:
        try:
            runs = ledger.runs(1)
            if runs:
                run = runs[0]
                finished = run["finished_at"] or "-"
                head = f"last run: {run['id']} for {run['day']} {run['status']}"
                tail = f"(policy {run['policy_digest']}, finished {finished}) {run['message']}"
                lines.append(f"{head} {tail}".rstrip())
            lines.append(f"outbox: {ledger.outbox_depth()} open; held: {ledger.held_count()}")
        finally:
            ledger.close()
    lines.append(_health(config.serve.listen))
    return lines


def _health(listen: str) -> str:
    """The daemon's own verdict from /healthz (ok, degraded, failing) with its reasons."""
    if not listen:
        return "daemon: no serve.listen address configured"
    url = f"http://{listen}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=3) as response:
            body = json.loads(response.read())
    except urllib.error.HTTPError as exc:
        body = json.loads(exc.read() or b"{}")
    except (urllib.error.URLError, OSError):
        return f"daemon: not reachable at {url}"
    verdict = body.get("status") or ("ok" if body.get("healthy") else "failing")
    problems = body.get("problems") or []
    state = verdict + (": " + "; ".join(problems) if problems else "")
    running = (body.get("running") or {}).get("progress")
    now = f"; now: {running}" if running else ""
    return f"daemon: {state}; running policy {body.get('policy')}{now}"
