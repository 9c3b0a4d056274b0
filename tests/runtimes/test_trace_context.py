"""W3C trace context reaches the function in every runtime: a context field and the
TRACEPARENT / TRACESTATE environment variables, for that activation only."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from tests.runtimes.conftest import annotation, kind_of, make_target, make_zip
from wisp.config import Settings
from wisp.invoker.base import Target
from wisp.models import SUCCESS, Activation
from wisp.observability.tracing import Trace, parse
from wisp.platform import Platform
from wisp.runtimes import RuntimeTable, discover
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

CALLER = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
STATE = "rojo=00f067aa0ba902b7,congo=t61rcWkgMzE"

PYTHON = (
    "import os\n"
    "def main(event, context):\n"
    "    return {'ctx': context.trace_parent, 'alias': context.traceparent,\n"
    "            'state': context.trace_state,\n"
    "            'env': os.environ.get('TRACEPARENT'), 'envstate': os.environ.get('TRACESTATE')}\n"
)
NODE = (
    "function main(event, context) {\n"
    "  return {ctx: context.traceParent, alias: context.trace_parent, state: context.traceState,\n"
    "          env: process.env.TRACEPARENT || null, envstate: process.env.TRACESTATE || null};\n"
    "}\n"
)
PHP = (
    "<?php\n"
    "function main(array $event, $context): array {\n"
    "    $env = getenv('TRACEPARENT');\n"
    "    $envstate = getenv('TRACESTATE');\n"
    "    return ['ctx' => $context->traceParent, 'alias' => $context->trace_parent,\n"
    "            'state' => $context->traceState,\n"
    "            'env' => $env === false ? null : $env, 'envstate' => $envstate === false ? null : $envstate];\n"
    "}\n"
)
# The binary protocol carries it in the request line, as the other meta fields.
EXEC = """#!/bin/sh
while read -r line; do
  echo "$line" >&3
done
"""
GO = """package main

import "os"

func Main(args map[string]interface{}) map[string]interface{} {
\tenv, ok := os.LookupEnv("TRACEPARENT")
\tif !ok {
\t\treturn map[string]interface{}{"env": nil}
\t}
\tstate, _ := os.LookupEnv("TRACESTATE")
\treturn map[string]interface{}{"env": env, "envstate": state}
}
"""


async def _platform(tmp_path: Path, tracing: str) -> Platform:
    settings = Settings(
        data_dir=tmp_path, pool_memory_mb=2048, stem_cells=1, keepalive=60, tracing=tracing
    )
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    return platform


@pytest.fixture
async def traced(tmp_path: Path) -> AsyncIterator[Platform]:
    platform = await _platform(tmp_path, "on")
    yield platform
    await platform.stop()


async def run(platform: Platform, target: Target, trace: Trace | None) -> Activation:
    invocation = platform.invoker.submit(target, {}, subject="guest", trace=trace)
    record = await invocation.done
    assert record.status_code == SUCCESS, (record.result, record.logs)
    return record


@pytest.mark.parametrize("family", ["python", "nodejs", "php"])
async def test_context_and_environment_carry_the_activation_span(
    traced: Platform, family: str
) -> None:
    kind = "python:3.11" if family == "python" else kind_of(family)
    code = {"python": PYTHON, "nodejs": NODE, "php": PHP}[family]
    target = make_target(kind, code)
    incoming = parse(CALLER, STATE)
    assert incoming is not None
    record = await run(traced, target, incoming)
    # The function's parent is the activation's span, under the caller's trace.
    expected = f"00-0af7651916cd43dd8448eb211c80319c-{incoming.span_id}-01"
    assert record.result == {
        "ctx": expected,
        "alias": expected,
        "state": STATE,
        "env": expected,
        "envstate": STATE,
    }
    assert annotation(record, "traceId") == "0af7651916cd43dd8448eb211c80319c"
    assert annotation(record, "spanId") == incoming.span_id
    assert annotation(record, "parentSpanId") == "b7ad6b7169203331"

    # No traceparent in: a new trace, and nothing left over from the last activation.
    fresh = await run(traced, target, None)
    trace_id = annotation(fresh, "traceId")
    assert trace_id and trace_id != "0af7651916cd43dd8448eb211c80319c"
    assert annotation(fresh, "parentSpanId") is None
    assert fresh.result["env"] == f"00-{trace_id}-{annotation(fresh, 'spanId')}-01"
    assert fresh.result["state"] == "" and fresh.result["envstate"] is None


@pytest.mark.parametrize("family", ["python", "nodejs", "php"])
async def test_tracing_off_passes_only_a_callers_trace(tmp_path: Path, family: str) -> None:
    kind = "python:3.11" if family == "python" else kind_of(family)
    code = {"python": PYTHON, "nodejs": NODE, "php": PHP}[family]
    target = make_target(kind, code)
    platform = await _platform(tmp_path, "off")
    try:
        traced = await run(platform, target, parse(CALLER))
        assert traced.result["env"].startswith("00-0af7651916cd43dd8448eb211c80319c-")
        untraced = await run(platform, target, None)  # the same warm instance
        assert untraced.result["env"] is None and untraced.result["ctx"] == ""
        assert annotation(untraced, "traceId") is None
    finally:
        await platform.stop()


async def test_binary_protocol_gets_it_in_the_request(traced: Platform) -> None:
    bundle = make_zip({"exec": EXEC}, executable=("exec",))
    incoming = parse(CALLER, STATE)
    assert incoming is not None
    record = await run(traced, make_target("binary:1", bundle), incoming)
    assert record.result["trace_parent"] == incoming.traceparent
    assert record.result["trace_state"] == STATE


async def test_go_sees_traceparent_for_that_activation_only(tmp_path: Path) -> None:
    kind = kind_of("go")
    platform = await _platform(tmp_path, "off")
    try:
        builder = platform.builder
        assert builder is not None
        target = make_target(kind, GO)
        built = builder.build(target.action.exec, RuntimeTable(discover()).resolve(kind))
        assert built is not None
        target.action.exec.build = built.name
        incoming = parse(CALLER, STATE)
        assert incoming is not None
        record = await run(platform, target, incoming)
        assert record.result == {"env": incoming.traceparent, "envstate": STATE}
        assert (await run(platform, target, None)).result == {"env": None}
    finally:
        await platform.stop()
