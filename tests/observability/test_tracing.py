"""W3C traceparent parsing and new trace ids."""

from __future__ import annotations

import re

import pytest

from wisp.observability.tracing import TRACESTATE_MAX, new_trace, parse

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"


def test_a_valid_traceparent_is_the_parent_of_a_new_span() -> None:
    trace = parse(f"00-{TRACE_ID}-{PARENT}-01", "rojo=00f067aa0ba902b7")
    assert trace is not None
    assert (trace.trace_id, trace.parent_id, trace.flags) == (TRACE_ID, PARENT, "01")
    assert trace.state == "rojo=00f067aa0ba902b7"
    assert re.fullmatch(r"[0-9a-f]{16}", trace.span_id) and trace.span_id != PARENT
    assert trace.traceparent == f"00-{TRACE_ID}-{trace.span_id}-01"


def test_flags_keep_only_the_sampled_bit() -> None:
    assert parse(f"00-{TRACE_ID}-{PARENT}-00").flags == "00"  # type: ignore[union-attr]
    assert parse(f"00-{TRACE_ID}-{PARENT}-ff").flags == "01"  # type: ignore[union-attr]


def test_a_later_version_may_carry_more_fields() -> None:
    trace = parse(f"cc-{TRACE_ID}-{PARENT}-01-what-the-future-holds")
    assert trace is not None and trace.trace_id == TRACE_ID


@pytest.mark.parametrize(
    "header",
    [
        "",
        "00",
        f"00-{TRACE_ID}-{PARENT}",
        f"00-{TRACE_ID}-{PARENT}-01-",
        f"ff-{TRACE_ID}-{PARENT}-01",
        f"00-{TRACE_ID[:-1]}-{PARENT}-01",
        f"00-{'0' * 32}-{PARENT}-01",
        f"00-{TRACE_ID}-{'0' * 16}-01",
        f"00-{TRACE_ID}-{PARENT.upper()}-01",
        f"00_{TRACE_ID}_{PARENT}_01",
    ],
)
def test_malformed_traceparents_are_ignored(header: str) -> None:
    assert parse(header) is None


@pytest.mark.parametrize("state", ["x" * (TRACESTATE_MAX + 1), "a=1\nb=2", "a=é"])
def test_an_unusable_tracestate_is_dropped_not_the_trace(state: str) -> None:
    trace = parse(f"00-{TRACE_ID}-{PARENT}-01", state)
    assert trace is not None and trace.state == ""


def test_new_traces_are_distinct_and_well_formed() -> None:
    traces = [new_trace() for _ in range(1000)]
    assert len({t.trace_id for t in traces}) == len({t.span_id for t in traces}) == 1000
    for t in traces[:50]:
        assert parse(t.traceparent) is not None  # what a function gets is valid W3C
        assert t.parent_id is None and t.flags == "01"
