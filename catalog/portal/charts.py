"""Charts drawn on the server as inline SVG: no script, no library, readable without colour
(each chart comes with the same numbers as a table for screen readers and printing)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from html import escape
from typing import Any

from markupsafe import Markup

WIDTH, HEIGHT, PAD = 640, 200, 30


@dataclass(frozen=True)
class Chart:
    svg: Markup
    points: int


def quality_chart(runs: Sequence[Mapping[str, Any]], lang: str) -> Chart:
    """Pass rate (line, 0–100 %) and quarantined rows (bars) per run, oldest first."""
    data = [r for r in runs if r.get("pass_rate") is not None or r.get("rows_quarantined") is not None]
    if not data:
        return Chart(Markup(""), 0)
    n = len(data)
    step = (WIDTH - 2 * PAD) / max(n, 1)
    bad_max = max(int(r.get("rows_quarantined") or 0) for r in data) or 1
    inner_h = HEIGHT - 2 * PAD
    bars, points = [], []
    for i, r in enumerate(data):
        x = PAD + i * step
        bad = int(r.get("rows_quarantined") or 0)
        h = inner_h * bad / bad_max
        label = escape(str(r.get("run_id", "")))
        bars.append(
            f'<rect x="{x + step * 0.15:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{step * 0.7:.1f}" '
            f'height="{h:.1f}" class="bar"><title>{label}: {bad}</title></rect>'
        )
        rate = r.get("pass_rate")
        if rate is not None:
            points.append(f"{x + step / 2:.1f},{HEIGHT - PAD - inner_h * float(rate):.1f}")
    title = "质量趋势" if lang != "en" else "Quality history"
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" aria-label="{title}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<text x="2" y="{PAD}" class="tick">100%</text><text x="2" y="{HEIGHT - PAD}" class="tick">0</text>'
        + "".join(bars)
        + (f'<polyline points="{" ".join(points)}" class="line" fill="none"/>' if points else "")
        + "</svg>"
    )
    return Chart(Markup(svg), n)  # noqa: S704 (numbers and escape()d names only)


def bar_chart(values: Sequence[tuple[str, int]], label: str) -> Chart:
    """Bars of ``(name, value)`` pairs, in order (e.g. calls per day)."""
    if not values:
        return Chart(Markup(""), 0)
    n = len(values)
    step = (WIDTH - 2 * PAD) / n
    top = max(v for _, v in values) or 1
    inner_h = HEIGHT - 2 * PAD
    bars = []
    for i, (name, v) in enumerate(values):
        h = inner_h * v / top
        x = PAD + i * step
        bars.append(
            f'<rect x="{x + step * 0.1:.1f}" y="{HEIGHT - PAD - h:.1f}" width="{step * 0.8:.1f}" '
            f'height="{h:.1f}" class="bar"><title>{escape(name)}: {v}</title></rect>'
        )
    svg = (
        f'<svg viewBox="0 0 {WIDTH} {HEIGHT}" class="chart" role="img" aria-label="{escape(label)}" '
        f'xmlns="http://www.w3.org/2000/svg">'
        f'<line x1="{PAD}" y1="{HEIGHT - PAD}" x2="{WIDTH - PAD}" y2="{HEIGHT - PAD}" class="axis"/>'
        f'<text x="2" y="{PAD}" class="tick">{top}</text>' + "".join(bars) + "</svg>"
    )
    return Chart(Markup(svg), n)  # noqa: S704 (numbers and escape()d names only)
