"""Twilio's status callbacks, on a listener of their own: they come from outside, so nothing else
is served there (`/metrics` stays on `serve.listen`).

Every request is bounded before it is trusted: a request rate (a token bucket: 429 beyond it),
a body size (413 beyond it, never read), the listener's timeouts and client limit. Then it must
be signed: `X-Twilio-Signature` is checked with the official client's RequestValidator against
the URL as configured (the one Twilio was told and signs, whatever a proxy in front rewrote),
and a bad or missing one gets 403 and is counted. A signed callback's status is recorded by its
MessageSid, batched into few transactions by one writer; the answer waits for the commit.
A signature cannot refuse a replay (it carries no nonce): the ledger's forward-only states make
a replay change nothing.
"""

from __future__ import annotations

import asyncio
import logging
import urllib.parse
from collections.abc import Callable
from urllib.parse import urlsplit

from twilio.request_validator import RequestValidator

from renewd.config.plugins import Secret
from renewd.core.delivery import Receipt
from renewd.delivery.receipts import twilio_receipt
from renewd.service.listener import (
    REQUEST_TIMEOUT,
    Answer,
    Body,
    Listener,
    Request,
    TokenBucket,
)

log = logging.getLogger("renewd")

FORM = "application/x-www-form-urlencoded"
MAX_FIELDS = 64  # a status callback has about a dozen
BATCH = 256  # receipts per transaction at most
WRITE_TIMEOUT = 30.0  # seconds a callback waits for its commit before a 503
WARN_EVERY = 60.0  # seconds between warnings about refused signatures


class Callbacks(Listener):
    """POST `path` only. `apply` records a batch of receipts (in a worker thread) and counts
    their outcomes; `count` takes the outcome of each request that does not get that far:
    throttled, refused, forbidden (a bad or missing signature), ignored, failed."""

    name = "callbacks"

    def __init__(
        self,
        address: str,
        url: str,
        token: Secret,
        account_sid: str,
        apply: Callable[[list[Receipt]], None],
        count: Callable[[str], None],
        max_body: int = 16_384,
        rate: float = 50.0,
        request_timeout: float = REQUEST_TIMEOUT,
    ) -> None:
        super().__init__(address, "receipts.listen", request_timeout)
        self.configure(url, token)
        self.account_sid = account_sid
        self.apply = apply
        self.count = count
        self.max_body = max_body
        self.bucket = TokenBucket(rate, 2 * rate)
        self._queue: asyncio.Queue[tuple[Receipt, asyncio.Future[None]]] = asyncio.Queue()
        self._writer: asyncio.Task[None] | None = None
        self._refused = 0
        self._warned_at = -WARN_EVERY

    def configure(self, url: str, token: Secret) -> None:
        """The URL Twilio signs and the token it signs with (a reload may change either)."""
        self.url = url
        self.path = urlsplit(url).path or "/"
        self.validator = RequestValidator(token.reveal())

    async def respond(self, request: Request, body: Body) -> Answer:
        loop = asyncio.get_running_loop()
        if not self.bucket.take(loop.time()):
            self.count("throttled")
            return Answer(429, b"too many requests\n", headers=(("Retry-After", "1"),))
        if request.method != "POST":
            return Answer(405, b"only POST\n", headers=(("Allow", "POST"),))
        if request.path != self.path:
            return Answer(404, b"not found\n")
        length = request.headers.get("content-length", "")
        if (
            "transfer-encoding" in request.headers
            or "content-length" in request.repeated
            or not (length.isascii() and length.isdigit())
        ):
            self.count("refused")
            return Answer(411, b"a Content-Length is required\n")
        if int(length) > self.max_body:
            self.count("refused")
            return Answer(413, b"too large\n")
        fields = _form(await body.read(int(length)), request)
        if fields is None:
            self.count("refused")
            return Answer(400, b"not a status callback form\n")
        if not self._signed(request, fields):
            return Answer(403, b"bad signature\n")
        return await self._receive(fields)

    def _signed(self, request: Request, fields: dict[str, str]) -> bool:
        signature = request.headers.get("x-twilio-signature", "")
        once = "x-twilio-signature" not in request.repeated
        if signature and once and self.validator.validate(self.url, fields, signature):
            return True
        self.count("forbidden")
        self._refused += 1
        now = asyncio.get_running_loop().time()
        if now - self._warned_at >= WARN_EVERY:
            log.warning(
                "twilio callbacks: %d refused for a bad or missing signature; if all are, check "
                "that %s is the URL Twilio posts to (receipts.callback_url or "
                "senders.sms.status_callback) and that the auth token is current",
                self._refused,
                self.url,
            )
            self._warned_at, self._refused = now, 0
        return False

    async def _receive(self, fields: dict[str, str]) -> Answer:
        receipt = twilio_receipt(fields, self.account_sid)
        if isinstance(receipt, str):
            self.count("ignored")
            log.debug("twilio callbacks: ignored: %s", receipt)
            return Answer(200)
        done = asyncio.get_running_loop().create_future()
        if self._writer is None:
            self._writer = asyncio.create_task(self._write())
        await self._queue.put((receipt, done))
        try:
            await asyncio.wait_for(done, WRITE_TIMEOUT)
        except Exception as exc:  # the ledger is down or stuck: Twilio is told, nothing lost here
            self.count("failed")
            log.error("twilio callbacks: cannot record a status: %s", exc)
            return Answer(503, b"cannot record it now\n")
        return Answer(200)

    async def _write(self) -> None:
        """One writer: what queued while the last batch committed goes in the next."""
        while True:
            batch = [await self._queue.get()]
            while not self._queue.empty() and len(batch) < BATCH:
                batch.append(self._queue.get_nowait())
            waiting = [(receipt, done) for receipt, done in batch if not done.done()]
            try:
                await asyncio.to_thread(self.apply, [receipt for receipt, _ in waiting])
            except Exception as exc:  # each waiting request answers 503 with it
                for _, done in waiting:
                    if not done.done():
                        done.set_exception(exc)
                continue
            for _, done in waiting:
                if not done.done():
                    done.set_result(None)

    async def closing(self) -> None:
        if self._writer is not None:
            self._writer.cancel()
            await asyncio.gather(self._writer, return_exceptions=True)


def _form(data: bytes, request: Request) -> dict[str, str] | None:
    """The form's fields; None unless it is a form of UTF-8 fields, each named once."""
    kind = request.headers.get("content-type", "").partition(";")[0].strip().lower()
    if kind != FORM:
        return None
    try:
        pairs = urllib.parse.parse_qsl(
            data.decode("utf-8"),
            keep_blank_values=True,  # Twilio signs empty fields too
            strict_parsing=bool(data),
            errors="strict",
            max_num_fields=MAX_FIELDS,
        )
    except (UnicodeDecodeError, ValueError):
        return None
    fields = dict(pairs)
    return fields if len(fields) == len(pairs) else None
