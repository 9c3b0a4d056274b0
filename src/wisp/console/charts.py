"""Charts as inline SVG, drawn on the server: no JavaScript, no chart library.

Each chart is a ``<svg class="chart">`` with one ``<rect class="bar ...">`` per
non-empty step or one ``<polyline class="line ...">`` per series, a legend naming
each series (``<g class="legend">``), the unit beside the peak tick, and a ``<title>``
on each bar and on each point of a line for hovering (``<circle class="hit ...">``);
``data-total`` carries the sum a reader (or a test) can check against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

from wisp.observability.rollups import Point

WIDTH, HEIGHT = 640, 160
LEFT, BOTTOM, TOP = 44, 18, 8
MB = 1024 * 1024


def _frame(
    title: str,
    peak: float,
    points: Sequence[Point],
    total: float,
    body: str,
    unit: str,
    legend: Sequence[tuple[str, str]],
) -> str:
    plot_h = HEIGHT - BOTTOM - TOP
    first = _clock(points[0].start) if points else ""
    last = _clock(points[-1].start) if points else ""
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-total="{total:g}" data-unit="{escape(unit)}">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>'
        f'<text class="tick peak" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">'
        f"{_short(peak)}</text>"
        f'<text class="tick unit" x="{LEFT - 4}" y="{TOP + 20}" text-anchor="end">'
        f"{escape(unit)}</text>"
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>'
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 4}">{first}</text>'
        f'<text class="tick" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{last}</text>'
        f"{body}{_legend(legend)}</svg>"
    )


def _legend(entries: Sequence[tuple[str, str]]) -> str:
    """Swatches and names at the top right, one per series, right to left."""
    parts, x = [], float(WIDTH)
    for css, label in reversed(entries):
        x -= 7 * len(label) + 22
        parts.append(
            f'<g class="key {css}"><rect class="swatch {css}" x="{x:.0f}" y="{TOP - 6}" '
            f'width="10" height="10"/><text class="tick" x="{x + 14:.0f}" y="{TOP + 3}">'
            f"{escape(label)}</text></g>"
        )
    return f'<g class="legend">{"".join(reversed(parts))}</g>'


def bars(
    title: str,
    points: Sequence[Point],
    stacks: Sequence[tuple[str, str, Callable[[Point], float]]],
    unit: str,
) -> str:
    """Stacked bars: ``stacks`` are (css class, legend label, value) from the bottom up."""
    totals = [sum(value(p) for _, _, value in stacks) for p in points]
    peak = max(totals, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(points), 1)
    parts: list[str] = []
    for i, point in enumerate(points):
        base: float = TOP + plot_h
        for css, label, value in stacks:
            v = value(point)
            if v <= 0:
                continue
            h = max(1.0, v / peak * plot_h)
            base -= h
            x = LEFT + i * step
            hover = f"{_clock(point.start)}: {v:g} {label}"
            parts.append(
                f'<rect class="bar {css}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}">'
                f"<title>{escape(hover)}</title></rect>"
            )
    legend = [(css, label) for css, label, _ in stacks]
    return _frame(title, peak, points, sum(totals), "".join(parts), unit, legend)


def lines(
    title: str,
    points: Sequence[Point],
    series: Sequence[tuple[str, str, Callable[[Point], float | None]]],
    unit: str,
    scale: Callable[[float], float] = lambda v: v,
) -> str:
    """One polyline per series, through the steps that have a value; each point has a
    hover target with its time, series and value in ``unit``."""
    values = [[value(p) for p in points] for _, _, value in series]
    present = [scale(v) for row in values for v in row if v is not None]
    peak = max(present, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(points), 1)
    parts: list[str] = []
    for (css, label, _), row in zip(series, values, strict=True):
        marks = [
            (LEFT + (i + 0.5) * step, TOP + plot_h - scale(v) / peak * plot_h, points[i], scale(v))
            for i, v in enumerate(row)
            if v is not None
        ]
        if not marks:
            continue
        coords = " ".join(f"{x:.1f},{y:.1f}" for x, y, _, _ in marks)
        parts.append(f'<polyline class="line {css}" points="{coords}"/>')
        for x, y, point, v in marks:
            if len(marks) < 3:  # a line needs a dot to be seen with one or two points
                parts.append(f'<circle class="dot {css}" cx="{x:.1f}" cy="{y:.1f}" r="2.5"/>')
            hover = f"{_clock(point.start)}: {label} {v:g} {unit}"
            parts.append(
                f'<circle class="hit {css}" cx="{x:.1f}" cy="{y:.1f}" r="6">'
                f"<title>{escape(hover)}</title></circle>"
            )
    legend = [(css, label) for css, label, _ in series]
    return _frame(title, peak, points, sum(present), "".join(parts), unit, legend)


def dashboard(points: Sequence[Point]) -> dict[str, str]:
    """The four charts of a function or a namespace."""
    return {
        "invocations": bars(
            "Invocations and errors (per step)",
            points,
            [
                ("ok", "succeeded", lambda p: p.count - p.errors),
                ("errors", "errors", lambda p: p.errors),
            ],
            unit="calls",
        ),
        "duration": lines(
            "Duration p50 / p95 (ms)",
            points,
            [
                ("p50", "p50", lambda p: p.percentile(0.5)),
                ("p95", "p95", lambda p: p.percentile(0.95)),
            ],
            unit="ms",
        ),
        "cold": bars(
            "Cold starts (per step)", points, [("cold", "cold starts", lambda p: p.cold)], "starts"
        ),
        "memory": lines(
            "Peak memory (MB)",
            points,
            [("memory", "peak memory", lambda p: p.memory_max or None)],
            unit="MB",
            scale=lambda v: round(v / MB, 1),
        ),
    }


def _clock(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).strftime("%m-%d %H:%M")


def _short(value: float) -> str:
    if value >= 1_000_000:
        return f"{value / 1_000_000:.1f}M"
    if value >= 1000:
        return f"{value / 1000:.1f}k"
    return f"{value:g}"
