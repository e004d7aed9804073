"""How a receipt names its message: a per-message return path for email (VERP), Twilio's
MessageSid for SMS; and what Twilio's status callback says, as a Receipt.

An email's envelope sender is `bounces+<outbox id>@domain` (from `return_path` in the config), so
the bounce an MTA sends back is addressed to that very message: nothing is guessed from the
bounce's text. The outbox id travels in the message's key, `renewd-<outbox id>`.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.utils import getaddresses

from renewd.config.plugins import SettingsError
from renewd.core.delivery import SMS_ORDER, Receipt

KEY_PREFIX = "renewd-"
PLACEHOLDER = "{id}"


def message_key(action_id: int) -> str:
    """The key of the message sent for an outbox row (its Message-ID and return path carry it)."""
    return f"{KEY_PREFIX}{action_id}"


def action_of(key: str) -> int | None:
    """The outbox row a message key names; None for messages of no row (operator alerts)."""
    number = key.removeprefix(KEY_PREFIX)
    return int(number) if key.startswith(KEY_PREFIX) and number.isdigit() else None


@dataclass(frozen=True)
class ReturnPath:
    """`bounces+{id}@bounce.example.com`: the envelope sender of each message, `{id}` its
    outbox id. The MTA that receives the bounce must deliver `bounces+<anything>` to the
    Maildir renewd reads (Postfix: `recipient_delimiter = +`; Exim: `local_part_suffix`)."""

    prefix: str
    suffix: str
    domain: str

    @classmethod
    def parse(cls, template: object, what: str) -> ReturnPath:
        hint = 'such as "bounces+{id}@bounce.example.com"'
        if not isinstance(template, str) or template.count(PLACEHOLDER) != 1:
            raise SettingsError(f"{what}: return_path must contain {{id}} once, {hint}")
        local, at, domain = template.rpartition("@")
        ascii_only = template.isascii() and all(c.isprintable() and c != " " for c in template)
        if not at or PLACEHOLDER not in local or not domain or "<" in template or not ascii_only:
            raise SettingsError(
                f"{what}: return_path must be a plain ASCII address with {{id}} in its local "
                f"part, {hint}"
            )
        prefix, _, suffix = local.partition(PLACEHOLDER)
        return cls(prefix, suffix, domain.lower())

    def address(self, key: str) -> str | None:
        """The envelope sender for a message; None when the message is no outbox row's."""
        action_id = action_of(key)
        if action_id is None:
            return None
        return f"{self.prefix}{action_id}{self.suffix}@{self.domain}"

    def match(self, address: str) -> int | None:
        """The outbox id an address names, if it is one of ours."""
        local, at, domain = address.strip().rpartition("@")
        if not at or domain.lower() != self.domain:
            return None
        if not (local.startswith(self.prefix) and local.endswith(self.suffix)):
            return None
        number = local[len(self.prefix) : len(local) - len(self.suffix)]
        if not (number.isascii() and number.isdigit()) or len(number) > 19:
            return None
        return int(number) if int(number) < 2**63 else None  # a database's largest integer

    def find(self, values: Iterable[str]) -> int | None:
        """The first outbox id named by any address in these header values."""
        for _, address in getaddresses([str(value) for value in values]):
            found = self.match(address)
            if found is not None:
                return found
        return None


# Twilio's error codes for messages that did not arrive (their docs' names, shortened).
TWILIO_ERRORS = {
    "30001": "queue overflow",
    "30002": "account suspended",
    "30003": "unreachable destination handset",
    "30004": "message blocked",
    "30005": "unknown destination handset",
    "30006": "landline or unreachable carrier",
    "30007": "filtered by the carrier",
    "30008": "unknown error",
    "30010": "message price exceeds max price",
    "30034": "unregistered sender (10DLC)",
}


def twilio_receipt(fields: Mapping[str, str], account_sid: str) -> Receipt | str:
    """The receipt a status callback's form fields make, or why they make none."""
    sid, status = fields.get("MessageSid", ""), fields.get("MessageStatus", "")
    if fields.get("AccountSid") != account_sid:
        return "the callback is for another account"
    if len(sid) != 34 or sid[:2] not in ("SM", "MM") or not _hex(sid[2:]):
        return "no MessageSid"
    if status not in SMS_ORDER:
        return f"status {status[:32]!r} is not one of an outbound message"
    code = fields.get("ErrorCode", "")
    code = code if code.isdigit() and len(code) <= 8 else ""
    return Receipt("sms", status, code, TWILIO_ERRORS.get(code, ""), provider_id=sid)


def _hex(text: str) -> bool:
    return all(c in "0123456789abcdefABCDEF" for c in text)
