"""Billing and provisioning over HTTP: a JSON POST with an Idempotency-Key, retried with that key.

The peer answers `{"status": "charged" | "declined" | "deleted", "reference": "..."}`. Timeouts,
dropped connections and 5xx are retried (bounded count, exponential backoff); other 4xx answers
are a refusal for good. The key makes every retry safe: the peer must not act on it twice.
"""

from __future__ import annotations

import json
import os
import random
import time
import urllib.error
import urllib.request
from dataclasses import asdict
from pathlib import Path
from typing import Any

from renewd.act.backends.base import Charge, Outcome, Removal, TransientError
from renewd.config.plugins import SettingsError, known_settings

SETTINGS = ("url", "timeout", "attempts", "backoff", "token_env")
# Not a refusal of this charge: an expired token, a wrong URL, a conflict, a rate limit. The charge
# stays open and the run reports it; a plain refusal (400, 422) is final.
TRANSIENT = {401, 403, 404, 408, 409, 425, 429}


class HttpBackend:
    name = "http"

    def __init__(
        self, settings: dict[str, Any], base: Path, what: str, answers: tuple[str, ...]
    ) -> None:
        known_settings(settings, SETTINGS, what)
        url = settings.get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise SettingsError(f"{what}: 'url' must be an http(s) URL")
        self.url = url
        self.what = what
        self.answers = answers
        self.timeout = float(settings.get("timeout", 10))
        self.attempts = int(settings.get("attempts", 4))
        self.backoff = float(settings.get("backoff", 0.5))
        token_env = settings.get("token_env")
        self.token = os.environ.get(token_env, "") if isinstance(token_env, str) else ""
        if token_env and not self.token:
            raise SettingsError(f"{what}: environment variable {token_env} is not set")

    def post(self, body: dict[str, Any], key: str) -> Outcome:
        last = ""
        for attempt in range(self.attempts):
            if attempt:
                time.sleep(self.backoff * 2 ** (attempt - 1) * (0.5 + random.random()))  # noqa: S311
            try:
                return self._once(body, key)
            except _Retry as exc:
                last = str(exc)
        raise TransientError(f"{self.what} at {self.url}: {last} (after {self.attempts} attempts)")

    def _once(self, body: dict[str, Any], key: str) -> Outcome:
        headers = {"Content-Type": "application/json", "Idempotency-Key": key}
        if self.token:
            headers["Authorization"] = f"Bearer {self.token}"
        data = json.dumps(body, default=str).encode()
        request = urllib.request.Request(self.url, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:  # noqa: S310
                payload = json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            if exc.code >= 500 or exc.code in TRANSIENT:
                raise _Retry(f"HTTP {exc.code}") from exc
            return Outcome(
                "failed", error=f"HTTP {exc.code}: {exc.read(300).decode(errors='replace')}"
            )
        except (urllib.error.URLError, TimeoutError, ConnectionError) as exc:
            raise _Retry(str(getattr(exc, "reason", exc))) from exc
        except ValueError as exc:
            raise _Retry(f"unreadable answer: {exc}") from exc
        status = payload.get("status") if isinstance(payload, dict) else None
        if status not in self.answers:
            return Outcome("failed", error=f"unexpected answer {str(payload)[:200]}")
        return Outcome(str(status), reference=str(payload.get("reference", "")))


class _Retry(Exception):
    pass


class HttpBilling:
    name = "http"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        self.http = HttpBackend(settings, base, "billing", ("charged", "declined"))

    def charge(self, charge: Charge) -> Outcome:
        body = {**asdict(charge), "amount": str(charge.amount)}
        return self.http.post(body, charge.idempotency_key)


class HttpProvisioning:
    name = "http"

    def __init__(self, settings: dict[str, Any], base: Path) -> None:
        self.http = HttpBackend(settings, base, "provisioning", ("deleted",))

    def delete(self, removal: Removal) -> Outcome:
        return self.http.post(asdict(removal), removal.idempotency_key)
