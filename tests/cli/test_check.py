"""`renewd check`: every problem is reported as `path:line: message`, typos with a suggestion."""

from __future__ import annotations

import shutil
import textwrap
from pathlib import Path

import pytest

from renewd.act.preflight import check
from renewd.core.errors import UnusableFile
from renewd.delivery.templating import sms_segments

from support import ROOT

GOOD_HEAD = """\
timezone: Asia/Shanghai
editions: {free: [free], paid: [standard]}
"""


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of the shipped config and rules that a test may break."""
    shutil.copytree(ROOT / "rules", tmp_path / "rules")
    (tmp_path / "config.yaml").write_text("rules: rules\nlocales: [en, zh-CN]\n", encoding="utf-8")
    return tmp_path


def problems(project: Path, policy: str | None = None) -> list[str]:
    if policy is not None:
        (project / "rules" / "lifecycle.yaml").write_text(textwrap.dedent(policy), encoding="utf-8")
    return [str(p).replace(str(project) + "/", "") for p in check(project / "config.yaml")]


def line_of(project: Path, start: str) -> int:
    lines = (project / "rules" / "lifecycle.yaml").read_text(encoding="utf-8").splitlines()
    return next(n for n, text in enumerate(lines, start=1) if text.startswith(start))


def test_shipped_config_is_clean() -> None:
    assert check(ROOT / "config.example.yaml") == []


BROKEN = [
    (
        "typo in a lifecycle key",
        GOOD_HEAD + "lifecycle:\n  expired:\n    notfy: [email]\n",
        [
            "rules/lifecycle.yaml:5: unknown key 'notfy' in lifecycle.expired (did you mean 'notify'?)",
            "rules/lifecycle.yaml:4: lifecycle.expired needs 'notify' with at least one channel",
        ],
    ),
    (
        "typo in a section name",
        GOOD_HEAD + "lifecycle:\n  grace_reminders: {days_after: [7], notify: [email]}\n",
        [
            "rules/lifecycle.yaml:4: unknown key 'grace_reminders' in lifecycle (did you mean 'grace_reminder'?)"
        ],
    ),
    (
        "unknown fact",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when: {days_to_expiri: 3}\n    then: {notify: [email]}\n",
        ["rules/lifecycle.yaml:5: unknown fact 'days_to_expiri' (did you mean 'days_to_expiry'?)"],
    ),
    (
        "unknown channel",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when: {days_to_expiry: 3}\n    then: {notify: [emial]}\n",
        ["rules/lifecycle.yaml:6: unknown channel 'emial' (did you mean 'email'?)"],
    ),
    (
        "wrong type for a fact",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when: {days_to_expiry: 3, is_paid: 1}\n    then: {notify: [email]}\n",
        ["rules/lifecycle.yaml:5: is_paid is a boolean, got 1"],
    ),
    (
        "ordering a string",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when:\n      days_to_expiry: 3\n      edition: {gt: a}\n    then: {notify: [email]}\n",
        ["rules/lifecycle.yaml:7: 'gt' needs a number, but edition is a string"],
    ),
    (
        "comparing money with a day count",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when: {days_to_expiry: 3, balance: {lt: {field: days_to_expiry}}}\n    then: {notify: [email]}\n",
        ["rules/lifecycle.yaml:5: cannot compare balance (money) with days_to_expiry (integer)"],
    ),
    (
        "a rule that can match any day",
        GOOD_HEAD
        + "rules:\n  - id: always\n    when: {days_to_expiry: {gt: 3}}\n    then: {notify: [email]}\n",
        [
            "rules/lifecycle.yaml:4: rule 'always' can match on any day: limit days_to_expiry, "
            "days_since_expiry or domain_days_to_expiry to certain days (eq, in or between)"
        ],
    ),
    (
        "a rule that can never match",
        GOOD_HEAD
        + "rules:\n  - id: never\n    when: {days_to_expiry: 3, days_since_expiry: 3}\n    then: {notify: [email]}\n",
        ["rules/lifecycle.yaml:4: rule 'never' can never match: its day conditions contradict"],
    ),
    (
        "a rule that does nothing",
        GOOD_HEAD
        + "rules:\n  - id: idle\n    when: {days_to_expiry: 3}\n    then: {template: x}\n",
        ["rules/lifecycle.yaml:6: rule 'idle' does nothing: 'then' needs notify, deduct or delete"],
    ),
    (
        "two rules of a group with one priority",
        GOOD_HEAD
        + "rules:\n"
        + "  - {id: a, group: g, priority: 2, when: {days_to_expiry: 3}, then: {notify: [email], template: expired}}\n"
        + "  - {id: b, group: g, priority: 2, when: {days_to_expiry: 4}, then: {notify: [email], template: expired}}\n",
        [
            "rules/lifecycle.yaml:5: rule 'b' has the same priority (2) as 'a' in group 'g'; give each rule of a group its own priority"
        ],
    ),
    (
        "an edition name a snapshot field could not hold as it is",
        'timezone: Asia/Shanghai\neditions: {free: [free], paid: ["gold,plus"]}\n',
        [
            "rules/lifecycle.yaml:2: editions.paid: 'gold,plus' is not a name (letters, digits, - _ .)"
        ],
    ),
    (
        "bad timezone",
        "timezone: Mars/Olympus\neditions: {free: [free], paid: [standard]}\n",
        [
            "rules/lifecycle.yaml:1: unknown timezone 'Mars/Olympus' (use an IANA name such as 'Asia/Shanghai')"
        ],
    ),
    (
        "YAML syntax error",
        GOOD_HEAD + "lifecycle:\n  expired: {notify: [email]\n",
        [
            "rules/lifecycle.yaml:5: while parsing a flow mapping expected ',' or '}', but got '<stream end>'"
        ],
    ),
    (
        "duplicate key",
        GOOD_HEAD + "timezone: UTC\n",
        ["rules/lifecycle.yaml:3: duplicate key 'timezone'"],
    ),
    (
        "grace reminder after deletion",
        GOOD_HEAD
        + "lifecycle:\n  grace_reminder: {days_after: [7, 31], notify: [email]}\n  deletion: {days_after: 30}\n",
        ["rules/lifecycle.yaml:4: grace reminders must come before deletion (day 30)"],
    ),
    (
        "missing settings",
        "lifecycle:\n  expired: {notify: [email]}\n",
        [
            "rules/lifecycle.yaml: no policy file sets 'timezone'",
            "rules/lifecycle.yaml: no policy file sets 'editions'",
        ],
    ),
    (
        "a template that does not exist",
        GOOD_HEAD
        + "rules:\n  - id: x\n    when: {days_to_expiry: 3}\n    then: {notify: [sms], template: no-such}\n",
        [
            "rules/lifecycle.yaml:4: rule 'x': no sms template 'no-such/sms.txt' for locale en",
            "rules/lifecycle.yaml:4: rule 'x': no sms template 'no-such/sms.txt' for locale zh-CN",
        ],
    ),
]


@pytest.mark.parametrize(
    ("policy", "expected"), [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN]
)
def test_broken_policy(project: Path, policy: str, expected: list[str]) -> None:
    assert problems(project, policy) == expected


def test_duplicate_rule_ids_across_files_name_both_places(project: Path) -> None:
    (project / "rules" / "zz-extra.yaml").write_text(
        "rules:\n  - id: expired\n    when: {days_since_expiry: 1}\n    then: {notify: [email]}\n",
        encoding="utf-8",
    )
    [message] = problems(project)
    assert message.startswith("rules/zz-extra.yaml:2: rule id 'expired' is already used at ")
    assert message.endswith(f"rules/lifecycle.yaml:{line_of(project, '  expired:')}")


def test_settings_given_twice_name_the_first(project: Path) -> None:
    (project / "rules" / "zz-extra.yaml").write_text("timezone: UTC\n", encoding="utf-8")
    line = line_of(project, "timezone:")
    assert problems(project) == [
        f"rules/zz-extra.yaml:1: 'timezone' is already set in rules/lifecycle.yaml:{line}"
    ]


def test_config_typo_and_bad_values(project: Path) -> None:
    (project / "config.yaml").write_text(
        "rules: rules\nlocale: [en]\ncatch_up_days: -1\n", encoding="utf-8"
    )
    assert problems(project) == [
        "config.yaml:2: unknown key 'locale' in the config (did you mean 'locales'?)",
        "config.yaml:3: catch_up_days must be a whole number from 0 to 366",
    ]


def test_missing_config_cannot_be_checked(tmp_path: Path) -> None:
    """Nothing in it could be read: `check` exits 2 like every command, not 1 (a finding)."""
    with pytest.raises(UnusableFile) as raised:
        check(tmp_path / "nope.yaml")
    assert "config file not found" in str(raised.value) and "--config" in str(raised.value)


def test_template_syntax_error_points_into_the_template(project: Path) -> None:
    override = project / "templates" / "en" / "expired"
    override.mkdir(parents=True)
    (override / "sms.txt").write_text("Hello\n{{ mailbox \n", encoding="utf-8")
    (project / "config.yaml").write_text("rules: rules\ntemplates: templates\n", encoding="utf-8")
    [message] = problems(project)
    assert message.startswith("templates/en/expired/sms.txt:2: ")


def override(project: Path, template: str, part: str, text: str, locale: str = "en") -> None:
    folder = project / "templates" / locale / template
    folder.mkdir(parents=True, exist_ok=True)
    (folder / part).write_text(text, encoding="utf-8")
    (project / "config.yaml").write_text("rules: rules\ntemplates: templates\n", encoding="utf-8")


def test_an_unknown_variable_is_reported_at_its_line(project: Path) -> None:
    override(project, "expired", "body.txt", "Hello {{ mailbox }},\n\nyou owe {{ amount_due }}.\n")
    assert problems(project) == ["templates/en/expired/body.txt:3: 'amount_due' is undefined"]


def test_an_sms_longer_than_the_limit_is_reported(project: Path) -> None:
    override(project, "expired", "sms.txt", "{{ brand }}: " + "续费" * 100 + "\n", locale="zh-CN")
    assert problems(project) == [
        "templates/zh-CN/expired/sms.txt:1: renders to 4 SMS segments, more than 3"
    ]


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("a" * 160, 1),
        ("a" * 161, 2),
        ("a" * 306, 2),
        ("a" * 307, 3),
        ("€" * 80, 1),  # the euro sign takes two GSM-7 units
        ("€" * 81, 2),
        ("续" * 70, 1),
        ("续" * 71, 2),
        ("a" * 69 + "ü", 1),  # ü is in GSM-7
        ("a" * 69 + "ł", 1),  # ł is not: the whole message becomes UCS-2
        ("a" * 70 + "ł", 2),
        ("😀" * 35, 1),  # outside the BMP: two UTF-16 units each
        ("😀" * 36, 2),
    ],
)
def test_sms_segments(text: str, segments: int) -> None:
    assert sms_segments(text) == segments


def test_a_list_too_wide_for_durable_rules_is_refused_not_hung(project: Path) -> None:
    """durable_rules never returns from compiling an `$or` of more than 512 branches."""
    days = list(range(0, 520))
    [message] = problems(
        project,
        GOOD_HEAD
        + f"rules:\n  - id: wide\n    when: {{days_to_expiry: {{in: {days}}}}}\n    then: {{notify: [email]}}\n",
    )
    assert message == "rules/lifecycle.yaml:5: 'in' needs a list of 1 to 256 values"
