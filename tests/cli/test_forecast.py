"""`renewd forecast`: the simulation counted, in a table and in a page a real browser opens.

The example snapshot (300 mailboxes over a year, five bad rows) and the shipped policy, 90 days.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from peers.chromium import opened
from renewd.cli.main import main
from renewd.config.load import load_config
from renewd.core.model import Kind
from renewd.plan import day as day_module
from renewd.plan.forecast import forecast
from renewd.plan.simulate import Simulation
from renewd.plan.tally import action_label
from renewd.policy.loader import load_policy, policy_files

from support import ROOT

START = date(2026, 11, 20)
END = START + timedelta(days=89)
CONFIG = ROOT / "config.example.yaml"


def run(*args: str) -> Result:
    return CliRunner().invoke(main, [*args, "--config", str(CONFIG)], catch_exceptions=False)


@pytest.fixture(scope="module")
def simulated() -> list[tuple[date, list[tuple[str, str, str, str, Decimal | None]]]]:
    """What `simulate` does over the range: per day, (rule, action, channel, currency, amount)."""
    config = load_config(CONFIG)
    policy = load_policy(policy_files(config.rules))
    return [
        (
            plan.day,
            [(d.rule, action_label(d), d.channel, d.currency, d.amount) for d in plan.actions],
        )
        for plan in Simulation(config, policy, config.snapshot_for(START)).run(START, END)
    ]


@pytest.mark.parametrize("part_size", [day_module.PART_SIZE, 16])
def test_forecast_totals_equal_simulates_over_the_same_days(
    simulated: list[tuple[date, list[tuple[str, str, str, str, Decimal | None]]]],
    part_size: int,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(day_module, "PART_SIZE", part_size)  # 16: groups, two processes
    config = load_config(CONFIG)
    policy = load_policy(policy_files(config.rules))
    tally = forecast(config, policy, config.snapshot_for(START), START, END).tally
    actions = Counter((rule, action) for _, acts in simulated for rule, action, *_ in acts)
    assert tally.actions == actions
    assert sum(actions.values()) > 1000  # a range with plenty happening
    messages: Counter[tuple[int, str]] = Counter()
    charges: Counter[tuple[int, str]] = Counter()
    revenue: defaultdict[tuple[int, str], Decimal] = defaultdict(Decimal)
    deletions: Counter[int] = Counter()
    for day, acts in simulated:
        for _, action, channel, currency, amount in acts:
            if channel:
                messages[day.toordinal(), channel] += 1
            elif action == Kind.DEDUCT.value:
                charges[day.toordinal(), currency] += 1
                revenue[day.toordinal(), currency] += amount or Decimal(0)
            else:
                deletions[day.toordinal()] += 1
    assert tally.messages == messages
    assert tally.charges == charges
    assert {k: v for k, v in tally.revenue.items() if v} == {k: v for k, v in revenue.items() if v}
    assert tally.deletions == deletions


def test_forecast_table_totals_are_the_simulation_counted() -> None:
    result = run("forecast", "--from", START.isoformat(), "--days", "90")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    header, total = lines[1].split(), lines[-2].split()
    assert header[:4] == ["WEEK", "EMAIL", "SMS", "CHARGES"]
    assert total[0] == "TOTAL"
    assert len(lines) == 2 + 13 + 2  # 90 days in weeks of seven: 13 rows
    assert "examples/snapshot.csv:302: expires_on" in result.stderr  # bad rows are reported


def test_forecast_by_day_for_a_short_range_and_month_on_request() -> None:
    by_day = run("forecast", "--from", START.isoformat(), "--days", "10").stdout.splitlines()
    assert by_day[1].split()[0] == "DAY" and len(by_day) == 2 + 10 + 2
    by_month = run("forecast", "--from", START.isoformat(), "--by", "month").stdout.splitlines()
    assert [line.split()[0] for line in by_month[2:5]] == ["2026-11", "2026-12", "2027-01"]


def test_an_output_it_cannot_write_is_refused_before_any_work(tmp_path: Path) -> None:
    assert run("forecast", "--out", str(tmp_path / "chart.pdf")).exit_code == 2
    missing = tmp_path / "nowhere" / "chart.html"
    result = run("forecast", "--from", START.isoformat(), "--days", "3", "--out", str(missing))
    assert result.exit_code == 2
    assert f"{missing}: cannot write" in result.stderr


def test_svg_output_is_one_standalone_svg(tmp_path: Path) -> None:
    out = tmp_path / "forecast.svg"
    assert run("forecast", "--from", START.isoformat(), "--out", str(out)).exit_code == 0
    text = out.read_text(encoding="utf-8")
    assert text.startswith('<svg xmlns="http://www.w3.org/2000/svg"')
    assert text.count('<svg class="chart"') == 5  # messages, CNY, USD, at risk, deletions
    assert "http" not in text.replace("http://www.w3.org/2000/svg", "")


def test_the_page_renders_its_charts_in_headless_chromium_with_no_console_errors(
    tmp_path: Path,
) -> None:
    out = tmp_path / "forecast.html"
    result = run("forecast", "--from", START.isoformat(), "--out", str(out))
    assert result.exit_code == 0, result.output
    with opened(out.as_uri()) as page:
        assert page.evaluate("document.body.dataset.ready") == "yes"  # the script ran
        charts = page.evaluate(
            "Array.from(document.querySelectorAll('svg.chart')).map(svg => {"
            " const box = svg.getBoundingClientRect();"
            " const bars = Array.from(svg.querySelectorAll('rect.bar'))"
            "   .filter(bar => bar.getBBox().height > 0).length;"
            " return [svg.getAttribute('aria-label'), box.width, box.height, bars]; })"
        )
        assert len(charts) == 5
        for title, width, height, bars in charts:
            assert width > 500 and height > 200, title
            assert bars > 0, f"{title}: no bar drawn"
        # point at a day: every chart marks it and the day's figures are shown
        page.evaluate(
            "(() => { const svg = document.querySelector('svg.chart');"
            " const box = svg.getBoundingClientRect();"
            " svg.dispatchEvent(new MouseEvent('mousemove', {clientX: box.left + box.width / 2,"
            " clientY: box.top + 100, bubbles: true})); })()"
        )
        readout = page.evaluate("document.getElementById('readout').textContent")
        # the middle of the chart's box: (480 - 70) / 874 of 90 days in, the 43rd day
        assert readout.startswith("2027-01-01: email ") and ", sms " in readout
        guides = page.evaluate(
            "Array.from(document.querySelectorAll('.guide')).map(g => g.getAttribute('visibility'))"
        )
        assert guides == ["visible"] * 5
        assert page.problems == []
