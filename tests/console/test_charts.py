"""The console's SVG charts: units, a legend per series, a hover value on every mark."""

from __future__ import annotations

import re
import xml.etree.ElementTree as ET

from wisp.console.charts import MB, dashboard
from wisp.observability.rollups import Point

SVG = "{http://www.w3.org/2000/svg}"
MINUTE = 60_000
T0 = 1_780_000_000_000  # 2026-05-28 20:26 UTC


def parse(svg: str) -> ET.Element:
    return ET.fromstring(svg.replace("<svg ", '<svg xmlns="http://www.w3.org/2000/svg" ', 1))


def points() -> list[Point]:
    made = []
    for i, (count, errors, memory) in enumerate([(3, 1, 40 * MB), (0, 0, 0), (5, 0, 64 * MB)]):
        point = Point(T0 + i * MINUTE, count=count, errors=errors, cold=1 if count else 0)
        point.memory_max = memory
        point.histogram[2] = count  # every call in one duration bucket
        made.append(point)
    return made


def legend(chart: ET.Element) -> list[str]:
    (group,) = chart.findall(f"{SVG}g[@class='legend']")
    return [text.text or "" for text in group.iter(f"{SVG}text")]


def hovers(chart: ET.Element, css: str) -> list[str]:
    return [
        mark.findtext(f"{SVG}title") or ""
        for mark in chart.iter()
        if (mark.get("class") or "").split()[:2] == css.split()
    ]


def test_each_chart_names_its_unit_and_its_series() -> None:
    charts = {name: parse(svg) for name, svg in dashboard(points()).items()}
    units = {name: chart.get("data-unit") for name, chart in charts.items()}
    assert units == {"invocations": "calls", "duration": "ms", "cold": "starts", "memory": "MB"}
    for name, chart in charts.items():
        (unit,) = [t for t in chart.iter(f"{SVG}text") if "unit" in (t.get("class") or "")]
        assert unit.text == units[name]
    assert legend(charts["duration"]) == ["p50", "p95"]  # the two lines, told apart
    assert legend(charts["invocations"]) == ["succeeded", "errors"]
    assert legend(charts["memory"]) == ["peak memory"]
    swatches = [r.get("class") for r in charts["duration"].iter(f"{SVG}rect")]
    assert swatches == ["swatch p50", "swatch p95"]  # coloured as the lines are


def test_every_point_of_a_line_has_a_hover_value_with_its_unit() -> None:
    charts = {name: parse(svg) for name, svg in dashboard(points()).items()}
    memory = hovers(charts["memory"], "hit memory")
    assert [m.split(": ", 1)[1] for m in memory] == ["peak memory 40 MB", "peak memory 64 MB"]
    assert all(re.fullmatch(r"\d\d-\d\d \d\d:\d\d: .*", m) for m in memory)
    p95 = hovers(charts["duration"], "hit p95")
    assert len(p95) == 2 and all(h.endswith(" ms") and " p95 " in h for h in p95)
    errors = hovers(charts["invocations"], "bar errors")
    assert [e.split(": ", 1)[1] for e in errors] == ["1 errors"]
