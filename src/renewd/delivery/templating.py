"""Message templates: where each one lives, and rendering them strictly.

Layout: `{locale}/{template}/subject.txt, body.txt, body.html` for email and `sms.txt` for SMS,
looked up first in the operator's directory (config `templates`), then in the shipped set.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import jinja2

from renewd.delivery.gsm import sms_text
from renewd.delivery.limits import LimitError, restore, start
from renewd.delivery.sandbox import LimitedEnvironment, LimitedLoader
from renewd.delivery.stencil import Stencils

SHIPPED = Path(__file__).parent / "templates"
PARTS = {"email": ("subject.txt", "body.txt", "body.html"), "sms": ("sms.txt",)}

# The first line of every part `renewd init --template` writes; `check` refuses a part that still
# has it, so a skeleton never reaches a customer.
SKELETON_MARK = "renewd-skeleton"
_SKELETON_LINE = "{#- " + SKELETON_MARK + ": write this message, then delete this line -#}\n"
_SKELETON = {
    "subject.txt": "{{ brand }}: about your mailbox {{ mailbox }}\n",
    "body.txt": (
        "Hello,\n\nThis is about your {{ brand }} mailbox {{ mailbox }}, which expires on "
        "{{ expires_on }}.\n\nRenew: {{ renewal_url }}\n\nThe {{ brand }} team\n"
    ),
    "body.html": (
        '{{% extends "{layout}" %}}\n'
        "{{% block title %}}{{{{ brand|e }}}}: about your mailbox {{{{ mailbox|e }}}}"
        "{{% endblock %}}\n"
        "{{% block heading %}}About your mailbox{{% endblock %}}\n"
        "{{% block content -%}}\n"
        '<p style="margin:0 0 16px;">This is about your {{{{ brand|e }}}} mailbox '
        "<strong>{{{{ mailbox|e }}}}</strong>, which expires on {{{{ expires_on|e }}}}.</p>\n"
        "{{%- endblock %}}\n"
    ),
    "sms.txt": "[{{ brand }}] About your mailbox {{ mailbox }}: renew at {{ renewal_url }}\n",
}


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


def environment(loader: jinja2.BaseLoader | None = None) -> LimitedEnvironment:
    return LimitedEnvironment(
        loader=loader,
        undefined=jinja2.StrictUndefined,
        autoescape=jinja2.select_autoescape(enabled_extensions=("html",), default_for_string=False),
        keep_trailing_newline=False,
        auto_reload=False,  # a renderer lives for one run or check: no stat per layout per render
    )


class Renderer:
    """Templates from the operator's directory, then the shipped ones; strict, sandboxed and
    limited (see `limits`).

    Where a part is found and its compiled template are kept for the renderer's life (a run
    makes its own): a bulk run renders the same few parts thousands of times, and finding one
    costs a stat per directory plus Jinja's own check that the file did not change. So are its
    stencils (`stencil`): most messages fill in a part rendered once rather than render it.
    """

    def __init__(self, override: Path | None, default_locale: str) -> None:
        self.roots = [p for p in (override, SHIPPED) if p is not None]
        self.env = environment(LimitedLoader([str(p) for p in self.roots]))
        self.default_locale = default_locale
        self.names: dict[tuple[str, str, str], str] = {}
        self.compiled: dict[str, jinja2.Template] = {}
        self.stencils = Stencils(self.env)

    def find(self, template: str, locale: str, part: str) -> Path | None:
        """The file of a part; a locale or template name that is not a plain folder name (a
        snapshot row's locale is data) finds nothing, so it never reaches outside the roots."""
        if not all(_plain(name) for name in (template, locale, part)):
            return None
        for root in self.roots:
            if (path := root / locale / template / part).is_file():
                return path
        return None

    def part(self, locale: str, template: str, part: str, values: dict[str, Any]) -> str:
        """One part, in the locale if it has the template, else in the default locale.

        Whatever goes wrong inside the template (a syntax error, an unknown variable, a limit,
        an include that is not there, Python running out of stack or memory) is a
        TemplateError that names the template file and line where it happened.
        """
        if (name := self.names.get((locale, template, part))) is None:
            found = locale if self.find(template, locale, part) else self.default_locale
            name = self.names[locale, template, part] = f"{found}/{template}/{part}"
        try:
            if (compiled := self.compiled.get(name)) is None:
                compiled = self.compiled[name] = self.env.get_template(name)

            def full(given: dict[str, Any]) -> str:
                previous = start()
                try:
                    return compiled.render(given)
                finally:
                    restore(previous)

            filled = self.stencils.render(name, values, full)
            return (filled if filled is not None else full(values)).strip()
        except jinja2.TemplateSyntaxError as exc:
            path = exc.filename or self._path(name)
            raise TemplateError(path, exc.lineno, exc.message or "syntax error") from exc
        except Exception as exc:  # anything a template does wrong is that template's error
            path, line = _where(exc, self._path(name))
            reason = _reason(exc, included=line > 0) + _known_name(exc, values)
            raise TemplateError(path, line, reason) from exc

    def _path(self, name: str) -> str:
        """The file a template name stands for, to name in an error."""
        locale, template, part = name.split("/", 2)
        return str(self.find(template, locale, part) or name)

    def email(self, template: str, locale: str, values: dict[str, Any]) -> Rendered:
        subject = " ".join(self.part(locale, template, "subject.txt", values).split())
        text = self.part(locale, template, "body.txt", values) + "\n"
        html = self.part(locale, template, "body.html", values) + "\n"
        return Rendered(subject, text, html)

    def sms(self, template: str, locale: str, values: dict[str, Any]) -> str:
        return sms_text(self.part(locale, template, "sms.txt", values))


def skeleton(locale: str, override: Path | None = None) -> dict[str, str]:
    """A new template's parts, to be written in: the HTML body extends the locale's layout (the
    operator's or the shipped one), else the base layout."""
    layouts = [root / locale / "_layout.html" for root in (override, SHIPPED) if root]
    layout = f"{locale}/_layout.html" if any(p.is_file() for p in layouts) else "_layout.html"
    return {
        part: _SKELETON_LINE + (text.format(layout=layout) if part == "body.html" else text)
        for part, text in _SKELETON.items()
    }


def _plain(name: str) -> bool:
    return bool(name) and name not in (".", "..") and not any(c in name for c in "/\\\0")


def _where(exc: BaseException, path: str) -> tuple[str, int]:
    """The innermost template line of an error (Jinja puts a frame for each template line into
    the traceback: an include's error is in the included file); else the part's own file."""
    if isinstance(exc, LimitError) and exc.path:
        return exc.path, exc.line
    where = (path, 0)
    trace = exc.__traceback__
    while trace is not None:
        if "__jinja_exception__" in trace.tb_frame.f_globals:
            where = (trace.tb_frame.f_code.co_filename, trace.tb_lineno)
        trace = trace.tb_next
    return where


def _known_name(exc: BaseException, values: dict[str, Any]) -> str:
    """` (did you mean 'expires_on'?)` for a misspelt variable (closer than `suggest` asks:
    'amount_due' is no 'account_id')."""
    if not isinstance(exc, jinja2.UndefinedError):
        return ""
    found = re.fullmatch(r"'(\w+)' is undefined", str(exc))
    close = difflib.get_close_matches(found[1], values, n=1, cutoff=0.75) if found else []
    return f" (did you mean {close[0]!r}?)" if close else ""


def _reason(exc: BaseException, included: bool) -> str:
    if isinstance(exc, jinja2.TemplateNotFound) and not included:
        return "no such template"
    if isinstance(exc, jinja2.TemplateNotFound):
        return (
            f"no template {exc.name!r} to include (names are relative to the template "
            "directories; '..' cannot leave them)"
        )
    if isinstance(exc, RecursionError):
        return "nested too deeply (a macro or include that calls itself?)"
    if isinstance(exc, MemoryError):
        return "ran out of memory"
    message = " ".join(str(exc).split())
    return (
        message
        if isinstance(exc, LimitError | jinja2.TemplateError)
        else (f"{type(exc).__name__}: {message}" if message else type(exc).__name__)
    )
