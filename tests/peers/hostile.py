"""A billing peer that misbehaves on purpose, over real HTTP on loopback.

Written on a bare socket server, since the misbehaviour is in the bytes: `redirect` answers a
3xx to `target`; `trickle` sends its answer one byte every `trickle_seconds`; `huge` answers
200 with a body of `huge_bytes` (declared or chunked), generated as it is sent; `lie` answers
`charged` for another charge (or for none); `busy` answers 429 with a Retry-After first, then
like a correct peer. A correct answer echoes the Idempotency-Key. `requests` records each
request's key and arrival (monotonic), `connections` how many TCP connections were opened.
"""

from __future__ import annotations

import json
import socketserver
import threading
import time
from typing import Any

CHUNK = 1 << 20


class HostilePeer:
    def __init__(self, mode: str, **options: Any) -> None:
        self.mode = mode
        self.target = str(options.get("target", "http://127.0.0.1:9/elsewhere"))
        self.status = int(options.get("status", 302))
        self.trickle_seconds = float(options.get("trickle_seconds", 2.0))
        self.huge_bytes = int(options.get("huge_bytes", 300 * 1024 * 1024))
        self.declared = bool(options.get("declared", True))
        self.lie_key: str | None = options.get("lie_key")
        self.retry_after = str(options.get("retry_after", "2"))
        self.requests: list[tuple[str, float]] = []
        self.connections = 0
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.server = socketserver.ThreadingTCPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/charge"

    def __enter__(self) -> HostilePeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.server.shutdown()
        self.server.server_close()

    def answer(self, key: str, body: dict[str, Any]) -> list[bytes]:
        """The bytes of the answer, as a list of pieces to send (a generator for `huge`)."""
        with self.lock:
            self.requests.append((key, time.monotonic()))
            first = len(self.requests) == 1
        if self.mode == "redirect":
            return [_head(self.status, {"Location": self.target, "Content-Length": "0"})]
        if self.mode == "busy" and first:
            headers = {"Retry-After": self.retry_after, "Content-Length": "0"}
            return [_head(429, headers)]
        echoed = self.lie_key if self.mode == "lie" else key
        answer = {"status": "charged", "reference": f"ref-{len(self.requests)}", **body}
        if echoed is None:
            answer.pop("idempotency_key", None)
        else:
            answer["idempotency_key"] = echoed
        data = json.dumps(answer).encode()
        return [
            _head(200, {"Content-Type": "application/json", "Content-Length": str(len(data))})
            + data
        ]

    def _huge(self) -> Any:
        if self.declared:
            yield _head(
                200, {"Content-Type": "application/json", "Content-Length": str(self.huge_bytes)}
            )
        else:
            yield _head(200, {"Content-Type": "application/json", "Transfer-Encoding": "chunked"})
        sent = 0
        while sent < self.huge_bytes and not self.stop.is_set():
            piece = b" " * min(CHUNK, self.huge_bytes - sent)
            sent += len(piece)
            yield piece if self.declared else b"%x\r\n%s\r\n" % (len(piece), piece)
        if not self.declared:
            yield b"0\r\n\r\n"

    def _handler(self) -> type[socketserver.StreamRequestHandler]:
        peer = self

        class Handler(socketserver.StreamRequestHandler):
            def handle(self) -> None:
                with peer.lock:
                    peer.connections += 1
                while not peer.stop.is_set():
                    request = _read_request(self.rfile)
                    if request is None:
                        return
                    key, body = request
                    try:
                        if peer.mode == "huge":
                            with peer.lock:
                                peer.requests.append((key, time.monotonic()))
                            for piece in peer._huge():
                                self.wfile.write(piece)
                            return
                        data = b"".join(peer.answer(key, body))
                        if peer.mode == "trickle":
                            for byte in data:
                                if peer.stop.wait(peer.trickle_seconds):
                                    return
                                self.wfile.write(bytes([byte]))
                                self.wfile.flush()
                            return
                        self.wfile.write(data)
                        self.wfile.flush()
                    except OSError:
                        return  # the client gave up: the case being tested

        return Handler


def _head(status: int, headers: dict[str, str]) -> bytes:
    lines = [f"HTTP/1.1 {status} X"] + [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def _read_request(rfile: Any) -> tuple[str, dict[str, Any]] | None:
    """One request's Idempotency-Key and JSON body; None when the client closed."""
    line = rfile.readline()
    if not line:
        return None
    headers: dict[str, str] = {}
    while True:
        header = rfile.readline()
        if header in (b"\r\n", b"\n", b""):
            break
        name, _, value = header.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = rfile.read(int(headers.get("content-length", "0")))
    return headers.get("idempotency-key", ""), json.loads(body or b"{}")
