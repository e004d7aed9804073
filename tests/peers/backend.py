"""A billing/provisioning peer over real HTTP on loopback, with a script of answers per mailbox.

It behaves like a correct idempotent backend: a request whose Idempotency-Key it has acted on
gets the same answer again and no second effect, and every answer echoes the key (the body it
was sent is in it). `effects` is what it really did; `connections` counts TCP connections
(HTTP/1.1 keep-alive: a client that reuses its connection opens one).
"""

from __future__ import annotations

import json
import threading
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ANSWERS = ("charged", "declined", "deleted")


class BackendPeer:
    def __init__(self, default: str = "charged", slow_seconds: float = 2.0) -> None:
        self.default = default
        self.slow_seconds = slow_seconds
        self.script: defaultdict[str, list[str]] = defaultdict(list)
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.effects: dict[str, dict[str, Any]] = {}
        self.connections = 0
        self.lock = threading.Lock()
        self.counted = threading.Condition(self.lock)
        self.release = threading.Event()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/charge"

    def __enter__(self) -> BackendPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()

    def wait_for(self, count: int, timeout: float) -> bool:
        """True once `count` requests have arrived; False after `timeout` seconds without."""
        with self.counted:
            return self.counted.wait_for(lambda: len(self.requests) >= count, timeout)

    def answer(self, key: str, body: dict[str, Any]) -> tuple[int, dict[str, Any] | None, float]:
        """(status, json, delay). Scripted behaviours: an answer, "500", or "slow" (acts, answers late)."""
        with self.lock:
            self.requests.append((key, body))
            self.counted.notify_all()
            if key in self.effects:
                return 200, self.effects[key], 0.0
            script = self.script[body["mailbox_id"]]
            behaviour = script.pop(0) if script else self.default
            if behaviour == "500":
                return 500, None, 0.0
            status = self.default if behaviour == "slow" else behaviour
            self.effects[key] = {
                "status": status,
                "reference": f"ref-{len(self.effects) + 1}",
                **body,
            }
            return 200, self.effects[key], self.slow_seconds if behaviour == "slow" else 0.0

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def setup(self) -> None:
                super().setup()
                with peer.lock:
                    peer.connections += 1

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                status, payload, delay = peer.answer(self.headers["Idempotency-Key"], body)
                if delay:
                    peer.release.wait(delay)
                data = json.dumps(payload or {"error": "boom"}).encode()
                try:
                    self.send_response(status)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(data)))
                    self.end_headers()
                    self.wfile.write(data)
                except OSError:
                    pass  # the client gave up waiting: exactly the case being tested

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler
