"""Hostile templates and YAML: `renewd check` refuses each one at its file and line, within a
memory limit.

Without renewd's limits each of these runs for minutes or takes gigabytes (a template's work
happens in C, holding the GIL, where no timer can stop it; PyYAML expands aliases without end).
The check runs in a child process limited to 1 GiB of address space and a generous timeout, so
a limit that fails shows as an out-of-memory or a timeout, not a machine brought down.
"""

from __future__ import annotations

import resource
import subprocess
import sys
from pathlib import Path

import pytest

from renewd.act.preflight import check

MEMORY = 1 << 30

HEAD = "timezone: Asia/Shanghai\neditions: {free: [free], paid: [standard]}\nrules:\n"

# (template text, line of the problem, message)
HOSTILE = [
    ("{{ 'x' * 10**9 }}", 1, "'*' would make 1,000,000,000 characters or items"),
    ("\n{{ '%999999999d' % 1 }}", 2, "'%' formatting would make 1,000,000,011 characters"),
    ("{{ 2**(10**10) }}", 1, "'**' would make a number of 20,000,000,000 bits; at most 8,192"),
    ("{% for i in range(10**9) %}{% endfor %}", 1, "range() of 1,000,000,000 numbers"),
    (
        "{% macro f(n) %}\n{{ f(n + 1) }}{% endmacro %}{{ f(1) }}",
        2,
        "calls nested more than 32 deep",
    ),
    (
        "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
        1,
        "more than 10,000 loop iterations and calls",
    ),
    ("{% for i in range(9000) %}{{ 'x' * 100 }}{% endfor %}", 1, "writes more than 262,144"),
    (
        "{% set ns = namespace(x='xx') %}{% for i in range(64) %}"
        "{% set ns.x = ns.x ~ ns.x %}{% endfor %}",
        1,
        "'~' would make 524,288 characters",
    ),
    ("{{ 'x'.center(10**9) }}", 1, "center() would make 1,000,000,000 characters"),
    ("{{ 'x'|indent(10**8) }}", 1, "the indent filter would make"),
    ("{{ '{:>999999999}'.format(1) }}", 1, "format() would make 1,000,000,000 characters"),
    ("{{ '%999999999d'|format(1) }}", 1, "the format filter would make 1,000,000,011"),
    (
        "{% set a = ['x' * 100000, 'x' * 100000] %}{% set b = [a, a] %}{{ [b, b] }}",
        1,
        "a literal would make 400,006 characters",
    ),
    ("{{ range(10000)|join('x' * 1000) }}", 1, "the join filter would make 10,046,660"),
    ("{{ (1).to_bytes(10**9, 'big') }}", 1, "to_bytes() would make 1,000,000,000 characters"),
    ("{{ [0]|batch(10**9, 'x')|list }}", 1, "the batch filter would make 2,000,000,000"),
    ("{{ lipsum(10**9) }}", 1, "'lipsum' is undefined"),
    ("{{ 1 / 0 }}", 1, "ZeroDivisionError: division by zero"),
    ("{{ ''.__class__.__mro__ }}", 1, "access to attribute '__class__' of 'str' object is unsafe"),
]


def limited() -> None:
    resource.setrlimit(resource.RLIMIT_AS, (MEMORY, MEMORY))


def write_project(root: Path, templates: list[str]) -> Path:
    (root / "rules").mkdir()
    rules = "".join(
        f"  - {{id: t{n}, when: {{days_to_expiry: 3}}, then: {{notify: [sms], template: t{n}}}}}\n"
        for n in range(len(templates))
    )
    (root / "rules" / "policy.yaml").write_text(HEAD + rules, encoding="utf-8")
    for n, text in enumerate(templates):
        folder = root / "templates" / "en" / f"t{n}"
        folder.mkdir(parents=True)
        (folder / "sms.txt").write_text(text, encoding="utf-8")
    config = root / "config.yaml"
    config.write_text("rules: rules\ntemplates: templates\nlocales: [en]\n", encoding="utf-8")
    return config


def check_limited(config: Path) -> tuple[int, list[str]]:
    """`renewd check` in a child limited to MEMORY: its exit code and its lines, paths relative."""
    command = [str(Path(sys.executable).parent / "renewd"), "check", "--config", str(config)]
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=300, preexec_fn=limited, check=False
    )
    return done.returncode, done.stderr.replace(f"{config.parent}/", "").splitlines()


def test_check_refuses_every_hostile_template_at_its_line(tmp_path: Path) -> None:
    config = write_project(tmp_path, [text for text, _, _ in HOSTILE])
    code, lines = check_limited(config)
    assert code == 1, lines
    assert len(lines) == len(HOSTILE), lines
    for n, (line, (_, number, message)) in enumerate(zip(lines, HOSTILE, strict=True)):
        assert line.startswith(f"templates/en/t{n}/sms.txt:{number}: {message}"), line


def problems(root: Path, templates: dict[str, str]) -> list[str]:
    config = write_project(root, list(templates.values()))
    return [str(p).replace(f"{root}/", "") for p in check(config)]


def test_an_include_outside_the_templates_names_the_including_file_and_line(
    tmp_path: Path,
) -> None:
    found = problems(tmp_path, {"a": "Hello\n\n{% include '../../../../../etc/passwd' %}\n"})
    assert found == [
        "templates/en/t0/sms.txt:3: no template '../../../../../etc/passwd' to include (names "
        "are relative to the template directories; '..' cannot leave them)"
    ]


def test_an_error_in_an_included_template_names_that_template(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a": "{% include 'en/t1/sms.txt' %}", "b": "one\ntwo {{ nope }}\n"})
    assert found == ["templates/en/t1/sms.txt:2: 'nope' is undefined"]


def test_a_template_that_includes_itself_is_stopped(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a": "x\n{% include 'en/t0/sms.txt' %}"})
    assert found == ["templates/en/t0/sms.txt:2: more than 32 includes, imports and extends"]


def test_a_template_file_too_large_is_refused_before_it_is_read(tmp_path: Path) -> None:
    found = problems(tmp_path, {"a": "line\n" * 60_000})
    assert found == ["templates/en/t0/sms.txt:52429: template larger than 256 KiB"]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{% for i in range(3) %}{{ i }}{% endfor %}", "012"),
        ("{% macro m(x) %}<{{ x }}>{% endmacro %}{{ m(1) }}{{ m('a' ~ 2) }}", "<1><a2>"),
        ("{{ 'ab' * 3 }} {{ '%05d' % 42 }} {{ '{:>4}'.format(7) }}", "ababab 00042    7"),
        ("{{ [1, 2]|join(', ') }} {{ 'x'|center(5) }}|", "1, 2   x  |"),
        ("{{ 2 ** 10 }} {{ brand|upper }} {{ (days_left * 2)|string }}", "1024 EXAMPLE MAIL 6"),
        (
            "{% set n = namespace(k=0) %}{% for c in 'abc' %}{% set n.k = n.k + 1 %}"
            "{% endfor %}{{ n.k }}",
            "3",
        ),
    ],
)
def test_ordinary_templates_still_render(tmp_path: Path, text: str, expected: str) -> None:
    from renewd.delivery.templating import Renderer

    folder = tmp_path / "en" / "t"
    folder.mkdir(parents=True)
    (folder / "sms.txt").write_text(text, encoding="utf-8")
    values = {"brand": "Example Mail", "days_left": 3}
    assert Renderer(tmp_path, "en").part("en", "t", "sms.txt", values) == expected


def alias_bomb(levels: int, width: int = 9) -> str:
    """`&a0 [x, x, ...]`, then each level a list of `width` aliases of the one before."""
    lines = [f"      a0: &a0 [{', '.join(['{edition: x}'] * width)}]\n"]
    for n in range(1, levels):
        lines.append(f"      a{n}: &a{n} [{', '.join([f'*a{n - 1}'] * width)}]\n")
    return "".join(lines)


def in_list(values: int) -> str:
    return ", ".join(f"e{n}" for n in range(values))


RULE = "rules:\n  - id: {id}\n    when:\n      days_to_expiry: 3\n{when}    then: {{notify: [email]}}\n"
# (file, text, expected problem)
HOSTILE_YAML = [
    (
        "a-aliases.yaml",
        HEAD + RULE.format(id="bomb", when=alias_bomb(7)).removeprefix("rules:\n"),
        "rules/a-aliases.yaml:10: more than 20,000 values in one file once its aliases are expanded",
    ),
    (
        "b-deep-aliases.yaml",
        f"x0: &x0 {'[' * 80}1{']' * 80}\nx1: {'[' * 40}*x0{']' * 40}\n",
        "rules/b-deep-aliases.yaml:2: nested more than 100 levels deep once its aliases are expanded",
    ),
    (
        "c-wide.yaml",
        RULE.format(id="wide", when=f"      edition: {{in: [{in_list(30_000)}]}}\n"),
        "rules/c-wide.yaml:5: more than 20,000 values in one file",
    ),
    (
        "d-huge.yaml",
        RULE.format(id="huge", when=f"      edition: {{in: [{in_list(600_000)}]}}\n"),
        "rules/d-huge.yaml:5: larger than 1 MiB: not a policy or config file renewd reads",
    ),
    (
        "e-self.yaml",
        "a: &a [1, *a]\n",
        "rules/e-self.yaml:1: an alias inside its own anchor",
    ),
]


def test_check_refuses_yaml_bombs_in_policy_files_at_their_line(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    for name, text, _ in HOSTILE_YAML:
        (tmp_path / "rules" / name).write_text(text, encoding="utf-8")
    config = tmp_path / "config.yaml"
    config.write_text("rules: rules\n", encoding="utf-8")
    code, lines = check_limited(config)
    assert (code, lines) == (1, [problem for _, _, problem in HOSTILE_YAML])


def test_check_refuses_an_alias_bomb_in_the_config(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("rules: rules\nguards:\n  x:\n" + alias_bomb(9), encoding="utf-8")
    code, lines = check_limited(config)
    assert (code, lines) == (
        1,
        ["config.yaml:7: more than 20,000 values in one file once its aliases are expanded"],
    )


def test_a_policy_of_a_hundred_megabytes_is_refused_without_reading_it(tmp_path: Path) -> None:
    (tmp_path / "rules").mkdir()
    with (tmp_path / "rules" / "big.yaml").open("w", encoding="utf-8") as file:
        file.write("# " + "x" * 100 + "\n")
        file.truncate(111 << 20)  # 111 MiB, mostly NUL bytes past the first line
    config = tmp_path / "config.yaml"
    config.write_text("rules: rules\n", encoding="utf-8")
    code, lines = check_limited(config)
    assert (code, lines) == (
        1,
        ["rules/big.yaml:2: larger than 1 MiB: not a policy or config file renewd reads"],
    )
