"""Message templates: where each rule's template lives per locale, and whether it parses.

Layout: `{locale}/{template}/subject.txt, body.txt, body.html` for email and `sms.txt` for SMS,
looked up first in the operator's directory (config `templates`), then in the shipped set.
"""

from __future__ import annotations

from pathlib import Path

import jinja2
from jinja2.sandbox import SandboxedEnvironment

from renewd.errors import Problem
from renewd.policy.model import Policy

SHIPPED = Path(__file__).parent / "templates"
PARTS = {"email": ("subject.txt", "body.txt", "body.html"), "sms": ("sms.txt",)}


def environment(loader: jinja2.BaseLoader | None = None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=False,
    )


def find(template: str, locale: str, part: str, override: Path | None) -> Path | None:
    for root in (override, SHIPPED):
        if root is not None and (path := root / locale / template / part).is_file():
            return path
    return None


def template_problems(
    policy: Policy, locales: tuple[str, ...], override: Path | None
) -> list[Problem]:
    """Every template a notify rule names must exist in every locale and parse."""
    env = environment()
    problems: list[Problem] = []
    checked: set[Path] = set()
    for rule in policy.rules:
        for channel in rule.notify:
            for locale in locales:
                for part in PARTS[channel]:
                    path = find(rule.template, locale, part, override)
                    if path is None:
                        problems.append(
                            Problem(
                                rule.source,
                                rule.line,
                                (
                                    f"rule {rule.id!r}: no {channel} template "
                                    f"'{rule.template}/{part}' for locale {locale}"
                                ),
                            )
                        )
                    elif path not in checked:
                        checked.add(path)
                        problems.extend(_syntax(env, path))
    return problems


def _syntax(env: SandboxedEnvironment, path: Path) -> list[Problem]:
    try:
        env.parse(path.read_text(encoding="utf-8"))
    except jinja2.TemplateSyntaxError as exc:
        return [Problem(str(path), exc.lineno, exc.message or "syntax error")]
    except UnicodeDecodeError:
        return [Problem(str(path), 0, "not UTF-8 text")]
    return []
