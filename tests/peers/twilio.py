"""A Twilio-speaking HTTP peer on loopback that injects the errors Prism cannot, and posts the
status callbacks Twilio would.

The recipient number picks the behaviour (see NUMBERS); it answers in Twilio's JSON error format
and records every request (form fields, auth, time). `post_status` sends a message's status to
the URL it was created with, signed as Twilio documents it (computed here, not with the client's
validator that renewd uses: a test of one against itself would prove nothing).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
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
        self.created: dict[str, dict[str, str]] = {}  # sid: the fields it was created with
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
        with self.lock:
            self.created[sid] = fields
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

    def sids(self, to: str) -> list[str]:
        """The messages created for a number, oldest first."""
        with self.lock:
            return [sid for sid, fields in self.created.items() if fields.get("To") == to]

    def callback(
        self, sid: str, status: str, error_code: str = "", **extra: str
    ) -> tuple[str, dict[str, str]]:
        """The URL a status callback for this message goes to, and its form fields."""
        created = self.created[sid]
        fields = {
            "AccountSid": ACCOUNT,
            "ApiVersion": "2010-04-01",
            "From": created.get("From", ""),
            "MessageSid": sid,
            "MessageStatus": status,
            "SmsSid": sid,
            "SmsStatus": status,
            "To": created["To"],
            **({"ErrorCode": error_code} if error_code else {}),
            **extra,
        }
        return created["StatusCallback"], fields

    def post_status(
        self,
        sid: str,
        status: str,
        listener: str,
        *,
        error_code: str = "",
        token: str = TOKEN,
        signed_url: str | None = None,
        signature: str | None = None,
    ) -> int:
        """POST the callback to `listener` (host:port: where a proxy would forward Twilio's
        request), on the path of the message's StatusCallback, signed with `token` over the
        StatusCallback URL (or `signed_url`); `signature` replaces the signature ("" sends
        none). The HTTP status of the answer."""
        url, fields = self.callback(sid, status, error_code)
        shown = signature if signature is not None else sign(token, signed_url or url, fields)
        return post_form(listener, urllib.parse.urlsplit(url).path, fields, shown)


def sign(token: str, url: str, fields: dict[str, str]) -> str:
    """X-Twilio-Signature as Twilio's docs define it: the full URL, then each POST field's name
    and value in the order of the names, HMAC-SHA1 with the auth token, in base64."""
    text = url + "".join(name + fields[name] for name in sorted(fields))
    digest = hmac.new(token.encode(), text.encode(), hashlib.sha1).digest()
    return base64.b64encode(digest).decode()


def post_form(listener: str, path: str, fields: dict[str, str], signature: str) -> int:
    request = urllib.request.Request(
        f"http://{listener}{path}",
        data=urllib.parse.urlencode(fields).encode(),
        headers={"Content-Type": "application/x-www-form-urlencoded"},
        method="POST",
    )
    if signature:
        request.add_header("X-Twilio-Signature", signature)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 - http, loopback
            return int(answer.status)
    except urllib.error.HTTPError as refused:
        return int(refused.code)


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
