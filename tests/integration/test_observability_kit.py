"""The observability kit in deploy/: Prometheus alert rules and a Grafana dashboard.

The rules pass `promtool check rules` and their own unit tests (`promtool test rules`); every
dashboard query is valid PromQL; every metric the rules and the dashboard name is on a running
`serve`'s /metrics (process metrics included); and the rules, fed what a real daemon with a held
run exports, raise exactly the alert its /healthz verdict gives. promtool comes with Debian's
`prometheus` package (`.ci/run` installs it); without it these tests are skipped locally, and
fail under RENEWD_REQUIRE_PEERS=1 (what CI sets).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import urllib.request
from collections.abc import Iterator
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from peers.ports import free_port

from support import ROOT, Project, csv_row, until

KIT = ROOT / "deploy"
RULES = KIT / "prometheus" / "renewd-alerts.yml"
RULE_TESTS = KIT / "prometheus" / "renewd-alerts.test.yml"
DASHBOARD = KIT / "grafana" / "renewd-dashboard.json"
DAY = date(2026, 12, 1)
# Names in PromQL that are not metrics: functions, keywords, aggregations.
NOT_METRICS = {
    "sum", "max", "min", "by", "and", "or", "unless", "offset", "time", "rate", "increase",
    "histogram_quantile", "min_over_time", "changes", "absent",
}  # fmt: skip


@pytest.fixture(scope="module")
def promtool() -> str:
    found = shutil.which("promtool")
    if found is None:
        message = "promtool is not installed (Debian: apt-get install prometheus)"
        if os.environ.get("RENEWD_REQUIRE_PEERS"):
            pytest.fail(message)
        pytest.skip(message)
    return found


def run_promtool(promtool: str, *args: str, cwd: Path) -> str:
    done = subprocess.run(
        [promtool, *args], cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def rule_queries() -> list[str]:
    groups = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"]
    return [rule["expr"] for group in groups for rule in group["rules"]]


def dashboard_queries() -> list[str]:
    panels = json.loads(DASHBOARD.read_text(encoding="utf-8"))["panels"]
    return [target["expr"] for panel in panels for target in panel.get("targets", [])]


def metric_names(query: str) -> set[str]:
    """The metric names a PromQL query reads (label values and matchers removed first)."""
    bare = re.sub(r'"[^"]*"', '""', query)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    bare = re.sub(r"\[[^\]]*\]", "", bare)
    bare = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", "", bare)
    bare = re.sub(r"\b\d+(\.\d+)?[smhdwy]?\b", "", bare)  # numbers and durations
    names = set(re.findall(r"[a-zA-Z_:][a-zA-Z0-9_:]*", bare))
    return names - NOT_METRICS


def test_the_alert_rules_pass_promtool_and_their_unit_tests(promtool: str) -> None:
    assert "SUCCESS: 9 rules found" in run_promtool(
        promtool, "check", "rules", RULES.name, cwd=RULES.parent
    )
    assert "SUCCESS" in run_promtool(promtool, "test", "rules", RULE_TESTS.name, cwd=RULES.parent)


def test_every_dashboard_query_is_valid_promql(promtool: str, tmp_path: Path) -> None:
    """promtool parses each one as a recording rule (Grafana's $instance made a regex first)."""
    queries = dashboard_queries()
    rules = [
        {"record": f"dashboard:query_{n}", "expr": q.replace("$instance", ".*")}
        for n, q in enumerate(queries)
    ]
    path = tmp_path / "dashboard-queries.yml"
    path.write_text(yaml.safe_dump({"groups": [{"name": "dashboard", "rules": rules}]}))
    assert f"SUCCESS: {len(queries)} rules found" in run_promtool(
        promtool, "check", "rules", path.name, cwd=tmp_path
    )
    board = json.loads(DASHBOARD.read_text(encoding="utf-8"))
    assert board["uid"] == "renewd" and len(queries) >= 15


def scrape(port: int, path: str) -> str:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as answer:
            return str(answer.read().decode())
    except OSError:
        return ""


@pytest.fixture
def held_daemon(tmp_path: Path) -> Iterator[tuple[str, dict[str, Any]]]:
    """A real `renewd serve` whose first run held a deletion (a mailbox first seen at its
    deletion day): its /metrics and /healthz once that run is done."""
    port = free_port()
    serve = f"serve: {{listen: '127.0.0.1:{port}', run_at: '02:00'}}\n"
    project = Project(tmp_path, extra=serve, snapshot="snapshots/mailboxes-{date}.csv")
    project.snapshot(csv_row("mb-old", DAY - timedelta(days=30)), day=DAY)
    renewd = Path(sys.executable).parent / "renewd"
    process = subprocess.Popen(
        [str(renewd), "serve", "--config", str(project.config)],
        env={**os.environ, "RENEWD_FAKE_NOW": "2026-12-01T10:00:00+08:00"},
        stderr=subprocess.DEVNULL,
    )
    try:
        until(lambda: '"status": "held"' in scrape(port, "/healthz"), "the first run held", 60)
        yield scrape(port, "/metrics"), json.loads(scrape(port, "/healthz"))
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=30)


def test_every_metric_the_kit_names_is_on_a_running_serve(
    held_daemon: tuple[str, dict[str, Any]],
) -> None:
    exposition, _ = held_daemon
    samples = {
        sample.name
        for family in text_string_to_metric_families(exposition)
        for sample in family.samples
    }
    named = set().union(*(metric_names(q) for q in rule_queries() + dashboard_queries()))
    named -= {"up"}  # Prometheus's own, per target
    assert {"renewd_problem", "renewd_health", "process_resident_memory_bytes"} <= named
    assert named <= samples, sorted(named - samples)
    for process_metric in ("process_cpu_seconds_total", "process_open_fds", "python_info"):
        assert process_metric in samples


def test_the_rules_raise_what_the_daemons_verdict_says(
    held_daemon: tuple[str, dict[str, Any]], promtool: str, tmp_path: Path
) -> None:
    """What the daemon exports, held for 20 minutes, evaluated by the shipped rules."""
    exposition, health = held_daemon
    assert health["status"] == "degraded" and len(health["problems"]) == 1
    target = {"job": "renewd", "instance": "renewd:9464"}
    series = [{"series": 'up{job="renewd", instance="renewd:9464"}', "values": "1x20"}]
    for family in text_string_to_metric_families(exposition):
        for sample in family.samples:
            if sample.name.startswith(("renewd_", "process_")):
                labels = {**sample.labels, **target}
                body = ", ".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
                series.append(
                    {"series": f"{sample.name}{{{body}}}", "values": f"{sample.value}x20"}
                )
    rules = yaml.safe_load(RULES.read_text(encoding="utf-8"))["groups"][0]["rules"]
    held = next(rule for rule in rules if rule["alert"] == "RenewdHeld")
    annotations = {
        key: text.replace("{{ $labels.instance }}", target["instance"])
        for key, text in held["annotations"].items()
    }
    expected = {"RenewdHeld": [{"exp_labels": {**target, "cause": "held", "severity": "warning"},
                                "exp_annotations": annotations}]}  # fmt: skip
    checks = [
        {
            "eval_time": "15m",
            "alertname": rule["alert"],
            "exp_alerts": expected.get(rule["alert"], []),
        }
        for rule in rules
    ]
    shutil.copy(RULES, tmp_path / RULES.name)
    test = {
        "rule_files": [RULES.name],
        "evaluation_interval": "1m",
        "tests": [{"interval": "1m", "input_series": series, "alert_rule_test": checks}],
    }
    (tmp_path / "live.test.yml").write_text(yaml.safe_dump(test, width=1000))
    run_promtool(promtool, "test", "rules", "live.test.yml", cwd=tmp_path)
