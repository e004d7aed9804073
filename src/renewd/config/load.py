"""Reading the operator's config file into a Config, with every problem as `file:line`."""

from __future__ import annotations

import math
import os
import re
from collections.abc import Callable
from datetime import time
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

from renewd.config.model import (
    Config,
    GuardSettings,
    MessageSettings,
    ReceiptSettings,
    ServeSettings,
)
from renewd.config.yamlsrc import LocatedMap, Reader, load_yaml
from renewd.core.errors import Problem, ProblemsError, UnusableFile, suggest

DEFAULT_PATH = Path("config.yaml")
ENV_VAR = "RENEWD_CONFIG"


def config_path(given: str | None) -> Path:
    return Path(given or os.environ.get(ENV_VAR) or DEFAULT_PATH)


def _text(r: Reader, value: Any, line: int, key: str) -> Any:
    if isinstance(value, str) and value:
        return value
    r.problem(line, f"{key} must be a non-empty string")
    return None


LOCALE = re.compile(r"[A-Za-z]{2,3}(?:[-_][A-Za-z0-9]{1,8})*\Z")  # a folder name, never a path


def _locales(r: Reader, value: Any, line: int, key: str) -> Any:
    if isinstance(value, list) and value and all(_locale(x) for x in value):
        return tuple(value)
    r.problem(line, "locales must be a list of locale names such as [en, zh-CN]")
    return None


def _locale(value: Any) -> bool:
    return isinstance(value, str) and LOCALE.match(value) is not None


def _default_locale(r: Reader, value: Any, line: int, key: str) -> Any:
    if _locale(value):
        return value
    r.problem(line, "default_locale must be a locale name such as en or zh-CN")
    return None


def _days(r: Reader, value: Any, line: int, key: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= 366:
        return value
    r.problem(line, f"{key} must be a whole number from 0 to 366")
    return None


def _retention(r: Reader, value: Any, line: int, key: str) -> Any:
    if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 36_500:
        return value
    r.problem(line, f"{key} must be a whole number of days from 1 to 36500 (default 400)")
    return None


def _backend(r: Reader, value: Any, line: int, key: str) -> Any:
    if isinstance(value, LocatedMap) and isinstance(value.get("backend"), str):
        return value  # with its lines: `check` says where a backend's setting is wrong
    r.problem(line, f"{key} must be a mapping with a 'backend' name, such as {{backend: ledger}}")
    return None


def _senders(r: Reader, value: Any, line: int, key: str) -> Any:
    node = r.mapping(value, line, "senders")
    if node is None:
        return None
    r.known_keys(node, ("email", "sms"), "senders")
    found = {name: _backend(r, node[name], node.lines[name], f"senders.{name}") for name in node}
    return None if None in found.values() else found


def _guards(r: Reader, value: Any, line: int, key: str) -> Any:
    node = r.mapping(value, line, "guards")
    if node is None:
        return None
    shares = ("max_deletion_share", "max_shrink_share", "max_expired_share")
    r.known_keys(node, (*shares, "min_deletions"), "guards")
    values: dict[str, Any] = {}
    for name in shares:
        if name in node:
            try:
                share = Decimal(str(node[name]))
            except InvalidOperation:
                share = Decimal(-1)
            if not share.is_finite() or not 0 <= share <= 1:
                r.problem(
                    node.lines[name], f"guards.{name} must be a share from 0 to 1 (0.01 is 1%)"
                )
            values[name] = share
    if "min_deletions" in node:
        count = node["min_deletions"]
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            r.problem(
                node.lines["min_deletions"], "guards.min_deletions must be a whole number >= 0"
            )
        values["min_deletions"] = node["min_deletions"]
    return GuardSettings(**values)


def _messages(r: Reader, value: Any, line: int, key: str) -> Any:
    node = r.mapping(value, line, "messages")
    if node is None:
        return None
    r.known_keys(node, ("brand", "renewal_url", "sms_max_segments"), "messages")
    values = {
        k: _text(r, node[k], node.lines[k], f"messages.{k}")
        for k in ("brand", "renewal_url")
        if k in node
    }
    if "sms_max_segments" in node:
        segments = node["sms_max_segments"]
        if not isinstance(segments, int) or isinstance(segments, bool) or not 1 <= segments <= 10:
            r.problem(
                node.lines["sms_max_segments"], "messages.sms_max_segments must be from 1 to 10"
            )
        values["sms_max_segments"] = segments
    url = values.get("renewal_url") or MessageSettings.renewal_url
    if "{mailbox_id}" not in url:
        r.problem(
            node.lines.get("renewal_url", node.line),
            "messages.renewal_url must contain {mailbox_id}",
        )
    else:
        try:
            url.format(mailbox_id="", account_id="")
        except (KeyError, IndexError, ValueError):
            r.problem(
                node.lines.get("renewal_url", node.line),
                "messages.renewal_url may use {mailbox_id} and {account_id}, and no other {...}",
            )
    if None in values.values():
        return None
    return MessageSettings(**values)


SERVE_TIMES = ("run_at", "snapshot_deadline")
SERVE_SECONDS = (
    "snapshot_poll_seconds",
    "resume_interval_seconds",
    "reload_poll_seconds",
    "stop_timeout_seconds",
    "overdue_hours",
    "progress_seconds",
)
LONGEST = 366 * 24 * 3600  # no wait or interval is longer than a year
LISTEN_HINT = '(choose another address, or "" for no listener)'
LISTEN = re.compile(r"(?:\[(?P<v6>[0-9A-Fa-f:.]+)\]|(?P<host>[^\s:\[\]/]+)):(?P<port>\d{1,5})\Z")


def _serve(r: Reader, value: Any, line: int, key: str) -> Any:
    node = r.mapping(value, line, "serve")
    if node is None:
        return None
    r.known_keys(node, (*SERVE_TIMES, *SERVE_SECONDS, "listen", "alert_to"), "serve")
    values: dict[str, Any] = {}
    for name in node:
        parsed = _serve_value(r, name, node[name], node.lines[name])
        if parsed is not None and name in ServeSettings.__dataclass_fields__:
            values[name] = parsed
    return ServeSettings(**values)


def _serve_value(r: Reader, name: str, item: Any, where: int) -> Any:
    if name in SERVE_TIMES:
        try:
            if isinstance(item, str):
                return time.fromisoformat(item)
        except ValueError:
            pass
        r.problem(where, f'serve.{name} must be a time in quotes, such as "02:00"')
        return None
    if name in SERVE_SECONDS:
        longest = LONGEST / 3600 if name.endswith("_hours") else LONGEST
        number = isinstance(item, int | float) and not isinstance(item, bool)
        if number and math.isfinite(item) and 0 < item <= longest:
            return float(item)
        r.problem(where, f"serve.{name} must be a positive number, at most {longest:.0f}")
        return None
    if name == "alert_to":
        if isinstance(item, list) and all(isinstance(a, str) and "@" in a for a in item):
            return tuple(item)
        r.problem(where, "serve.alert_to must be a list of email addresses")
        return None
    if name == "listen":
        return _listen(r, item, where)
    return None


def _listen(r: Reader, item: Any, where: int, key: str = "serve.listen") -> str | None:
    """host:port, [v6]:port, or empty (no listener); a port 1-65535."""
    if item == "" or item is None:
        return ""
    found = LISTEN.match(item) if isinstance(item, str) else None
    if found is None or not 1 <= int(found["port"]) <= 65535:
        r.problem(
            where,
            f"{key} must be host:port with a port from 1 to 65535, such as "
            '"127.0.0.1:9464" (this machine only), "0.0.0.0:9464" or "[::1]:9464"; '
            '"" turns the listener off',
        )
        return None
    return str(item)


RECEIPT_NUMBERS = {
    "max_body_bytes": (256, 1 << 20),
    "rate": (0.1, 10_000),
    "poll_seconds": (1, 86_400),
}


def _receipts(r: Reader, value: Any, line: int, key: str) -> Any:
    node = r.mapping(value, line, "receipts")
    if node is None:
        return None
    r.known_keys(node, ("listen", "callback_url", "bounces", *RECEIPT_NUMBERS), "receipts")
    values: dict[str, Any] = {}
    if "listen" in node:
        values["listen"] = _listen(r, node["listen"], node.lines["listen"], "receipts.listen")
    url = node.get("callback_url")
    if url is not None:
        if not isinstance(url, str) or not url.startswith(("https://", "http://")):
            r.problem(node.lines["callback_url"], "receipts.callback_url must be an http(s) URL")
        values["callback_url"] = str(url)
    if "bounces" in node:
        values["bounces"] = _text(r, node["bounces"], node.lines["bounces"], "receipts.bounces")
    for name, (low, high) in RECEIPT_NUMBERS.items():
        if name not in node:
            continue
        number = node[name]
        whole = name == "max_body_bytes"
        fits = isinstance(number, int if whole else int | float) and not isinstance(number, bool)
        if not fits or not math.isfinite(number) or not low <= number <= high:
            kind = "a whole number" if whole else "a number"
            r.problem(node.lines[name], f"receipts.{name} must be {kind} from {low:g} to {high:g}")
        values[name] = number
    if None in values.values():
        return None
    return values


Parser = Callable[[Reader, Any, int, str], Any]
KEYS: dict[str, Parser] = {
    "rules": _text,
    "snapshot": _text,
    "templates": _text,
    "default_locale": _default_locale,
    "locales": _locales,
    "catch_up_days": _days,
    "message_ttl_days": _days,
    "retention_days": _retention,
    "ledger": _text,
    "billing": _backend,
    "provisioning": _backend,
    "senders": _senders,
    "guards": _guards,
    "messages": _messages,
    "serve": _serve,
    "receipts": _receipts,
}


def load_config(path: Path) -> Config:
    """Read and validate the config; relative paths in it are relative to the file itself."""
    if not path.is_file():
        hint = f" (pass --config, or set ${ENV_VAR}; config.example.yaml is a start)"
        raise UnusableFile([Problem(str(path), 0, f"config file not found{hint}")])
    r = Reader(path)
    node = r.mapping(load_yaml(path), 1, "the config")
    if node is None:
        raise ProblemsError(r.problems)
    r.known_keys(node, KEYS, "the config")
    values = {key: KEYS[key](r, node[key], node.lines[key], key) for key in node if key in KEYS}
    if "rules" not in node:
        r.problem(node.line, "the config needs 'rules' (a directory of policy files)")
    locales, default = values.get("locales", Config.locales), values.get("default_locale", "en")
    if locales is not None and default is not None and default not in locales:
        r.problem(
            node.lines.get("default_locale", node.line), "default_locale must be one of locales"
        )
    for key in ("rules", "templates"):
        if values.get(key):
            values[key] = _existing(r, path.parent / values[key], node.lines[key], key)
    r.raise_if_any()
    if "receipts" in values:
        bounces = values["receipts"].pop("bounces", None)
        folder = path.parent / bounces if bounces else None
        values["receipts"] = ReceiptSettings(bounces=folder, **values["receipts"])
    return Config(path=path, lines=_lines(node), **values)


def _lines(node: LocatedMap) -> dict[str, int]:
    lines = dict(node.lines)
    for key, value in node.items():
        if isinstance(value, LocatedMap):
            lines.update({f"{key}.{name}": line for name, line in value.lines.items()})
    return lines


def split_listen(address: str) -> tuple[str, int]:
    """`host:port` or `[v6]:port`, as `serve.listen` has been checked to be."""
    found = LISTEN.match(address)
    if found is None:
        raise ValueError(f"not host:port: {address!r}")
    return found["v6"] or found["host"], int(found["port"])


def _existing(r: Reader, target: Path, line: int, key: str) -> Path:
    """What the config names must be there; a typo in its name gets a suggestion."""
    if not target.exists():
        try:
            near = [p.name for p in target.parent.iterdir()]
        except OSError:
            near = []
        close = suggest(target.name, near)
        r.problem(line, f"{key}: no such file or directory: {target}{close}")
    return target
