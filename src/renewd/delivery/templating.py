"""Message templates: where each one lives, rendering them strictly, and what an SMS costs.

Layout: `{locale}/{template}/subject.txt, body.txt, body.html` for email and `sms.txt` for SMS,
looked up first in the operator's directory (config `templates`), then in the shipped set.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from types import TracebackType
from typing import Any

import jinja2
from jinja2.sandbox import SandboxedEnvironment

SHIPPED = Path(__file__).parent / "templates"
PARTS = {"email": ("subject.txt", "body.txt", "body.html"), "sms": ("sms.txt",)}

GSM7 = set(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
GSM7_EXTENDED = set("^{}\\[~]|€\f")


@dataclass(frozen=True)
class Rendered:
    subject: str
    text: str
    html: str


class TemplateError(Exception):
    """A template that cannot render: where (file and line) and why."""

    def __init__(self, path: str, line: int, message: str) -> None:
        super().__init__(f"{path}:{line}: {message}")
        self.path, self.line, self.message = path, line, message


def environment(loader: jinja2.BaseLoader | None = None) -> SandboxedEnvironment:
    return SandboxedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=False,
    )


class Renderer:
    """Templates from the operator's directory, then the shipped ones; strict and sandboxed.

    Where a part is found and its compiled template are kept for the renderer's life (a run
    makes its own): a bulk run renders the same few parts thousands of times, and finding one
    costs a stat per directory plus Jinja's own check that the file did not change.
    """

    def __init__(self, override: Path | None, default_locale: str) -> None:
        self.roots = [p for p in (override, SHIPPED) if p is not None]
        self.env = environment(jinja2.FileSystemLoader([str(p) for p in self.roots]))
        self.default_locale = default_locale
        self.names: dict[tuple[str, str, str], str] = {}
        self.compiled: dict[str, jinja2.Template] = {}

    def find(self, template: str, locale: str, part: str) -> Path | None:
        for root in self.roots:
            if (path := root / locale / template / part).is_file():
                return path
        return None

    def part(self, locale: str, template: str, part: str, values: dict[str, Any]) -> str:
        """One part, in the locale if it has the template, else in the default locale."""
        if (name := self.names.get((locale, template, part))) is None:
            found = locale if self.find(template, locale, part) else self.default_locale
            name = self.names[locale, template, part] = f"{found}/{template}/{part}"
        locale = name.split("/", 1)[0]
        try:
            if (compiled := self.compiled.get(name)) is None:
                compiled = self.compiled[name] = self.env.get_template(name)
            return compiled.render(values).strip()
        except jinja2.TemplateSyntaxError as exc:
            raise TemplateError(
                exc.filename or name, exc.lineno, exc.message or "syntax error"
            ) from exc
        except jinja2.TemplateNotFound as exc:
            raise TemplateError(name, 0, "no such template") from exc
        except (
            jinja2.UndefinedError,
            jinja2.exceptions.SecurityError,
            TypeError,
            ValueError,
        ) as exc:
            path = str(self.find(template, locale, part) or name)
            raise TemplateError(path, _line_in(exc.__traceback__, path), str(exc)) from exc

    def email(self, template: str, locale: str, values: dict[str, Any]) -> Rendered:
        subject = " ".join(self.part(locale, template, "subject.txt", values).split())
        text = self.part(locale, template, "body.txt", values) + "\n"
        html = self.part(locale, template, "body.html", values) + "\n"
        return Rendered(subject, text, html)

    def sms(self, template: str, locale: str, values: dict[str, Any]) -> str:
        return self.part(locale, template, "sms.txt", values)


def _line_in(trace: TracebackType | None, path: str) -> int:
    """The template line of an error: Jinja puts the template's own frames into the traceback."""
    line = 0
    while trace is not None:
        if trace.tb_frame.f_code.co_filename == path:
            line = trace.tb_lineno
        trace = trace.tb_next
    return line


def sms_segments(text: str) -> int:
    """How many SMS a body costs: GSM-7 160 alone or 153 per part; otherwise UCS-2 70 or 67."""
    if all(c in GSM7 or c in GSM7_EXTENDED for c in text):
        units = len(text) + sum(1 for c in text if c in GSM7_EXTENDED)
        return 1 if units <= 160 else math.ceil(units / 153)
    units = len(text.encode("utf-16-le")) // 2
    return 1 if units <= 70 else math.ceil(units / 67)
