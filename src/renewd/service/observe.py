"""What the daemon shows of itself: Prometheus metrics and /healthz on a local address."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.exposition import CONTENT_TYPE_LATEST


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        self.runs = Counter("renewd_runs", "Runs by outcome", ["status"], registry=self.registry)
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


class Observer:
    """A small HTTP server in a daemon thread: /metrics, and /healthz judged by `health()`."""

    def __init__(
        self, address: str, metrics: Metrics, health: Callable[[], tuple[bool, dict[str, Any]]]
    ) -> None:
        host, _, port = address.rpartition(":")
        self.metrics = metrics
        self.health = health
        self.server = ThreadingHTTPServer((host or "127.0.0.1", int(port)), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(
            target=self.server.serve_forever, name="renewd-observe", daemon=True
        )

    @property
    def address(self) -> str:
        host, port = self.server.server_address[:2]
        return f"{host.decode() if isinstance(host, bytes) else host}:{port}"

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        observer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path == "/metrics":
                    self._reply(
                        200, CONTENT_TYPE_LATEST, generate_latest(observer.metrics.registry)
                    )
                elif self.path == "/healthz":
                    healthy, detail = observer.health()
                    body = json.dumps({"healthy": healthy, **detail}, default=str).encode()
                    self._reply(200 if healthy else 503, "application/json", body)
                else:
                    self._reply(404, "text/plain", b"not found\n")

            def _reply(self, status: int, content_type: str, body: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
