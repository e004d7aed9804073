"""Billing and provisioning over HTTP (httpx): a JSON POST with an Idempotency-Key, retried with it.

The contract a peer keeps (the README's "HTTP billing and provisioning" has it in full): it
answers 2xx with `{"status": ..., "reference": ..., "idempotency_key": <the key it was sent>}`
and acts at most once per key. renewd books an answer only when it echoes the key; a redirect
is never followed (the POST, the token and the key would go to another address) and never
final; 408, 409, 425, 429 and 5xx are retried with the same key, honouring Retry-After; other
4xx are a refusal for good. Every attempt has a deadline as a whole, not only per read, and an
answer is read up to a size cap, so a peer cannot hold a charge, or renewd's memory, hostage.
"""

from __future__ import annotations

import asyncio
import json
import random
from dataclasses import asdict
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from pathlib import Path
from typing import Any

import httpx

from renewd.act.backends.base import Charge, NeedsOperator, Outcome, Removal, TransientError
from renewd.config.plugins import Secret, SettingsError, known_settings, secret

SETTINGS = (
    "url",
    "timeout",
    "deadline",
    "attempts",
    "backoff",
    "max_retry_seconds",
    "max_answer_bytes",
    "token_env",
    "token_file",
)
RETRY = {408, 409, 425, 429}  # and 5xx: not about this charge; the same key again is safe
STOP = {401, 403, 404}  # credentials or the URL are wrong: no use trying the next charge
SHOWN = 200  # characters of a refusal's body kept in the ledger


class HttpBackend:
    """One peer, one connection pool for the run; each call is one effect, retried with its key."""

    def __init__(
        self, settings: dict[str, Any], base: Path, what: str, answers: tuple[str, ...]
    ) -> None:
        known_settings(settings, SETTINGS, what)
        self.what = what
        self.url = _url(settings.get("url"), what)
        self.answers = answers
        self.timeout = _number(settings, "timeout", 10.0, what)
        self.deadline = _number(settings, "deadline", 30.0, what)
        self.attempts = int(_number(settings, "attempts", 4, what))
        self.backoff = _number(settings, "backoff", 0.5, what)
        self.max_retry = _number(settings, "max_retry_seconds", 60.0, what)
        self.max_answer = int(_number(settings, "max_answer_bytes", 65536, what))
        has_token = any(settings.get(f"token_{kind}") for kind in ("env", "file"))
        self.token: Secret | None = secret(settings, "token", what, base) if has_token else None
        self._client: httpx.AsyncClient | None = None

    def client(self) -> httpx.AsyncClient:
        """Made inside the running event loop, on first use, and kept: connections are reused."""
        if self._client is None:
            self._client = httpx.AsyncClient(
                follow_redirects=False,
                timeout=httpx.Timeout(self.timeout),
                limits=httpx.Limits(max_connections=4, max_keepalive_connections=4),
                trust_env=False,  # no proxy, CA or .netrc credentials from the environment
            )
        return self._client

    async def close(self) -> None:
        if self._client is not None:
            await self._client.aclose()
            self._client = None

    async def post(self, body: dict[str, Any], key: str) -> Outcome:
        last = ""
        for attempt in range(self.attempts):
            try:
                async with asyncio.timeout(self.deadline):
                    return await self._once(body, key)
            except _Retry as exc:
                last, wait = str(exc), exc.after
            except TimeoutError:
                last, wait = f"no complete answer within the deadline of {self.deadline:g} s", None
            except httpx.TransportError as exc:
                last, wait = f"{type(exc).__name__}: {exc}".rstrip(": "), None
            if attempt + 1 == self.attempts:
                break
            if wait is None:
                wait = self.backoff * 2**attempt * (0.5 + random.random())  # noqa: S311
            if wait > self.max_retry:
                last += f"; asked to wait {wait:g} s, more than max_retry_seconds"
                break
            await asyncio.sleep(wait)
        raise TransientError(f"{self.what} at {self.url}: {last} (after {attempt + 1} attempts)")

    async def _once(self, body: dict[str, Any], key: str) -> Outcome:
        headers = {
            "Content-Type": "application/json",
            "Accept": "application/json",
            "Accept-Encoding": "identity",
            "Idempotency-Key": key,
        }
        if self.token is not None:
            headers["Authorization"] = f"Bearer {self.token.reveal()}"
        data = json.dumps(body, default=str).encode()
        request = self.client().build_request("POST", self.url, content=data, headers=headers)
        response = await self.client().send(request, stream=True)
        try:
            return self._judge(response, await self._read(response), key)
        finally:
            await response.aclose()

    async def _read(self, response: httpx.Response) -> bytes:
        """The answer, up to `max_answer_bytes`: a bigger one is not read at all."""
        declared = response.headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_answer:
            raise self._oversized(response, int(declared))
        chunks, size = [], 0
        async for chunk in response.aiter_bytes():
            size += len(chunk)
            if size > self.max_answer:
                raise self._oversized(response, size)
            chunks.append(chunk)
        return b"".join(chunks)

    def _oversized(self, response: httpx.Response, size: int) -> Exception:
        message = f"answer of {size} bytes or more, over max_answer_bytes ({self.max_answer})"
        if response.is_success:  # what it says about the charge is unknown
            return NeedsOperator(
                f"{self.what} at {self.url}: HTTP {response.status_code}, {message}"
            )
        return _Retry(f"HTTP {response.status_code}, {message}")

    def _judge(self, response: httpx.Response, content: bytes, key: str) -> Outcome:
        code = response.status_code
        where = f"{self.what} at {self.url}"
        if 300 <= code < 400:
            raise NeedsOperator(
                f"{where}: answered HTTP {code}, a redirect; renewd follows none (the request, "
                "its token and key would go elsewhere): point 'url' at the final address"
            )
        if code in STOP:
            raise NeedsOperator(f"{where}: answered HTTP {code}: check 'url' and the token")
        if code >= 500 or code in RETRY:
            raise _Retry(f"HTTP {code}", _retry_after(response.headers.get("retry-after")))
        if not response.is_success:
            text = content[:SHOWN].decode(errors="replace")
            return Outcome("failed", error=f"HTTP {code}: {text}")
        return self._answer(content, key, where)

    def _answer(self, content: bytes, key: str, where: str) -> Outcome:
        """A 2xx answer is booked only if it is about this very request: it echoes the key."""
        try:
            payload = json.loads(content)
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise NeedsOperator(f"{where}: a 2xx answer that is not a JSON object")
        echoed = payload.get("idempotency_key")
        if echoed != key:
            shown = "none" if echoed is None else repr(str(echoed)[:SHOWN])
            raise NeedsOperator(
                f"{where}: an answer for another request (idempotency_key {shown}, sent {key!r})"
            )
        status = payload.get("status")
        if status not in self.answers:
            raise NeedsOperator(f"{where}: unknown status {str(status)[:SHOWN]!r} for {key}")
        return Outcome(str(status), reference=str(payload.get("reference", ""))[:SHOWN])


class _Retry(Exception):
    def __init__(self, message: str, after: float | None = None) -> None:
        super().__init__(message)
        self.after = after


def _retry_after(value: str | None) -> float | None:
    """Retry-After as seconds or an HTTP date; None when absent or unreadable."""
    if not value:
        return None
    if value.strip().isdigit():
        return float(value.strip())
    try:
        moment = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return max(0.0, (moment - datetime.now(UTC)).total_seconds())


def _url(value: Any, what: str) -> str:
    """An http(s) URL without credentials in it; a refusal never repeats the URL it refuses."""
    if not isinstance(value, str):
        raise SettingsError(f"{what}: 'url' must be an http(s) URL")
    try:
        url = httpx.URL(value)
    except httpx.InvalidURL:
        raise SettingsError(f"{what}: 'url' is not a valid URL") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise SettingsError(f"{what}: 'url' must be an http(s) URL")
    if url.userinfo:
        raise SettingsError(
            f"{what}: 'url' must not carry a user name or password; put the token in an "
            "environment variable (token_env) or a file (token_file)"
        )
    return str(url)


def _number(settings: dict[str, Any], key: str, default: float, what: str) -> float:
    value = settings.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float) or value < 0:
        raise SettingsError(f"{what}: {key!r} must be a number, 0 or more")
    if key == "attempts" and value < 1:
        raise SettingsError(f"{what}: 'attempts' must be 1 or more")
    return float(value)


class HttpBilling:
    name = "http"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        self.http = HttpBackend(settings, base, "billing", ("charged", "declined"))

    async def charge(self, charge: Charge) -> Outcome:
        body = {**asdict(charge), "amount": str(charge.amount)}
        return await self.http.post(body, charge.idempotency_key)

    async def close(self) -> None:
        await self.http.close()


class HttpProvisioning:
    name = "http"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        self.http = HttpBackend(settings, base, "provisioning", ("deleted",))

    async def delete(self, removal: Removal) -> Outcome:
        return await self.http.post(asdict(removal), removal.idempotency_key)

    async def close(self) -> None:
        await self.http.close()
