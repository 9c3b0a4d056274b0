"""Charts as inline SVG, drawn on the server: no JavaScript, no chart library.

Each chart is a ``<svg class="chart">`` with one ``<rect class="bar ...">`` per
non-empty step or one ``<polyline class="line ...">`` per series, and a ``<title>``
on each bar for hovering; ``data-total`` carries the sum a reader (or a test) can
check against.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from html import escape

from wisp.observability.rollups import Point

WIDTH, HEIGHT = 640, 160
LEFT, BOTTOM, TOP = 44, 18, 8
MB = 1024 * 1024


def _frame(title: str, peak: float, points: Sequence[Point], total: float, body: str) -> str:
    plot_h = HEIGHT - BOTTOM - TOP
    first = _clock(points[0].start) if points else ""
    last = _clock(points[-1].start) if points else ""
    return (
        f'<svg class="chart" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" '
        f'aria-label="{escape(title)}" data-total="{total:g}">'
        f"<title>{escape(title)}</title>"
        f'<line class="axis" x1="{LEFT}" y1="{TOP + plot_h}" x2="{WIDTH}" y2="{TOP + plot_h}"/>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + 8}" text-anchor="end">{_short(peak)}</text>'
        f'<text class="tick" x="{LEFT - 4}" y="{TOP + plot_h}" text-anchor="end">0</text>'
        f'<text class="tick" x="{LEFT}" y="{HEIGHT - 4}">{first}</text>'
        f'<text class="tick" x="{WIDTH}" y="{HEIGHT - 4}" text-anchor="end">{last}</text>'
        f"{body}</svg>"
    )


def bars(
    title: str,
    points: Sequence[Point],
    stacks: Sequence[tuple[str, Callable[[Point], float]]],
) -> str:
    """Stacked bars: ``stacks`` are (css class, value) from the bottom up."""
    totals = [sum(value(p) for _, value in stacks) for p in points]
    peak = max(totals, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(points), 1)
    parts: list[str] = []
    for i, point in enumerate(points):
        base: float = TOP + plot_h
        for css, value in stacks:
            v = value(point)
            if v <= 0:
                continue
            h = max(1.0, v / peak * plot_h)
            base -= h
            x = LEFT + i * step
            label = f"{_clock(point.start)}: {v:g} {css}"
            parts.append(
                f'<rect class="bar {css}" x="{x:.1f}" y="{base:.1f}" '
                f'width="{max(step - 1, 1):.1f}" height="{h:.1f}">'
                f"<title>{escape(label)}</title></rect>"
            )
    return _frame(title, peak, points, sum(totals), "".join(parts))


def lines(
    title: str,
    points: Sequence[Point],
    series: Sequence[tuple[str, Callable[[Point], float | None]]],
    unit: Callable[[float], float] = lambda v: v,
) -> str:
    """One polyline per series, through the steps that have a value."""
    values = [[value(p) for p in points] for _, value in series]
    present = [unit(v) for row in values for v in row if v is not None]
    peak = max(present, default=0) or 1
    plot_h = HEIGHT - BOTTOM - TOP
    step = (WIDTH - LEFT) / max(len(points), 1)
    parts: list[str] = []
    for (css, _), row in zip(series, values, strict=True):
        coords = [
            f"{LEFT + (i + 0.5) * step:.1f},{TOP + plot_h - unit(v) / peak * plot_h:.1f}"
            for i, v in enumerate(row)
            if v is not None
        ]
        if coords:
            parts.append(f'<polyline class="line {css}" points="{" ".join(coords)}"/>')
            for coord in coords if len(coords) < 3 else ():
                x, y = coord.split(",")
                parts.append(f'<circle class="dot {css}" cx="{x}" cy="{y}" r="2.5"/>')
    return _frame(title, peak, points, sum(present), "".join(parts))


def dashboard(points: Sequence[Point]) -> dict[str, str]:
    """The four charts of a function or a namespace."""
    return {
        "invocations": bars(
            "Invocations and errors",
            points,
            [("ok", lambda p: p.count - p.errors), ("errors", lambda p: p.errors)],
        ),
        "duration": lines(
            "Duration p50 / p95 (ms)",
            points,
            [("p50", lambda p: p.percentile(0.5)), ("p95", lambda p: p.percentile(0.95))],
        ),
        "cold": bars("Cold starts", points, [("cold", lambda p: p.cold)]),
        "memory": lines(
            "Peak memory (MB)",
            points,
            [("memory", lambda p: p.memory_max or None)],
            unit=lambda v: round(v / MB, 1),
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
