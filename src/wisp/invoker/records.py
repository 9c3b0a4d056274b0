"""Outcome → activation record: pure functions, no I/O, no clock (``end`` is passed in).

The status rules: a result over the limit is the developer's error; a dict result
with ``error`` is an application error; a failed init or run (exception, timeout,
OOM, crash) is a developer error; only the platform failing is a whisk internal error.
"""

from __future__ import annotations

from typing import Any

from wisp.invoker.base import Target
from wisp.invoker.request import InvocationRequest
from wisp.models import (
    APPLICATION_ERROR,
    DEVELOPER_ERROR,
    INTERNAL_ERROR,
    SUCCESS,
    Action,
    Activation,
)
from wisp.observability.tracing import SAMPLED
from wisp.sandbox.base import Outcome

INTERRUPTED = "interrupted: the platform stopped while this activation ran"
LOST = (
    "The platform stopped before this activation finished (the server was restarted); "
    "the function may have run partly or not at all."
)


def record(
    request: InvocationRequest, status: int, result: Any, logs: list[str], end: int
) -> Activation:
    """A record for ``request`` with the annotations every record has."""
    action = request.action
    limits = action.limits
    return Activation(
        activation_id=request.activation_id,
        namespace=action.namespace,
        name=action.path,
        version=action.version,
        subject=request.subject,
        start=request.start,
        end=max(end, request.start),
        status_code=status,
        result=result,
        logs=logs,
        annotations=[
            {"key": "path", "value": action.fqn},
            {"key": "kind", "value": action.exec.kind},
            {
                "key": "limits",
                "value": {
                    "timeout": limits.timeout,
                    "memory": limits.memory,
                    "logs": limits.logs,
                    "concurrency": 1,
                },
            },
            # The version of its language that ran it, when not the one it asked for.
            *([{"key": "runtime", "value": ran}] if (ran := request.target.runtime) else []),
            *qualifier_annotations(request.target),
        ],
        cause=request.cause,
        publish=action.publish,
    )


def qualifier_annotations(target: Target) -> list[dict[str, Any]]:
    """``executedVersion`` (and ``alias``) of a function named with a qualifier."""
    if not target.qualified:
        return []
    notes: list[dict[str, Any]] = [{"key": "executedVersion", "value": target.action.version}]
    if target.alias:
        notes.append({"key": "alias", "value": target.alias})
    return notes


def from_outcome(
    request: InvocationRequest,
    outcome: Outcome,
    logs: list[str],
    *,
    wait_time: int,
    init_time: int | None,
    result_max: int,
    end: int,
) -> Activation:
    """The record of an attempt that got an instance and an outcome from it."""
    action = request.action
    if outcome.ok:
        result = outcome.result
        if outcome.size > result_max:
            status = DEVELOPER_ERROR
            result = {
                "error": f"The action produced a response that exceeded the allowed "
                f"length: {outcome.size} > {result_max} bytes."
            }
        elif isinstance(result, dict) and "error" in result:
            status = APPLICATION_ERROR
        else:
            status = SUCCESS
    else:
        status = DEVELOPER_ERROR
        result = {"error": error_text(outcome, action)}
    activation = record(request, status, result, logs, end)
    activation.result_size = outcome.size
    annotations = activation.annotations
    annotations.append({"key": "waitTime", "value": wait_time})
    if init_time is not None:
        annotations.append({"key": "initTime", "value": init_time})
    annotations.append({"key": "timeout", "value": outcome.kind == "timeout"})
    if outcome.cpu_ms is not None:
        annotations.append({"key": "cpuTime", "value": outcome.cpu_ms})  # ms
    if outcome.peak_memory is not None:
        annotations.append({"key": "peakMemory", "value": outcome.peak_memory})
    if outcome.kind == "oom":
        annotations.append({"key": "oom", "value": True})
    return activation


def error_text(outcome: Outcome, action: Action) -> str:
    if outcome.kind == "timeout":
        return f"The action exceeded its time limits of {action.limits.timeout} milliseconds."
    if outcome.kind == "oom":
        return f"The action exceeded its memory limit of {action.limits.memory} MB and was stopped."
    if outcome.kind == "init":
        return f"Initialization has failed: {outcome.error}"
    return outcome.error or "The action failed."


def internal(request: InvocationRequest, error: str, end: int) -> Activation:
    """The platform failed this attempt (never the user's code)."""
    return record(request, INTERNAL_ERROR, {"error": error}, [], end)


def interrupted(request: InvocationRequest, end: int) -> Activation:
    """It had started when the platform stopped (a drain ran out, or a crash)."""
    return internal(request, INTERRUPTED, end)


def annotate(activation: Activation, request: InvocationRequest) -> None:
    """Where the attempt came from: request id, trace, attempt, recovery."""
    annotations = activation.annotations
    if request.request_id is not None:
        annotations.append({"key": "requestId", "value": request.request_id})
    trace = request.trace
    if trace is not None:
        annotations.append({"key": "traceId", "value": trace.trace_id})
        annotations.append({"key": "spanId", "value": trace.span_id})
        if trace.parent_id is not None:
            annotations.append({"key": "parentSpanId", "value": trace.parent_id})
        if trace.flags != SAMPLED:
            annotations.append({"key": "sampled", "value": False})
    annotations.append({"key": "attempt", "value": request.attempt})
    if request.recovered:
        annotations.append({"key": "recovered", "value": True})


def lost(entry: dict[str, Any], error: str, end: int) -> Activation:
    """A failed record from a journal line alone (its action may be gone)."""
    start = int(entry.get("start", 0))
    namespace = entry["ns"]
    name = entry.get("name", "")
    return Activation(
        activation_id=entry["id"],
        namespace=namespace,
        name=name,
        version=entry.get("version", ""),
        subject=entry.get("subject") or namespace,
        start=start,
        end=max(start, end),
        status_code=INTERNAL_ERROR,
        result={"error": error},
        annotations=[
            {"key": "path", "value": f"{namespace}/{name}"},
            {"key": "kind", "value": entry.get("kind", "")},
            {"key": "attempt", "value": int(entry.get("attempt", 1))},
        ],
        cause=entry.get("cause"),
    )
