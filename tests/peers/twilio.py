"""A Twilio-speaking HTTP peer on loopback that injects the errors Prism cannot.

The recipient number picks the behaviour (see NUMBERS); it answers in Twilio's JSON error format
and records every request (form fields, auth, time).
"""

from __future__ import annotations

import base64
import json
import threading
import time
import urllib.parse
import uuid
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

ACCOUNT = "AC" + "0" * 32
TOKEN = "twilio-test-token"
OK = "+14155550100"
NUMBERS = {
    "+14155550101": "429-twice",  # 429 with Retry-After: 1, twice, then accepted
    "+14155550102": "21211",  # invalid 'To' number: final
    "+14155550103": "500-once",  # a server error, then accepted
    "+14155550104": "500-always",
    "+14155550105": "401",  # bad credentials: stops the channel
}


class TwilioPeer:
    def __init__(self, throttle_half: bool = False) -> None:
        self.throttle_half = throttle_half  # answer every second request 429, whatever its number
        self.requests: list[dict[str, Any]] = []
        self.seen: Counter[str] = Counter()
        self.lock = threading.Lock()
        self.server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> TwilioPeer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(
        self, fields: dict[str, str], auth: str
    ) -> tuple[int, dict[str, Any], dict[str, str]]:
        with self.lock:
            to = fields.get("To", "")
            self.seen[to] += 1
            self.requests.append({"fields": fields, "auth": auth, "at": time.monotonic()})
            behaviour, count = NUMBERS.get(to, "ok"), self.seen[to]
            throttled = self.throttle_half and len(self.requests) % 2 == 1
            self.requests[-1]["throttled"] = throttled
        if throttled:
            return 429, _error(20429, "Too Many Requests", 429), {"Retry-After": "1"}
        if auth != f"{ACCOUNT}:{TOKEN}" or behaviour == "401":
            return 401, _error(20003, "Authenticate", 401), {}
        if behaviour == "429-twice" and count <= 2:
            return 429, _error(20429, "Too Many Requests", 429), {"Retry-After": "1"}
        if behaviour == "21211":
            return 400, _error(21211, f"The 'To' number {to} is not a valid phone number.", 400), {}
        if behaviour == "500-always" or (behaviour == "500-once" and count == 1):
            return 500, _error(20500, "Internal Server Error", 500), {}
        sid = "SM" + uuid.uuid4().hex
        return (
            201,
            {
                "sid": sid,
                "status": "queued",
                "to": to,
                "body": fields.get("Body", ""),
                "account_sid": ACCOUNT,
            },
            {},
        )

    def _handler(self) -> type[BaseHTTPRequestHandler]:
        peer = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0))).decode()
                fields = dict(urllib.parse.parse_qsl(raw))
                header = self.headers.get("Authorization", "")
                auth = base64.b64decode(header[6:]).decode() if header.startswith("Basic ") else ""
                status, body, headers = peer.answer(fields, auth)
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for name, value in headers.items():
                    self.send_header(name, value)
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                return None

        return Handler


def _error(code: int, message: str, status: int) -> dict[str, Any]:
    return {
        "code": code,
        "message": message,
        "more_info": f"https://www.twilio.com/docs/errors/{code}",
        "status": status,
    }


def twilio_settings(url: str, **extra: object) -> str:
    """A flow-style YAML `senders.sms` entry that talks to a peer at `url`."""
    values = {
        "backend": "twilio",
        "account_sid": ACCOUNT,
        "auth_token_env": "RENEWD_TEST_TWILIO_TOKEN",
        "from": "+14155550000",
        "base_url": url,
        "rate": 0,
        "backoff": 0,
        "window": "00:00-24:00",
        "status_callback": "https://renewd.example.com/twilio/status",
        **extra,
    }
    return (
        "{"
        + ", ".join(f'{k}: "{v}"' if isinstance(v, str) else f"{k}: {v}" for k, v in values.items())
        + "}"
    )
