"""The fault suite: real kills at random moments, outages, and a wrong export.

Select it with `pytest -m fault`. Each test prints its figures (tries, lost, doubled); the
assertions are the promises: nothing charged twice, nothing lost, repeats within the bound.
"""

from __future__ import annotations

import random
from collections import Counter
from datetime import date, timedelta
from pathlib import Path

import pytest

from peers.backend import BackendPeer
from peers.smtp import PASSWORD, SmtpPeer
from peers.twilio import ACCOUNT, TOKEN, TwilioPeer, twilio_settings

from support import Project, csv_row

pytestmark = pytest.mark.fault

DAY = date(2026, 12, 1)


def a_busy_day(count: int) -> list[str]:
    """Reminders, auto-renewals (some shared accounts short of money), expiries and deletions."""
    rows = []
    for n in range(count):
        kind = n % 5
        phone = f"+1415555{200 + n % 100:04d}"
        if kind == 0:
            rows.append(
                csv_row(
                    f"mb-{n:04d}",
                    DAY + timedelta(days=3),
                    account_id=f"acct-{n // 10}",
                    auto_renew=True,
                    balance="250.00",
                    phone=phone,
                )
            )
        elif kind == 1:
            rows.append(csv_row(f"mb-{n:04d}", DAY + timedelta(days=30), phone=phone))
        elif kind == 2:
            rows.append(csv_row(f"mb-{n:04d}", DAY, phone=phone))
        elif kind == 3:
            rows.append(
                csv_row(f"mb-{n:04d}", DAY - timedelta(days=30), phone=phone)
            )  # deleted today
        else:
            rows.append(csv_row(f"mb-{n:04d}", DAY + timedelta(days=200), phone=phone))
    return rows


def test_killed_at_random_moments_nothing_is_lost_or_charged_twice(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENEWD_TEST_SMTP_PASSWORD", PASSWORD)
    monkeypatch.setenv("RENEWD_TEST_TWILIO_TOKEN", TOKEN)
    rng = random.Random(2026)
    with (
        SmtpPeer(tmp_path) as smtp,
        TwilioPeer() as twilio,
        BackendPeer() as billing,
        BackendPeer("deleted") as provisioning,
    ):
        project = Project(
            tmp_path,
            billing=f"{{backend: http, url: '{billing.url}', timeout: 5, attempts: 2, backoff: 0}}",
            extra=f"provisioning: {{backend: http, url: '{provisioning.url}', timeout: 5, attempts: 2, backoff: 0}}\n"
            "guards: {max_deletion_share: 1, min_deletions: 1000}\n",
            email=smtp.settings(connections=4, timeout=5),
            sms=twilio_settings(twilio.url, concurrency=4),
        )
        project.snapshot(*a_busy_day(1500))
        assert project.run(DAY - timedelta(days=1)).returncode == 0  # the day before: sightings
        project.export_again()  # and today's export
        smtp.handler.messages.clear()
        twilio.requests.clear()
        sent_before = Counter(str(m["To"]) for m in smtp.handler.messages)
        kills = 0
        for attempt in range(60):
            # Charges come first in a run, then deletions, then messages: aim at each while it lasts.
            point = (
                ("after-charge", "after-charge", "after-delete", "after-delete")[attempt]
                if attempt < 4
                else rng.choice(("after-plan", "after-send", "after-send"))
            )
            nth = {"after-plan": 1, "after-send": rng.randint(1, 30)}.get(point, rng.randint(1, 40))
            result = project.run(DAY, env={"RENEWD_CRASH_AT": f"{point}#{nth}"})
            assert result.returncode in (-9, 0), result.stdout + result.stderr
            kills += result.returncode == -9
            if kills >= 25:
                break
        assert project.run(DAY).returncode == 0
    emails = Counter(str(m["To"]) for m in smtp.handler.messages) - sent_before
    sms = Counter(
        r["fields"]["To"] + "/" + r["fields"]["Body"][-40:]
        for r in twilio.requests
        if r["auth"] == f"{ACCOUNT}:{TOKEN}"
    )
    charges = Counter(body["mailbox_id"] for body in billing.effects.values())
    deletions = Counter(body["mailbox_id"] for body in provisioning.effects.values())
    orders = project.orders()
    expected_emails = {f"mb-{n:04d}@example.cn" for n in range(1500) if n % 5 != 4}
    lost = expected_emails - set(emails)
    doubled = sum(count - 1 for count in emails.values()) + sum(count - 1 for count in sms.values())
    print(
        f"\nkills: {kills}; emails {sum(emails.values())} for {len(emails)} mailboxes; sms {sum(sms.values())}; "
        f"charges {sum(charges.values())} for {len(charges)} mailboxes; deletions {len(deletions)}; "
        f"lost {len(lost)}; repeated {doubled}"
    )
    assert kills >= 20
    assert all(count == 1 for count in charges.values()), "a mailbox was charged twice"
    assert len(deletions) == 300 and all(count == 1 for count in deletions.values())
    assert len(charges) == sum(1 for o in orders if o["state"] == "charged")
    assert not lost, f"messages lost: {sorted(lost)[:5]}"
    # per kill, at most two per slot: 4 SMTP connections and 4 Twilio slots
    assert doubled <= kills * (4 + 4) * 2


def test_smtp_down_for_a_whole_run_then_up_delivers_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENEWD_TEST_SMTP_PASSWORD", PASSWORD)
    down = Project(
        tmp_path,
        email="{backend: smtp, host: 127.0.0.1, port: 9, security: none, from: r@example.com, attempts: 2, backoff: 0, timeout: 1}",
    )
    down.snapshot(*(csv_row(f"mb-{n}", DAY + timedelta(days=30), phone="") for n in range(30)))
    assert down.run(DAY).returncode == 0
    with SmtpPeer(tmp_path) as smtp:
        up = Project(tmp_path, email=smtp.settings())
        assert up.run(DAY).returncode == 0
    assert sorted(str(m["To"]) for m in smtp.handler.messages) == sorted(
        f"mb-{n}@example.cn" for n in range(30)
    )


def test_twilio_throttling_half_the_requests_delivers_everything_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("RENEWD_TEST_TWILIO_TOKEN", TOKEN)
    with TwilioPeer(throttle_half=True) as twilio:
        project = Project(tmp_path, sms=twilio_settings(twilio.url, concurrency=2))
        project.snapshot(
            *(
                csv_row(f"mb-{n}", DAY + timedelta(days=30), phone=f"+1415555{200 + n:04d}")
                for n in range(8)
            )
        )
        assert project.run(DAY).returncode == 0
    accepted = [r for r in twilio.requests if not r["throttled"]]
    throttled = len(twilio.requests) - len(accepted)
    print(f"\nrequests {len(twilio.requests)}, throttled {throttled}")
    assert sorted(r["fields"]["To"] for r in accepted) == sorted(
        f"+1415555{200 + n:04d}" for n in range(8)
    )
    assert throttled >= 4


def test_a_wrong_export_with_everything_expired_deletes_and_charges_nothing(tmp_path: Path) -> None:
    project = Project(tmp_path, extra="serve: {alert_to: [ops@example.com]}\n")
    healthy = [
        csv_row(f"mb-{n:03d}", DAY + timedelta(days=n % 365 + 1), auto_renew=True, balance="500.00")
        for n in range(200)
    ]
    project.snapshot(*healthy)
    assert project.run(DAY - timedelta(days=10)).returncode == 0
    wrong = [
        csv_row(f"mb-{n:03d}", DAY - timedelta(days=40 - n % 12), auto_renew=True, balance="500.00")
        for n in range(200)
    ]
    project.snapshot(*wrong)  # every mailbox expired for weeks: D+29 .. D+40
    result = project.run(DAY)
    assert result.returncode == 3
    assert "appear expired: a wrong export?" in result.stdout
    history = "".join(project.cli("history", f"mb-{n:03d}").stdout for n in range(0, 200, 12))
    assert "delete        done" not in history
    assert not [o for o in project.orders() if o["state"] == "charged" and o["cycle"] < DAY]
    alerts = [m for m in project.emails() if str(m["To"]) == "ops@example.com"]
    assert len(alerts) == 1 and "guard-held" in str(alerts[0]["Subject"])
