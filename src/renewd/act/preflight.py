"""`renewd check`: the config, the policy files, and every template rendered as customers see it."""

from __future__ import annotations

import errno
import json
import os
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from renewd.act.bounces import return_path
from renewd.act.plugins import plugin
from renewd.act.receipts import twilio_credentials
from renewd.config.load import LISTEN_HINT, load_config, split_listen
from renewd.config.model import Config
from renewd.config.plugins import SettingsError
from renewd.core.errors import Problem, ProblemsError, UnusableFile, suggest
from renewd.delivery.formats import formats_for
from renewd.delivery.gsm import sms_segments, sms_text
from renewd.delivery.messages import sample_decision, sample_mailbox, variables
from renewd.delivery.senders.base import send_window
from renewd.delivery.templating import PARTS, SHIPPED, SKELETON_MARK, Renderer, TemplateError
from renewd.policy.engine import Engine
from renewd.policy.loader import load_policy, policy_files
from renewd.policy.model import Policy, Rule
from renewd.state.db import Database, LedgerError, database_url, sqlite_path


def check(path: Path, serving: str = "", receiving: str = "") -> list[Problem]:
    """Every problem found, in file order; an empty list means the daemon would accept it all.

    A config that cannot be read at all raises UnusableFile: there is nothing to check.
    `serving` and `receiving` are the addresses a running daemon already listens on (a
    reload): they are not probed, since the daemon itself holds them.
    """
    try:
        config = load_config(path)
        policy = load_policy(policy_files(config.rules))
    except UnusableFile as exc:
        if exc.problems[0].path == str(path):
            raise
        return exc.problems
    except ProblemsError as exc:
        return exc.problems
    try:
        Engine(policy)
    except Exception as exc:  # durable_rules raises bare Exceptions for definitions it refuses
        return [Problem(policy.sources[0], 0, f"durable_rules refused the compiled policy: {exc}")]
    return (
        template_problems(config, policy)
        + backend_problems(config)
        + ledger_problems(config)
        + listen_problems(config, serving)
        + receipt_problems(config, receiving)
    )


SKELETON_PROBLEM = (
    "still the skeleton `renewd init --template` wrote: write the message, then delete the "
    "renewd-skeleton line"
)


def template_problems(config: Config, policy: Policy) -> list[Problem]:
    """Render every part of every template a rule names, in every locale, with a sample mailbox;
    then the override directory, for files that no template reads."""
    renderer = Renderer(config.templates, config.default_locale)
    problems: list[Problem] = []
    for rule in policy.rules:
        if not any(
            renderer.find(rule.template, locale, part)
            for locale in config.locales
            for channel in rule.notify
            for part in PARTS[channel]
        ):
            problems.append(_no_template(config, rule))
            continue
        for locale in config.locales:
            for channel in rule.notify:
                problems.extend(_render_problems(config, policy, renderer, rule, locale, channel))
    problems += override_problems(config, policy)
    return list(dict.fromkeys(problems))


def _no_template(config: Config, rule: Rule) -> Problem:
    """A rule whose template exists nowhere: one line, saying how to write one."""
    locales = " ".join(f"--locale {locale}" for locale in config.locales)
    folder = config.templates or config.base / "templates"
    how = (
        f"`renewd init --template {rule.template} {locales} {folder}` writes a skeleton to fill in"
    )
    if config.templates is None:
        how += f", then set `templates: {folder.name}` in {config.path.name}"
    message = (
        f"rule {rule.id!r}: there is no template {rule.template!r} in any locale "
        f"({', '.join(config.locales)}); {how}"
    )
    return Problem(rule.source, rule.line, message)


def _render_problems(
    config: Config, policy: Policy, renderer: Renderer, rule: Rule, locale: str, channel: str
) -> list[Problem]:
    mailbox = sample_mailbox(locale)
    formats = formats_for(locale, config.locales, config.default_locale)
    decision = replace(sample_decision(rule, mailbox), channel=channel)
    values = variables(mailbox, decision, policy, config.messages, formats=formats)
    problems = []
    for part in PARTS[channel]:
        path = renderer.find(rule.template, locale, part)
        if path is None:
            missing = f"no {channel} template '{rule.template}/{part}' for locale {locale}"
            problems.append(Problem(rule.source, rule.line, f"rule {rule.id!r}: {missing}"))
            continue
        if SKELETON_MARK in path.read_text(encoding="utf-8", errors="replace"):
            problems.append(Problem(str(path), 1, SKELETON_PROBLEM))
            continue
        try:
            text = renderer.part(locale, rule.template, part, values)
        except TemplateError as exc:
            problems.append(Problem(exc.path, exc.line, exc.message))
            continue
        segments = sms_segments(sms_text(text)) if part == "sms.txt" else 0
        if segments > config.messages.sms_max_segments:
            limit = config.messages.sms_max_segments
            problems.append(
                Problem(str(path), 1, f"renders to {segments} SMS segments, more than {limit}")
            )
    return problems


def override_problems(config: Config, policy: Policy) -> list[Problem]:
    """Files in the override directory that no template reads: a misspelt locale, template or
    part (`renewal-remindr/`, `subjct.txt`) would otherwise be accepted and never used.

    Layout: `{locale}/{template}/{part}`. Names starting with `_` or `.` are left alone: layouts
    and partials a template includes (`_layout.html`), and hidden files.
    """
    root = config.templates
    if root is None or not root.is_dir():
        return []
    templates = {rule.template for rule in policy.rules} | {
        p.name for locale in SHIPPED.iterdir() if locale.is_dir() for p in locale.iterdir()
    }
    problems = []
    for path, kind in _override_files(root):
        message = _unused(path.name, kind, config.locales, templates)
        if message:
            problems.append(Problem(str(path), 0, message))
    return problems


def _unused(name: str, kind: str, locales: tuple[str, ...], templates: set[str]) -> str:
    """Why an override entry would never be read, or "" when it would be."""
    parts = [part for channel in PARTS.values() for part in channel]
    if kind == "locale" and name not in locales:
        return (
            f"locale {name!r} is not one of the config's locales ({', '.join(locales)})"
            f"{suggest(name, locales)}: these templates are never used (add it to `locales`, "
            "and every rule's templates must then exist in it)"
        )
    if kind == "template" and name not in templates:
        return (
            f"no template is called {name!r}{suggest(name, templates)}: no rule uses it, so it "
            "is never used (a rule's template is its id unless the rule names one)"
        )
    if kind == "part" and name not in parts:
        return (
            f"{name!r} is not a template part{suggest(name, parts)}: a template's parts are "
            "subject.txt, body.txt and body.html (email), sms.txt (SMS)"
        )
    if kind == "stray":
        return (
            "not where a template goes: templates are folders {locale}/{template}/ holding their "
            "parts (names starting with _ are left for layouts and includes)"
        )
    return ""


def _override_files(root: Path) -> Iterator[tuple[Path, str]]:
    """Each visible entry of the override tree with what it must be: a locale folder, a
    template folder, a part, or `stray` (a file or folder where none belongs)."""
    for locale in sorted(_visible(root)):
        if not locale.is_dir():
            yield locale, "stray"
            continue
        yield locale, "locale"
        for template in sorted(_visible(locale)):
            if not template.is_dir():
                yield template, "stray"
                continue
            yield template, "template"
            for part in sorted(_visible(template)):
                yield part, ("part" if part.is_file() else "stray")


def _visible(folder: Path) -> Iterator[Path]:
    return (p for p in folder.iterdir() if not p.name.startswith(("_", ".")))


def backend_problems(config: Config) -> list[Problem]:
    """Each backend and sender is looked up and set up with its settings, without contacting it."""
    problems = []
    for kind, settings in (("billing", config.billing), ("provisioning", config.provisioning)):
        try:
            plugin(kind, settings["backend"])(settings, config.base)
        except Exception as exc:  # any refusal of the settings is a config problem to show
            problems.append(_settings_problem(config, settings, kind, exc))
    for channel, settings in config.senders.items():
        try:
            send_window(settings, channel)
            plugin("sender", settings["backend"])(settings, config.base, channel)
        except Exception as exc:  # same: the sender's own message says what is wrong
            problems.append(_settings_problem(config, settings, f"senders.{channel}", exc))
    return problems


def _settings_problem(
    config: Config, settings: dict[str, Any], what: str, exc: Exception
) -> Problem:
    """The problem on the line of the setting it names (else of `backend:`), when the config's
    reader kept the lines (a LocatedMap); a backend's own message need not know them."""
    message = str(exc) if str(exc).startswith(what) else f"{what}: {exc}"
    lines: dict[str, int] = getattr(settings, "lines", {})
    detail = re.split(r" \((?:did you mean|known:)", message.removeprefix(what))[0]
    named = [lines[key] for key in settings if re.search(rf"\b{re.escape(key)}\b", detail)]
    line = min(named) if named else lines.get("backend", getattr(settings, "line", 0))
    return Problem(str(config.path), line, message)


def ledger_problems(config: Config) -> list[Problem]:
    """The ledger opens (read-only, creating nothing), or could be created where it is named."""
    url = database_url(config.ledger, config.base)
    path = sqlite_path(url)
    try:
        if path is None or path.exists() or path.is_symlink():
            Database(url, readonly=True).close()
            return []
    except LedgerError as exc:
        return [_problem(config, "ledger", str(exc))]
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir() or not os.access(folder, os.W_OK | os.X_OK):
        reason = f"cannot create it: {folder} is not a directory renewd may write"
        return [_problem(config, "ledger", f"ledger {path}: {reason}")]
    return []


def listen_problems(config: Config, serving: str = "") -> list[Problem]:
    """`serve` can listen on serve.listen: the name resolves and nothing else holds the port."""
    address = config.serve.listen
    if not address or address == serving:
        return []
    failure = _bind(address)
    if failure is None:
        return []
    if failure.errno == errno.EADDRINUSE and _renewd_answers(*split_listen(address)):
        return []  # the running daemon holds it: `check` beside a live `serve`
    reason = failure.strerror or str(failure)
    message = f"serve.listen {address}: cannot listen there: {reason} {LISTEN_HINT}"
    return [_problem(config, "serve.listen", message)]


def receipt_problems(config: Config, receiving: str = "") -> list[Problem]:
    """Receipts can come in: the callback listener can listen and check signatures, the bounce
    Maildir is there and a return path names each bounce's message."""
    problems = _callback_problems(config, receiving) if config.receipts.listen else []
    folder = config.receipts.bounces
    if folder is not None:
        try:
            return_path(config)
        except SettingsError as exc:
            problems.append(_problem(config, "receipts.bounces", str(exc)))
        if not (folder / "new").is_dir():
            message = (
                f"receipts.bounces: {folder} is not a Maildir (no new/ folder); "
                "point it at the Maildir your MTA delivers bounces to"
            )
            problems.append(_problem(config, "receipts.bounces", message))
    return problems


def _callback_problems(config: Config, receiving: str) -> list[Problem]:
    settings, problems = config.receipts, []
    try:
        twilio_credentials(config)
    except SettingsError as exc:
        problems.append(_problem(config, "receipts.listen", str(exc)))
    told = str(config.senders.get("sms", {}).get("status_callback", ""))
    if settings.callback_url and told and settings.callback_url != told:
        message = (
            "receipts.callback_url differs from senders.sms.status_callback: Twilio signs "
            "the URL it was told, status_callback; set only that one"
        )
        problems.append(_problem(config, "receipts.callback_url", message))
    if settings.listen == config.serve.listen:
        message = "receipts.listen must differ from serve.listen: the metrics stay inside"
        problems.append(_problem(config, "receipts.listen", message))
        return problems
    failure = None if settings.listen == receiving else _bind(settings.listen)
    if failure is not None and not _renewd_server(settings.listen):
        reason = failure.strerror or str(failure)
        message = f"receipts.listen {settings.listen}: cannot listen there: {reason} {LISTEN_HINT}"
        problems.append(_problem(config, "receipts.listen", message))
    return problems


def _bind(address: str) -> OSError | None:
    """Why nothing can listen on `address` now, or None when something can."""
    host, port = split_listen(address)
    try:
        family, kind, protocol, _, where = socket.getaddrinfo(
            host, port, type=socket.SOCK_STREAM, flags=socket.AI_PASSIVE
        )[0]
        with socket.socket(family, kind, protocol) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            probe.bind(where)
    except OSError as exc:
        return exc
    return None


def _renewd_server(address: str) -> bool:
    """Whether what holds the address is a renewd listener (`check` beside a live `serve`)."""
    host, port = split_listen(address)
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            server = answer.headers.get("Server", "")
    except urllib.error.HTTPError as refused:
        server = refused.headers.get("Server", "")
    except (OSError, ValueError):
        return False
    return bool(server == "renewd")


def _renewd_answers(host: str, port: int) -> bool:
    """Whether what holds the address is a renewd: its /healthz answers with a policy."""
    url = f"http://{f'[{host}]' if ':' in host else host}:{port}/healthz"
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            body = answer.read(1 << 20)
    except urllib.error.HTTPError as refused:  # 503: a renewd that is not healthy
        body = refused.read(1 << 20)
    except (OSError, ValueError):
        return False
    try:
        return "policy" in json.loads(body)
    except (ValueError, TypeError):
        return False


def _problem(config: Config, key: str, message: str) -> Problem:
    return Problem(str(config.path), config.lines.get(key, 0), message)
