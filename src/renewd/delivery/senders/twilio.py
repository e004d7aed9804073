"""SMS through the official twilio client, async, with renewd's own retry policy.

The client's own POST retries stay off (a retried 5xx can send a message twice). 429 (Twilio
never processes those) is retried with backoff, jitter and Retry-After; a 5xx once, noted as
possibly sent; bad recipients fail for good without a retry; bad credentials stop the channel.
Numbers are checked as E.164 before any request. Sends are spaced to a per-second rate.
"""

from __future__ import annotations

import asyncio
import contextvars
import random
import time
from pathlib import Path
from typing import Any

import aiohttp
import phonenumbers
from twilio.base.exceptions import TwilioException
from twilio.http.async_http_client import AsyncTwilioHttpClient
from twilio.http.response import Response
from twilio.rest import Client

from renewd.config.plugins import SettingsError, known_settings, number, secret
from renewd.delivery.senders.base import Outbound, Result, Status

SETTINGS = (
    "account_sid",
    "auth_token",
    "auth_token_env",
    "auth_token_file",
    "from",
    "messaging_service_sid",
    "base_url",
    "status_callback",
    "rate",
    "concurrency",
    "timeout",
    "attempts",
    "backoff",
)
PERMANENT = {21211, 21408, 21610, 21612, 21614}
STOPPING = {20003}
_last_response: contextvars.ContextVar[Response | None] = contextvars.ContextVar(
    "twilio_response", default=None
)


class _Http(AsyncTwilioHttpClient):  # type: ignore[misc]
    """Adds a per-request timeout (the client has none) and keeps the response for its headers."""

    def __init__(self, timeout: float) -> None:
        super().__init__()
        self.request_timeout = timeout

    async def request(self, *args: Any, **kwargs: Any) -> Response:
        kwargs["timeout"] = kwargs.get("timeout") or self.request_timeout
        response: Response = await super().request(*args, **kwargs)
        _last_response.set(response)
        return response


def is_e164(number: str) -> bool:
    try:
        parsed = phonenumbers.parse(number, None)
    except phonenumbers.NumberParseException:
        return False
    formatted = phonenumbers.format_number(parsed, phonenumbers.PhoneNumberFormat.E164)
    return phonenumbers.is_valid_number(parsed) and formatted == number


class TwilioSender:
    def __init__(self, settings: dict[str, Any], base: Path, channel: str) -> None:
        what = f"senders.{channel}"
        known_settings(settings, SETTINGS, what)
        if channel != "sms":
            raise SettingsError(f"{what}: the twilio sender sends SMS only")
        sid = settings.get("account_sid")
        if not isinstance(sid, str) or not sid.startswith("AC"):
            raise SettingsError(f"{what}: account_sid must be a Twilio account SID (AC...)")
        self.account_sid = sid
        self.token = secret(settings, "auth_token", what, base)
        self.sender = str(settings.get("from", ""))
        self.service = str(settings.get("messaging_service_sid", ""))
        if bool(self.sender) == bool(self.service):
            raise SettingsError(f"{what}: set either 'from' (a number) or 'messaging_service_sid'")
        self.base_url = str(settings.get("base_url", ""))
        self.status_callback = str(settings.get("status_callback", ""))
        self.rate = number(settings, "rate", what, 1, 0, 10_000)
        self.concurrency = int(number(settings, "concurrency", what, 4, 1, 256, True))
        self.timeout = number(settings, "timeout", what, 15, 0.1)
        self.attempts = int(number(settings, "attempts", what, 5, 1, 100, True))
        self.backoff = number(settings, "backoff", what, 1.0)
        self._client: Client | None = None
        self._http: _Http | None = None
        self._slot = 0.0
        self._spacing = asyncio.Lock()

    def _api(self) -> Client:
        """Created on first use, inside the running loop, as aiohttp requires."""
        if self._client is None:
            self._http = _Http(self.timeout)
            self._client = Client(self.account_sid, self.token.reveal(), http_client=self._http)
            self._client.region = self._client.edge = None
            if self.base_url:
                self._client.api.base_url = self.base_url.rstrip("/")
        return self._client

    async def _wait_for_slot(self) -> None:
        """Space requests 1/rate apart: the account's limit, kept by us rather than by 429s."""
        if self.rate <= 0:
            return
        async with self._spacing:
            now = time.monotonic()
            self._slot = max(self._slot + 1 / self.rate, now)
            delay = self._slot - now
        if delay > 0:
            await asyncio.sleep(delay)

    async def send(self, message: Outbound) -> Result:
        if not is_e164(message.to):
            return Result(Status.FAILED, error=f"not a valid E.164 number: {message.to!r}")
        server_errors = 0
        for attempt in range(self.attempts):
            await self._wait_for_slot()
            outcome, retry_after = await self._once(message)
            if outcome.status is not Status.RETRY:
                return outcome
            if outcome.error.startswith("HTTP 5"):
                server_errors += 1
                if server_errors > 1:
                    return Result(
                        Status.RETRY, error=outcome.error + " (twice; it may have been sent)"
                    )
            if attempt + 1 < self.attempts:
                jitter = 0.5 + random.random()  # noqa: S311 - spreading retries, not secrecy
                await asyncio.sleep(retry_after or self.backoff * 2**attempt * jitter)
        return outcome

    async def _once(self, message: Outbound) -> tuple[Result, float]:
        arguments: dict[str, Any] = {"to": message.to, "body": message.text}
        arguments.update(
            {"from_": self.sender} if self.sender else {"messaging_service_sid": self.service}
        )
        if self.status_callback:
            arguments["status_callback"] = self.status_callback
        _last_response.set(None)
        try:
            created = await self._api().messages.create_async(**arguments)
        except TwilioException as exc:
            return _classify(exc), _retry_after()
        except (aiohttp.ClientConnectorError, ConnectionRefusedError) as exc:
            return Result(Status.RETRY, error=f"cannot connect: {exc}"), 0.0
        except (TimeoutError, aiohttp.ClientError) as exc:
            return Result(
                Status.RETRY, error=f"HTTP 5xx-like failure, it may have been sent: {exc!r}"
            ), 0.0
        return Result(Status.SENT, provider_id=str(created.sid)), 0.0

    async def close(self) -> None:
        if self._http is not None:
            await self._http.close()
            self._http = self._client = None


def _classify(exc: TwilioException) -> Result:
    status = int(getattr(exc, "status", 0) or 0)
    code = int(getattr(exc, "code", 0) or 0)
    error = f"HTTP {status} code {code}: {getattr(exc, 'msg', '') or exc}"
    if status == 429 or code == 20429:
        return Result(Status.RETRY, error=error)
    if status == 401 or code in STOPPING:
        return Result(Status.STOP, error=error)
    if code in PERMANENT or 400 <= status < 500:
        return Result(Status.FAILED, error=error)
    return Result(Status.RETRY, error=error)


def _retry_after() -> float:
    response = _last_response.get()
    value = (
        response.headers.get("Retry-After") if response is not None and response.headers else None
    )
    try:
        return min(float(value), 300.0) if value else 0.0
    except ValueError:
        return 0.0
