"""What the daemon shows of itself: Prometheus metrics and /healthz on a local address."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    GCCollector,
    Histogram,
    PlatformCollector,
    ProcessCollector,
    generate_latest,
)
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_LATEST
from prometheus_client.registry import Collector

from renewd.service.health import CAUSES, STATUSES
from renewd.service.listener import REQUEST_TIMEOUT, Answer, Body, Listener, Request


class Metrics:
    """The daemon's registry: its own counters and gauges, the verdict (`judge`), and the
    process's CPU, memory, file descriptors, garbage collection and Python version."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        ProcessCollector(registry=self.registry)
        PlatformCollector(registry=self.registry)
        GCCollector(registry=self.registry)
        self.runs = Counter("renewd_runs", "Runs by outcome", ["status"], registry=self.registry)
        for status in ("done", "held", "failed"):  # every series there from the start, at 0
            self.runs.labels(status=status)
        self.duration = Histogram(
            "renewd_run_duration_seconds",
            "How long a run took",
            registry=self.registry,
            buckets=(1, 5, 15, 60, 300, 900, 3600, 14400),
        )
        self.actions = Counter(
            "renewd_actions",
            "Decided actions by rule and kind",
            ["rule", "kind"],
            registry=self.registry,
        )
        self.sends = Counter(
            "renewd_sends",
            "Messages by channel and outcome",
            ["channel", "outcome"],
            registry=self.registry,
        )
        self.outbox = Gauge("renewd_outbox_depth", "Open outbox rows", registry=self.registry)
        self.held = Gauge(
            "renewd_held_actions",
            "Deletions and deductions held by a guard",
            registry=self.registry,
        )
        self.last_success = Gauge(
            "renewd_last_success_timestamp_seconds",
            "When the last run finished without failing",
            registry=self.registry,
        )
        self.reload_failures = Counter(
            "renewd_policy_reload_failures", "Policy reloads refused", registry=self.registry
        )
        self.reload_ok = Gauge(
            "renewd_policy_reload_ok", "1 when the last reload succeeded", registry=self.registry
        )
        self.reload_ok.set(1)

    def channels(self, names: Iterable[str]) -> None:
        """Start every send series of these channels at 0 (a rate over a series that appears
        only with its first failure misses that failure)."""
        for channel in names:
            for outcome in OUTCOMES:
                self.sends.labels(channel=channel, outcome=outcome)

    def judge(self, findings: Callable[[], tuple[str, list[str]]]) -> None:
        """Export the verdict /healthz gives, worked out at each scrape: `findings` returns the
        status and the causes of the problems (`health.CAUSES`)."""
        self.registry.register(_Verdict(findings))


OUTCOMES = ("sent", "retry", "failed", "stop")


class _Verdict(Collector):
    def __init__(self, findings: Callable[[], tuple[str, list[str]]]) -> None:
        self.findings = findings

    def collect(self) -> Iterator[Metric]:
        status, causes = self.findings()
        verdict = GaugeMetricFamily(
            "renewd_health",
            "The daemon's verdict, as /healthz gives it: 1 for the current status",
            labels=["status"],
        )
        for name in STATUSES:
            verdict.add_metric([name], float(name == status))
        yield verdict
        problem = GaugeMetricFamily(
            "renewd_problem",
            "1 while this cause makes the verdict degraded or failing (see /healthz)",
            labels=["cause"],
        )
        for cause in CAUSES:
            problem.add_metric([cause], float(cause in causes))
        yield problem


class Observer(Listener):
    """/metrics and /healthz (judged by `health()`), on the listener machinery of `listener.py`:
    local, for monitoring; nothing from outside (Twilio's callbacks have their own listener)."""

    name = "metrics"

    def __init__(
        self,
        address: str,
        metrics: Metrics,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(address, "serve.listen", request_timeout)
        self.metrics = metrics
        self.health = health

    async def respond(self, request: Request, body: Body) -> Answer:
        if request.method not in ("GET", "HEAD"):
            return Answer(405, b"only GET\n")
        if request.path == "/metrics":
            return Answer(200, generate_latest(self.metrics.registry), CONTENT_TYPE_LATEST)
        if request.path == "/healthz":
            healthy, detail = self.health()
            text = json.dumps({"healthy": healthy, **detail}, default=str).encode()
            return Answer(200 if healthy else 503, text, "application/json")
        return Answer(404, b"not found\n")
