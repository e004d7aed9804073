"""`renewd diff`: two policies on the example snapshot (300 mailboxes over a year, five bad rows)
for 90 days, compared with what `simulate` does under each of them."""

from __future__ import annotations

import json
import shutil
import subprocess
from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner, Result

from renewd.cli.main import main
from renewd.config.load import load_config
from renewd.core.meter import Meter
from renewd.plan import day as day_module
from renewd.plan.diff import compare
from renewd.plan.simulate import Simulation
from renewd.policy.loader import load_policy, policy_files

from support import ROOT

START = date(2026, 11, 20)
END = START + timedelta(days=89)
SNAPSHOT = ROOT / "examples" / "snapshot.csv"
DELETION = (
    "  deletion:                  # 30 days after expiry: data is gone for good\n"
    "    days_after: 30\n"
    "    notify: [email]\n"
)
# one action as both sides see it: date, mailbox, rule, step, action, channel
Seen = tuple[str, str, str, int, str, str]


def rules(tmp_path: Path, name: str, change: tuple[str, str] | None = None) -> Path:
    """A copy of the shipped rules, with one piece of text replaced."""
    folder = tmp_path / name
    shutil.copytree(ROOT / "rules", folder)
    if change is not None:
        policy = folder / "lifecycle.yaml"
        text = policy.read_text(encoding="utf-8")
        assert change[0] in text
        policy.write_text(text.replace(*change), encoding="utf-8")
    return folder


def diff(tmp_path: Path, *args: str, cwd: Path | None = None) -> Result:
    config = tmp_path / "config.yaml"
    if not config.exists():
        config.write_text(f"rules: {ROOT / 'rules'}\nsnapshot: {SNAPSHOT}\n", encoding="utf-8")
    span = ["--from", START.isoformat(), "--to", END.isoformat()]
    return CliRunner().invoke(
        main, ["diff", *args, *span, "--config", str(config)], catch_exceptions=False
    )


def records(result: Result) -> dict[str, list[dict[str, Any]]]:
    found: defaultdict[str, list[dict[str, Any]]] = defaultdict(list)
    for line in result.stdout.splitlines():
        record = json.loads(line)
        found[record["record"]].append(record)
    return found


def simulated(folder: Path) -> dict[str, Counter[Seen]]:
    """Per mailbox, what `simulate` does over the range under the policy in `folder`."""
    config = load_config(ROOT / "config.example.yaml")
    policy = load_policy(policy_files(folder))
    seen: defaultdict[str, Counter[Seen]] = defaultdict(Counter)
    for plan in Simulation(config, policy, SNAPSHOT).run(START, END):
        for d in plan.actions:
            seen[d.mailbox_id][
                d.date.isoformat(), d.mailbox_id, d.rule, d.step, d.kind.value, d.channel
            ] += 1
    return seen


def only(found: dict[str, list[dict[str, Any]]], side: str) -> Counter[Seen]:
    return Counter(
        (a["date"], m["mailbox_id"], a["rule"], a["step"], a["action"], a.get("channel", ""))
        for m in found["mailbox"]
        for a in m[f"only_{side}"]
    )


def expected_changes(old: Path, new: Path) -> tuple[Counter[Seen], Counter[Seen]]:
    before, after = simulated(old), simulated(new)
    gone, came = Counter[Seen](), Counter[Seen]()
    for mailbox in set(before) | set(after):
        gone += before.get(mailbox, Counter()) - after.get(mailbox, Counter())
        came += after.get(mailbox, Counter()) - before.get(mailbox, Counter())
    return gone, came


def test_identical_policies_differ_in_nothing_and_exit_0(tmp_path: Path) -> None:
    same = rules(tmp_path, "same")
    table = diff(tmp_path, str(ROOT / "rules"), str(same))
    assert table.exit_code == 0, table.output
    assert "no difference: every mailbox gets exactly the same actions" in table.stdout
    assert "affected: 0" in table.stdout
    found = records(diff(tmp_path, str(ROOT / "rules"), str(same), "--format", "jsonl"))
    (summary,) = found["summary"]
    assert summary["different"] is False and summary["affected"] == 0
    assert summary["simulated"] > 100 and summary["rejected"] == 5
    assert found["mailbox"] == []
    assert found["action"] and all(r["difference"] == 0 for r in found["action"])
    assert all(r["charges_old"] == r["charges_new"] for r in found["money"])


def test_a_changed_reminder_day_shows_exactly_the_moved_messages(tmp_path: Path) -> None:
    new = rules(
        tmp_path, "new", ("days_before: [30, 15, 7, 3, 1]", "days_before: [30, 14, 7, 3, 1]")
    )
    result = diff(tmp_path, str(ROOT / "rules"), str(new), "--format", "jsonl")
    assert result.exit_code == 1
    found = records(result)
    gone, came = expected_changes(ROOT / "rules", new)
    assert only(found, "old") == gone and only(found, "new") == came
    assert {(rule, step) for _, _, rule, step, _, _ in gone} == {("renewal-reminder", -15)}
    assert {(rule, step) for _, _, rule, step, _, _ in came} == {("renewal-reminder", -14)}
    assert len(found["mailbox"]) == found["summary"][0]["affected"] > 20
    for mailbox in found["mailbox"]:  # the first day that differs, and what each does on it
        first = mailbox["first_day"]
        days = [a["date"] for a in mailbox["only_old"] + mailbox["only_new"]]
        assert first == min(days)
        assert all(a["date"] == first for a in mailbox["old"] + mailbox["new"])
    counts = {(r["rule"], r["action"]): r for r in found["action"]}
    email = counts["renewal-reminder", "notify:email"]
    emails = [sum(n for seen, n in side.items() if seen[5] == "email") for side in (gone, came)]
    assert email["difference"] == email["new"] - email["old"] == emails[1] - emails[0]
    table = diff(tmp_path, str(ROOT / "rules"), str(new))
    assert table.exit_code == 1
    assert "renewal-reminder D-15: email, sms  renewal-reminder D-14: email, sms" in table.stdout


def test_a_removed_deletion_rule_shows_the_deletions_gone_and_their_mailboxes(
    tmp_path: Path,
) -> None:
    new = rules(tmp_path, "new", (DELETION, ""))
    deleted = {
        mailbox
        for mailbox, seen in simulated(ROOT / "rules").items()
        if any(action == "delete" for *_, action, _ in seen)
    }
    assert len(deleted) > 20
    found = records(diff(tmp_path, str(ROOT / "rules"), str(new), "--format", "jsonl"))
    assert {m["mailbox_id"] for m in found["mailbox"] if m["deletion"] == "gone"} == deleted
    assert all(m["deletion"] == "gone" for m in found["mailbox"])
    assert {(a["rule"], a["action"]) for m in found["mailbox"] for a in m["only_old"]} == {
        ("deletion", "delete"),
        ("deletion", "notify"),
    }
    gone, came = expected_changes(ROOT / "rules", new)
    assert only(found, "old") == gone and only(found, "new") == came
    # kept, a mailbox lives on: what it gets then (a domain's reminders) comes after the day
    assert all(a["date"] > m["deletion_old"] for m in found["mailbox"] for a in m["only_new"])
    table = diff(tmp_path, str(ROOT / "rules"), str(new), "--sample", "1000")
    assert table.exit_code == 1
    assert f"DELETIONS: {len(deleted)} gone, 0 added, 0 moved" in table.stdout
    listed = {line.split()[1] for line in table.stdout.splitlines() if line.startswith("gone ")}
    assert listed == deleted


def test_money_per_month_is_what_each_policy_charges(tmp_path: Path) -> None:
    new = rules(tmp_path, "new", ("days_before: 3\n", "days_before: 5\n"))
    found = records(diff(tmp_path, str(ROOT / "rules"), str(new), "--format", "jsonl"))
    config = load_config(ROOT / "config.example.yaml")
    for side, folder in (("old", ROOT / "rules"), ("new", new)):
        charged: defaultdict[tuple[str, str], Decimal] = defaultdict(Decimal)
        policy = load_policy(policy_files(folder))
        for plan in Simulation(config, policy, SNAPSHOT).run(START, END):
            for d in plan.actions:
                if d.amount is not None:
                    charged[plan.day.strftime("%Y-%m"), d.currency] += d.amount
        shown = {
            (r["month"], r["currency"]): Decimal(r[f"revenue_{side}"])
            for r in found["money"]
            if Decimal(r[f"revenue_{side}"])
        }
        assert shown == {k: v for k, v in charged.items() if v}, side
    assert found["summary"][0]["different"] is True


def test_a_diff_moves_its_meter_to_the_last_mailbox(tmp_path: Path) -> None:
    """What a terminal's progress bar shows: the rows read, then the mailboxes simulated."""
    config = load_config(ROOT / "config.example.yaml")
    new = rules(tmp_path, "new", ("days_before: 3\n", "days_before: 5\n"))
    old_policy, new_policy = (load_policy(policy_files(f)) for f in (ROOT / "rules", new))
    meter = Meter()
    result = compare(config, old_policy, new_policy, SNAPSHOT, START, END, meter)
    result.close()
    assert meter.stage == "simulating"
    assert meter.totals() == (result.simulated, result.simulated)


def test_a_diff_in_parts_on_two_processes_is_the_diff_whole(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    new = rules(tmp_path, "new", ("days_after: [7, 15, 25, 29]", "days_after: [5, 15, 25, 29]"))
    whole = diff(tmp_path, str(ROOT / "rules"), str(new), "--format", "jsonl").stdout
    monkeypatch.setattr(day_module, "PART_SIZE", 16)
    parts = diff(tmp_path, str(ROOT / "rules"), str(new), "--format", "jsonl").stdout
    assert parts == whole and whole.count('"record": "mailbox"') > 20


def git(repo: Path, *args: str) -> None:
    subprocess.run(
        ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", *args],
        cwd=repo,
        check=True,
        capture_output=True,
    )


def test_against_a_git_revision_compares_the_rules_then_and_now(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    git(repo, "init", "-q")
    shutil.copytree(ROOT / "rules", repo / "policy")
    (repo / "config.yaml").write_text(f"rules: policy\nsnapshot: {SNAPSHOT}\n", encoding="utf-8")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "shipped rules")
    policy = repo / "policy" / "lifecycle.yaml"
    text = policy.read_text(encoding="utf-8")
    policy.write_text(text.replace("[30, 15, 7, 3, 1]", "[30, 14, 7, 3, 1]"), encoding="utf-8")
    uncommitted = diff(repo, "--against", "HEAD", "--format", "jsonl")
    assert uncommitted.exit_code == 1
    git(repo, "commit", "-qam", "remind a day later")
    result = diff(repo, "--against", "HEAD~1", "--format", "jsonl")
    assert result.exit_code == 1
    summary = records(result)["summary"][0]
    assert summary["old"] == f"HEAD~1:{repo / 'policy'}" and summary["new"] == str(repo / "policy")
    assert result.stdout.replace(summary["old"], "") == uncommitted.stdout.replace(
        records(uncommitted)["summary"][0]["old"], ""
    )
    assert diff(repo, "--against", "HEAD", "--format", "jsonl").exit_code == 0
    # a revision that is not there, a folder outside git: one line each, exit 2
    missing = diff(repo, "--against", "no-such-branch")
    assert missing.exit_code == 2 and missing.stderr.strip() == (
        f"--against no-such-branch: no such revision in {repo}"
    )
    loose = shutil.copytree(ROOT / "rules", tmp_path / "loose")
    outside = diff(tmp_path, str(loose), "--against", "HEAD")
    assert outside.exit_code == 2
    assert outside.stderr.strip() == f"{loose} is not in a git repository"


def test_a_broken_policy_is_one_line_per_problem_and_exit_2(tmp_path: Path) -> None:
    broken = rules(tmp_path, "broken", ("days_before: 3\n", "days_befor: 3\n"))
    result = diff(tmp_path, str(broken), str(ROOT / "rules"))
    assert result.exit_code == 2
    assert f"{broken / 'lifecycle.yaml'}:" in result.stderr and "days_befor" in result.stderr
    repo = tmp_path / "repo"
    shutil.copytree(broken, repo / "rules")
    git(repo, "init", "-q")
    git(repo, "add", ".")
    git(repo, "commit", "-qm", "a typo")
    shutil.rmtree(repo / "rules")
    shutil.copytree(ROOT / "rules", repo / "rules")
    result = diff(tmp_path, str(repo / "rules"), "--against", "HEAD")
    assert result.exit_code == 2
    assert result.stderr.startswith(f"HEAD:{repo / 'rules'}/lifecycle.yaml:"), result.stderr
