"""`forecast --out`: the forecast as one self-contained HTML page, or one SVG file.

Everything is inline (styles, charts, a few lines of script); the page's Content-Security-Policy
forbids fetching anything, so it opens the same anywhere, offline, and cannot leak who looked.
"""

from __future__ import annotations

import json
from decimal import Decimal
from html import escape

from renewd.cli.charts import HEIGHT, WIDTH, Series, chart
from renewd.cli.diff_report import amount
from renewd.cli.forecast import table
from renewd.plan.forecast import Forecast
from renewd.policy.model import Policy

ZERO = Decimal(0)
COLORS = {"email": "#4e79a7", "sms": "#f28e2b"}
OTHER = ("#59a14f", "#76b7b2", "#edc948", "#b07aa1", "#ff9da7", "#9c755f")
STYLE = """
body { font: 14px/1.4 system-ui, sans-serif; margin: 24px; color: #222; max-width: 1000px; }
h1 { font-size: 20px; margin: 0 0 4px; } .meta { color: #555; margin: 0 0 16px; }
.cards { display: flex; flex-wrap: wrap; gap: 10px; margin: 0 0 12px; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 8px 12px; min-width: 130px; }
.card b { display: block; font-size: 18px; } .card span { color: #555; font-size: 12px; }
#readout { height: 20px; color: #333; font-variant-numeric: tabular-nums; margin: 6px 0; }
svg { display: block; } .title { font-size: 14px; font-weight: 600; fill: #222; }
.axis, .legend { font-size: 11px; fill: #555; } .grid { stroke: #e5e5e5; }
.line { fill: none; stroke-width: 2; } .guide { stroke: #999; stroke-dasharray: 3 3; }
.empty { font-size: 13px; fill: #999; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; margin-top: 12px; }
td, th { padding: 2px 6px; text-align: right; border-bottom: 1px solid #eee; }
td, th { white-space: nowrap; font-size: 13px; }
th { font-weight: 600; } td:first-child, th:first-child { text-align: left; }
tr:last-child td { font-weight: 600; }
"""
# A day picked in any chart is marked in all of them, and its figures shown above them.
SCRIPT = """
(function () {
  var days = JSON.parse(document.getElementById("days").textContent);
  var readout = document.getElementById("readout");
  var charts = Array.prototype.slice.call(document.querySelectorAll("svg.chart"));
  function show(index) {
    charts.forEach(function (svg) {
      var left = Number(svg.dataset.left), width = Number(svg.dataset.width);
      var x = left + width * (index + 0.5) / Number(svg.dataset.days);
      var guide = svg.querySelector(".guide");
      guide.setAttribute("x1", x); guide.setAttribute("x2", x);
      guide.setAttribute("visibility", "visible");
    });
    readout.textContent = days[index];
  }
  charts.forEach(function (svg) {
    svg.addEventListener("mousemove", function (event) {
      var box = svg.getBoundingClientRect();
      var scale = box.width / svg.viewBox.baseVal.width;
      var x = (event.clientX - box.left) / scale - Number(svg.dataset.left);
      var index = Math.floor(x / Number(svg.dataset.width) * Number(svg.dataset.days));
      if (index >= 0 && index < days.length) { show(index); }
    });
  });
  document.body.dataset.ready = "yes";
})();
"""


def charts(result: Forecast) -> list[str]:
    """The charts of a forecast, each an `<svg>` placed one under the other."""
    tally, days = result.tally, result.days
    made: list[str] = []

    def add(title: str, bars: list[Series], line: Series | None = None) -> None:
        made.append(chart(title, days, bars, line, y=len(made) * HEIGHT))

    messages = [
        _series(channel, result.daily(tally.messages, channel, 0), COLORS.get(channel, OTHER[n]))
        for n, channel in enumerate(result.channels)
    ]
    add("Messages per day, by channel", messages)
    for n, currency in enumerate(result.currencies):
        revenue = result.daily(tally.revenue, currency, ZERO)
        charges = result.daily(tally.charges, currency, 0)
        texts = [
            f"{currency} {amount(v)} from {c:,} charges"
            for v, c in zip(revenue, charges, strict=True)
        ]
        bar = Series(f"revenue {currency}", [float(v) for v in revenue], texts, OTHER[n % 6])
        add(
            f"Charges per day, {currency}: {amount(sum(revenue, ZERO))} from {sum(charges):,}",
            [bar],
        )
    risk = []
    for n, currency in enumerate(result.currencies):
        counts = result.daily(tally.lapses, currency, 0)
        worth = result.daily(tally.lapsed, currency, ZERO)
        texts = [f"{c:,} ({currency} {amount(w)})" for c, w in zip(counts, worth, strict=True)]
        risk.append(Series(currency, [float(c) for c in counts], texts, OTHER[(n + 3) % 6]))
    add("Renewals at risk: auto-renew on, balance short (by expiry day)", risk)
    deletions = _series("deletions", result.per_day(tally.deletions), "#e15759")
    grace = None
    if result.grace_days is not None:
        grace = _series("in grace", result.per_day(tally.grace), "#555555")
    add("Deletions per day" + (", and mailboxes in grace" if grace else ""), [deletions], grace)
    return made


def page(result: Forecast, policy: Policy) -> str:
    parts = charts(result)
    snapshot = result.snapshot
    meta = (
        f"{result.start} to {result.end} ({len(result.days)} days) · snapshot {snapshot.path} "
        f"({snapshot.rows_read:,} rows, {snapshot.rejected:,} rejected) · policy {policy.digest} "
        f"({policy.timezone})"
    )
    rows = table(result, "week" if len(result.days) > 31 else "day")
    return "\n".join(
        [
            "<!DOCTYPE html>",
            '<html lang="en"><head><meta charset="utf-8">',
            '<meta http-equiv="Content-Security-Policy" content="default-src \'none\'; '
            "style-src 'unsafe-inline'; script-src 'unsafe-inline'\">",
            '<meta name="viewport" content="width=device-width, initial-scale=1">',
            f"<title>renewd forecast {result.start} to {result.end}</title>",
            f"<style>{STYLE}</style></head><body>",
            "<h1>renewd forecast</h1>",
            f'<p class="meta">{escape(meta)}</p>',
            _cards(result),
            '<div id="readout">Point at a day in any chart to see its figures.</div>',
            *(f'<div class="plot">{svg}</div>' for svg in parts),
            _table(rows),
            f'<script type="application/json" id="days">{_json(_readouts(result))}</script>',
            f"<script>{SCRIPT}</script>",
            "</body></html>",
        ]
    )


def svg(result: Forecast) -> str:
    """The charts in one SVG file, one under the other."""
    parts = charts(result)
    height = HEIGHT * len(parts)
    style = STYLE.split("svg {", 1)[1].split("table {", 1)[0]
    return (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{WIDTH}" height="{height}" '
        f'viewBox="0 0 {WIDTH} {height}" font-family="sans-serif">\n'
        f"<style>svg {{{style}</style>\n"
        f'<rect width="{WIDTH}" height="{height}" fill="#fff"/>\n' + "\n".join(parts) + "\n</svg>\n"
    )


def _series(name: str, values: list[int], color: str) -> Series:
    return Series(name, [float(v) for v in values], [f"{v:,}" for v in values], color)


def _cards(result: Forecast) -> str:
    tally = result.tally
    cards = [(f"{sum(tally.messages[k] for k in tally.messages if k[1] == c):,}", f"{c} messages")
             for c in result.channels]  # fmt: skip
    for currency in result.currencies:
        revenue = sum((v for (_, c), v in tally.revenue.items() if c == currency), ZERO)
        charges = sum(n for (_, c), n in tally.charges.items() if c == currency)
        cards.append((f"{currency} {amount(revenue)}", f"revenue from {charges:,} charges"))
    for currency in result.currencies:
        worth = sum((v for (_, c), v in tally.lapsed.items() if c == currency), ZERO)
        lapses = sum(n for (_, c), n in tally.lapses.items() if c == currency)
        cards.append((f"{lapses:,}", f"at risk, {currency} {amount(worth)}"))
    cards.append((f"{sum(tally.deletions.values()):,}", "deletions"))
    if result.grace_days is not None:
        cards.append((f"{max(tally.grace.values(), default=0):,}", "most in grace on one day"))
    return (
        '<div class="cards">'
        + "".join(
            f'<div class="card"><b>{escape(value)}</b><span>{escape(text)}</span></div>'
            for value, text in cards
        )
        + "</div>"
    )


def _table(rows: list[tuple[str, ...]]) -> str:
    head = "".join(f"<th>{escape(cell)}</th>" for cell in rows[0])
    body = "".join(
        "<tr>" + "".join(f"<td>{escape(cell)}</td>" for cell in row) + "</tr>" for row in rows[1:]
    )
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _readouts(result: Forecast) -> list[str]:
    """Per day, the figures the page shows when that day is picked (zeros left out)."""
    head, *rows = table(result, "day")
    return [
        f"{row[0]}: "
        + ", ".join(
            f"{name.lower()} {value}"
            for name, value in zip(head[1:], row[1:], strict=True)
            if value.strip("0.,")
        )
        for row in rows[: len(result.days)]
    ]


def _json(value: object) -> str:
    """JSON safe inside a <script> element: no `</script>` or `<!--` can appear in it."""
    return json.dumps(value).replace("<", "\\u003c").replace(">", "\\u003e").replace("&", "\\u0026")
