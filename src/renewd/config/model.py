"""The operator's settings as plain values: what every stage above the core may read.

Nothing here reads a file; `renewd.config.load` builds a Config from YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, time
from decimal import Decimal
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class GuardSettings:
    """How much a run may delete, and how much the snapshot may change, before it holds."""

    max_deletion_share: Decimal = Decimal("0.01")
    min_deletions: int = 10
    max_shrink_share: Decimal = Decimal("0.10")
    max_expired_share: Decimal = Decimal("0.50")


@dataclass(frozen=True)
class MessageSettings:
    """What the templates say about the operator: its brand and where customers renew."""

    brand: str = "Example Mail"
    renewal_url: str = "https://mail.example.com/renew?mailbox={mailbox_id}"
    sms_max_segments: int = 3


@dataclass(frozen=True)
class ServeSettings:
    """How `renewd serve` keeps time and shows itself."""

    run_at: time = time(2, 0)
    snapshot_deadline: time = time(8, 0)
    snapshot_poll_seconds: float = 60.0
    resume_interval_seconds: float = 600.0
    reload_poll_seconds: float = 5.0
    stop_timeout_seconds: float = 30.0
    overdue_hours: float = 26.0
    progress_seconds: float = 30.0
    listen: str = "127.0.0.1:9464"
    alert_to: tuple[str, ...] = ()


@dataclass(frozen=True)
class ReceiptSettings:
    """Where receipts come in: Twilio's status callbacks on a listener of their own (`serve`
    only), and bounces in a Maildir the MTA delivers them to (`serve` polls it; `renewd bounces`
    reads it once)."""

    listen: str = ""  # "" : no callback listener
    callback_url: str = ""  # the URL Twilio posts to; "": senders.sms.status_callback
    max_body_bytes: int = 16_384
    rate: float = 50.0  # requests per second on the callback listener, bursts of twice that
    bounces: Path | None = None
    poll_seconds: float = 60.0


@dataclass(frozen=True)
class Config:
    """The whole config: `rules` and `templates` resolved, other paths relative to `base`."""

    path: Path
    rules: Path
    snapshot: str = ""
    templates: Path | None = None
    default_locale: str = "en"
    locales: tuple[str, ...] = ("en", "zh-CN", "de")
    catch_up_days: int = 31
    message_ttl_days: int = 3
    retention_days: int = 400  # outbox rows and run records older than this are pruned
    ledger: str = "var/renewd.sqlite3"
    billing: dict[str, Any] = field(default_factory=lambda: {"backend": "ledger"})
    provisioning: dict[str, Any] = field(default_factory=lambda: {"backend": "ledger"})
    senders: dict[str, dict[str, Any]] = field(
        default_factory=lambda: {"email": {"backend": "console"}, "sms": {"backend": "console"}}
    )
    guards: GuardSettings = field(default_factory=GuardSettings)
    messages: MessageSettings = field(default_factory=MessageSettings)
    serve: ServeSettings = field(default_factory=ServeSettings)
    receipts: ReceiptSettings = field(default_factory=ReceiptSettings)
    lines: dict[str, int] = field(default_factory=dict, compare=False, repr=False)
    """Where each setting is in the file (`ledger`, `senders.email`, `serve.listen`), for
    problems found after loading it."""

    @property
    def base(self) -> Path:
        return self.path.parent

    def snapshot_for(self, day: date) -> Path:
        """The snapshot path for a day: `{date}` in the configured path becomes YYYY-MM-DD."""
        return self.base / self.snapshot.replace("{date}", day.isoformat())

    @property
    def callback_url(self) -> str:
        """The URL Twilio signs its status callbacks with: the one it was told to post to."""
        sms = self.senders.get("sms", {})
        return self.receipts.callback_url or str(sms.get("status_callback", ""))
