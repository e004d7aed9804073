"""The test clock: one mailbox of each kind followed across 400 days, whole timelines asserted."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pytest

from renewd.config.load import load_config
from renewd.core.dates import add_months
from renewd.core.model import Kind
from renewd.plan.simulate import Simulation
from renewd.policy.loader import load_policy, policy_files

from support import ROOT

START, END = date(2026, 12, 1), date(2028, 1, 4)  # 400 days
HEADER = (
    "mailbox_id,account_id,edition,expires_on,auto_renew,balance,renewal_fee,currency,renewal_months,"
    "email,phone,locale,domain,domain_via_provider,domain_expires_on\n"
)
ROWS = """\
auto-rich,acct-rich,standard,2027-01-15,true,1000.00,120.00,CNY,12,a@example.cn,+8613800000001,zh-CN,,,
auto-poor,acct-poor,standard,2027-01-15,true,100.00,120.00,CNY,12,b@example.cn,+8613800000002,zh-CN,,,
manual,acct-manual,basic,2027-01-15,false,500.00,50.00,USD,12,c@example.com,+14155550100,en,,,
free,acct-free,free,2027-01-15,true,500.00,0.00,USD,12,d@example.com,,en,,,
domain,acct-domain,standard,2028-06-01,false,0.00,120.00,CNY,12,e@example.cn,,zh-CN,example.cn,true,2027-03-01
monthly,acct-monthly,basic,2027-01-10,true,25.00,10.00,USD,1,f@example.com,,en,,,
shared-1,acct-shared,standard,2027-01-15,true,150.00,120.00,CNY,12,g@example.cn,,zh-CN,,,
shared-2,acct-shared,standard,2027-01-15,true,150.00,120.00,CNY,12,h@example.cn,,zh-CN,,,
"""


def timeline(tmp_path: Path, mailbox_id: str) -> list[tuple[str, str, str]]:
    """(date, rule, action) for every email or non-notify action of one mailbox, in order."""
    snapshot = tmp_path / "snapshot.csv"
    snapshot.write_text(HEADER + ROWS, encoding="utf-8")
    config = load_config(ROOT / "config.example.yaml")
    policy = load_policy(policy_files(config.rules))
    simulation = Simulation(config, policy, snapshot, (mailbox_id,))
    return [
        (d.date.isoformat(), d.rule, d.kind.value if d.kind is not Kind.NOTIFY else d.channel)
        for plan in simulation.run(START, END)
        for d in plan.actions
        if d.channel != "sms"
    ]


REMINDERS_2027 = [
    ("2026-12-16", "renewal-reminder", "email"),
    ("2026-12-31", "renewal-reminder", "email"),
]

TIMELINES = {
    "auto-rich": [
        *REMINDERS_2027,
        ("2027-01-08", "renewal-reminder", "email"),
        ("2027-01-12", "auto-renew", "deduct"),
        ("2027-01-12", "auto-renew", "email"),
        # renewed until 2028-01-15: the next cycle's reminders start afresh
        ("2027-12-16", "renewal-reminder", "email"),
        ("2027-12-31", "renewal-reminder", "email"),
    ],
    "auto-poor": [
        *REMINDERS_2027,
        ("2027-01-08", "low-balance-warning", "email"),
        ("2027-01-12", "auto-renew-failed", "email"),
        ("2027-01-14", "renewal-reminder", "email"),
        ("2027-01-15", "expired", "email"),
        ("2027-01-22", "grace-reminder", "email"),
        ("2027-01-30", "grace-reminder", "email"),
        ("2027-02-09", "grace-reminder", "email"),
        ("2027-02-13", "grace-reminder", "email"),
        ("2027-02-14", "deletion", "email"),
        ("2027-02-14", "deletion", "delete"),
    ],
    "manual": [
        *REMINDERS_2027,
        ("2027-01-08", "renewal-reminder", "email"),
        ("2027-01-12", "renewal-reminder", "email"),
        ("2027-01-14", "renewal-reminder", "email"),
        ("2027-01-15", "expired", "email"),
        ("2027-01-22", "grace-reminder", "email"),
        ("2027-01-30", "grace-reminder", "email"),
        ("2027-02-09", "grace-reminder", "email"),
        ("2027-02-13", "grace-reminder", "email"),
        ("2027-02-14", "deletion", "email"),
        ("2027-02-14", "deletion", "delete"),
    ],
    "free": [],
    "domain": [
        ("2027-01-30", "domain-expiry", "email"),
        ("2027-02-22", "domain-expiry", "email"),
        ("2027-03-01", "domain-expiry", "email"),
        # the mailbox itself expires 2028-06-01: its first reminder is after the window
    ],
}


@pytest.mark.parametrize("mailbox_id", list(TIMELINES))
def test_timeline(tmp_path: Path, mailbox_id: str) -> None:
    assert timeline(tmp_path, mailbox_id) == TIMELINES[mailbox_id]


def test_monthly_plan_renews_until_the_balance_runs_out(tmp_path: Path) -> None:
    events = [
        (day, rule) for day, rule, action in timeline(tmp_path, "monthly") if action == "deduct"
    ]
    assert events == [("2027-01-07", "auto-renew"), ("2027-02-07", "auto-renew")]
    failed = [day for day, rule, _ in timeline(tmp_path, "monthly") if rule == "auto-renew-failed"]
    assert failed == ["2027-03-07"]  # 25.00 paid two months of 10.00; 5.00 is left


def test_shared_balance_pays_one_of_two(tmp_path: Path) -> None:
    first = {rule for _, rule, _ in timeline(tmp_path, "shared-1")}
    second = {rule for _, rule, _ in timeline(tmp_path, "shared-2")}
    assert "auto-renew" in first and "deletion" not in first
    assert "auto-renew-failed" in second and "deletion" in second


@pytest.mark.parametrize(
    ("start", "months", "expected"),
    [
        (date(2027, 1, 15), 12, date(2028, 1, 15)),
        (date(2027, 1, 31), 1, date(2027, 2, 28)),
        (date(2028, 2, 29), 12, date(2029, 2, 28)),
        (date(2027, 11, 30), 3, date(2028, 2, 29)),
    ],
)
def test_add_months_clamps_to_the_month_end(start: date, months: int, expected: date) -> None:
    assert add_months(start, months) == expected
