"""A part filled into its stencil reads exactly as the part rendered in full, and a part whose
templates could change a value after writing it (a filter block, a macro, `self`) is not
stencilled at all."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from renewd.config.model import MessageSettings
from renewd.delivery.messages import sample_decision, sample_mailbox, variables
from renewd.delivery.templating import Renderer, TemplateError
from renewd.policy.loader import load_policy, policy_files

LAYOUT = (
    "<title>{% block title %}{% endblock %}</title><p>{{ brand|e }}</p>"
    "{% block content %}{% endblock %}<footer>{{ name }}</footer>"
)
# (part, source, stencilled): whether some written value is filled in rather than rendered
PARTS = [
    ("body.html", "<p>{{ name }} {{ name|e }} {{ n }}</p>{% if n > 1 %}many{% endif %}", True),
    ("body.txt", "{{ name }} / {{ name|e }} / {{ n }} / {{ flag }} / {{ nothing }}", True),
    ("body.html", "{% autoescape false %}{{ name }}{% endautoescape %}|{{ name }}", True),
    (
        "body.html",
        '{% extends "layout.html" %}{% block title %}{{ name }}{% endblock %}'
        "{% block content %}{% if flag %}{{ brand }}{% else %}{{ n }}{% endif %}{% endblock %}",
        True,
    ),
    ("body.txt", '{% include "inc.txt" %} and {{ brand }}', True),
    ("body.txt", "{% filter upper %}{{ name }}{% endfilter %}{{ brand }}", True),
    ("body.txt", "{% set y %}{{ name }}{% endset %}{{ y|upper }}{{ brand }}", True),
    ("body.txt", "{% macro m(v) %}[{{ v }}]{% endmacro %}{{ m(name)|upper }}{{ name }}", False),
    ("body.txt", "{{ name|upper }} {{ name }}", False),
    ("body.txt", "{% for c in name %}{{ c }}.{% endfor %}", False),
    ("body.txt", "{% set name = 'x' %}{{ name }}", False),
]
VALUES: list[dict[str, Any]] = [
    {"name": "mb-1", "n": 1, "flag": True, "brand": "Example", "nothing": None},
    {"name": "<b>&'\"</b>", "n": 2, "flag": False, "brand": "A & B", "nothing": None},
    {"name": "\x00&0\x00 not a marker", "n": 3, "flag": 1, "brand": "<x>", "nothing": None},
    {"name": "mb-2", "n": 2.5, "flag": "", "brand": "", "nothing": 0},
]


def renderers(tmp_path: Path, part: str, source: str) -> tuple[Renderer, Renderer]:
    folder = tmp_path / "en" / "t"
    folder.mkdir(parents=True)
    (folder / part).write_text(source, encoding="utf-8")
    (tmp_path / "layout.html").write_text(LAYOUT, encoding="utf-8")
    (tmp_path / "inc.txt").write_text("{{ name }}{% if flag %}!{% endif %}", encoding="utf-8")
    full = Renderer(tmp_path, "en")
    full.stencils.limit = 0
    return Renderer(tmp_path, "en"), full


@pytest.mark.parametrize(("part", "source", "stencilled"), PARTS)
def test_a_filled_stencil_reads_as_the_full_render(
    tmp_path: Path, part: str, source: str, stencilled: bool
) -> None:
    fast, full = renderers(tmp_path, part, source)
    for values in VALUES * 2:  # the second time round, from the stencils made the first
        assert fast.part("en", "t", part, values) == full.part("en", "t", part, values)
    assert not full.stencils.made
    made = [stencil for stencil in fast.stencils.made.values() if stencil is not None]
    assert bool(made and any(stencil.holes for stencil in made)) is stencilled


def test_a_part_using_self_renders_in_full(tmp_path: Path) -> None:
    source = "{% block t %}{{ name }}{% endblock %}{{ self.t()|upper }}"
    fast, full = renderers(tmp_path, "body.txt", source)
    for values in VALUES:
        assert fast.part("en", "t", "body.txt", values) == full.part("en", "t", "body.txt", values)
    assert fast.stencils.shapes == {"en/t/body.txt": None}


def test_a_missing_value_is_the_same_error(tmp_path: Path) -> None:
    fast, full = renderers(tmp_path, "body.txt", "{{ brand }} {{ nam }}")
    values = {"brand": "x", "name": "y"}
    errors = []
    for renderer in (fast, full):
        with pytest.raises(TemplateError) as error:
            renderer.part("en", "t", "body.txt", values)
        errors.append(str(error.value))
    assert errors[0] == errors[1]
    assert "did you mean 'name'?" in errors[0]


def test_the_shipped_templates_fill_as_they_render() -> None:
    """Every shipped part, in every locale, over values that take each branch."""
    policy = load_policy(policy_files(Path(__file__).parents[2] / "rules"))
    fast, full = Renderer(None, "en"), Renderer(None, "en")
    full.stencils.limit = 0
    for locale in ("en", "zh-CN", "de"):
        for rule in policy.rules:
            for days in (-29, -7, -1, 0, 1, 3, 7, 30):
                mailbox = sample_mailbox(locale)
                decision = sample_decision(rule, mailbox)
                values = variables(mailbox, decision, policy, MessageSettings())
                values["days_left"], values["days_since_expiry"] = days, -days
                values["auto_renew"] = days % 2 == 0
                for part in ("subject.txt", "body.txt", "body.html", "sms.txt"):
                    shown = fast.part(locale, rule.template, part, values)
                    assert shown == full.part(locale, rule.template, part, values)
    assert any(stencil is not None for stencil in fast.stencils.made.values())
