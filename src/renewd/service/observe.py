"""What the daemon shows of itself: Prometheus metrics and /healthz on a local address."""

from __future__ import annotations

import asyncio
import json
import logging
import os
import threading
from collections.abc import Callable, Iterable, Iterator
from http import HTTPStatus
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

from renewd.config.load import LISTEN_HINT, split_listen
from renewd.core.errors import RenewdError
from renewd.service.health import CAUSES, STATUSES

log = logging.getLogger("renewd")

BACKLOG = 256  # connections the kernel queues while the loop is busy
MAX_CLIENTS = 512  # open at once; idle ones time out, so new ones get in again
MAX_REQUEST = 16_384  # bytes of request line and headers
REQUEST_TIMEOUT = 10.0  # seconds for a request to arrive whole, and for its answer to be taken


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


class ListenError(RenewdError):
    """serve.listen cannot be listened on."""


class Observer:
    """/metrics and /healthz (judged by `health()`), served by one thread running an event loop.

    http.server's thread per connection let 300 idle clients hold 300 threads and a backlog of
    5 drop half of 200 concurrent ones. Here a client costs a socket, not a thread; its request
    must arrive whole within `request_timeout` and its answer be taken within as long; at most
    MAX_CLIENTS are open at once (more are closed at once, until the idle ones time out); a
    client that goes away is a debug line.
    """

    def __init__(
        self,
        address: str,
        metrics: Metrics,
        health: Callable[[], tuple[bool, dict[str, Any]]],
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        host, port = split_listen(address)
        self.metrics = metrics
        self.health = health
        self.request_timeout = request_timeout
        self.open = 0
        self.loop = asyncio.new_event_loop()
        try:
            self.server = self.loop.run_until_complete(
                asyncio.start_server(
                    self._client, host, port, backlog=BACKLOG, limit=MAX_REQUEST, reuse_address=True
                )
            )
        except OSError as exc:
            self.loop.close()
            reason = os.strerror(exc.errno) if exc.errno else str(exc)
            raise ListenError(
                f"serve.listen {address}: cannot listen there: {reason} {LISTEN_HINT}"
            ) from None
        self.thread = threading.Thread(
            target=self.loop.run_forever, name="renewd-observe", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self.server.sockets[0].getsockname()[:2]
        return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        async def close() -> None:
            self.server.close()
            await self.server.wait_closed()

        if self.thread.is_alive():
            asyncio.run_coroutine_threadsafe(close(), self.loop).result(timeout=10)
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(timeout=10)
        else:
            self.loop.run_until_complete(close())
        self.loop.close()

    async def _client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            if self.open <= MAX_CLIENTS:
                await self._serve(reader, writer)
            else:
                log.debug("metrics: %d clients already open; closing a new one", MAX_CLIENTS)
        except (ConnectionError, TimeoutError, asyncio.IncompleteReadError) as exc:
            log.debug("metrics: client went away: %s", type(exc).__name__)
        except asyncio.LimitOverrunError:
            log.debug("metrics: request head over %d bytes", MAX_REQUEST)
        finally:
            self.open -= 1
            writer.close()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), self.request_timeout)
        method, _, rest = head.partition(b"\r\n")[0].decode("latin-1").partition(" ")
        target = rest.partition(" ")[0].partition("?")[0]
        status, content_type, body = self._answer(method, target)
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
            "Connection: close",
        ]
        writer.write("\r\n".join(lines).encode() + b"\r\n\r\n")
        if method != "HEAD":
            writer.write(body)
        await asyncio.wait_for(writer.drain(), self.request_timeout)

    def _answer(self, method: str, target: str) -> tuple[int, str, bytes]:
        if method not in ("GET", "HEAD"):
            return 405, "text/plain", b"only GET\n"
        if target == "/metrics":
            return 200, CONTENT_TYPE_LATEST, generate_latest(self.metrics.registry)
        if target == "/healthz":
            healthy, detail = self.health()
            body = json.dumps({"healthy": healthy, **detail}, default=str).encode()
            return (200 if healthy else 503), "application/json", body
        return 404, "text/plain", b"not found\n"
