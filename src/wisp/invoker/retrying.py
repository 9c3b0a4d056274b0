"""The retry policy where a finished attempt becomes a record (the executor's ``settle``):
run it again later, bury it as a dead letter, or record it as it is.

Only asynchronous requests (non-blocking invokes, trigger and cron firings) are
retried; a blocking caller sees its failure. What a retry needs survives a restart in
the request's journal line: ``extra["attempts"]`` (the earlier attempts: attempt, start,
end, status) and ``extra["notBefore"]`` (epoch ms the next attempt is due).
"""

from __future__ import annotations

from typing import Any

from wisp.invoker.request import InvocationRequest
from wisp.invoker.retries import EVENT_AGE_EXCEEDED, Decision
from wisp.invoker.states import ActivationState
from wisp.models import DEAD, STATUS_TEXT, Activation, DeadLetter

FINISH = Decision("finish")
ATTEMPTS = "attempts"  # extra key and record annotation: the earlier attempts
NOT_BEFORE = "notBefore"  # extra key: epoch ms the next attempt is due
BEGAN = "began"  # extra key: epoch ms this attempt began (after its delay)


def decide(request: InvocationRequest, record: Activation, now: int) -> Decision:
    """What follows the attempt that produced ``record``."""
    if request.blocking:
        return FINISH
    config = request.target.invoke_config
    return config.decide(record.status_code, request.attempt, request.start, now)


TOO_OLD = (
    "The activation's maximum event age ran out before its next attempt could start "
    "(the platform was stopped while it waited)."
)


def waited_too_long(request: InvocationRequest) -> Decision:
    """An attempt that waited for an instance past its maximum event age: dead
    (``EventAgeExceeded``) for an asynchronous activation with a retry policy, else
    recorded as it is (a whisk internal error), as a failure without a policy is."""
    config = request.target.invoke_config
    if request.blocking or (config.maximum_retry_attempts == 0 and config.on_failure is None):
        return FINISH
    return Decision("dead", reason=EVENT_AGE_EXCEEDED)


def expired(request: InvocationRequest, now: int) -> bool:
    """A retry whose maximum event age ran out while it waited (say, while the server
    was down): it is dead without running again."""
    if request.attempt <= 1 or request.blocking:
        return False
    age = request.target.invoke_config.maximum_event_age_seconds * 1000
    return now - request.start > age


def began(request: InvocationRequest, now: int) -> None:
    """The attempt starts now (its record's start; the backoff gap ends here)."""
    request.extra[BEGAN] = now


def schedule(request: InvocationRequest, record: Activation, delay: float, now: int) -> None:
    """Make ``request`` its next attempt, due ``delay`` seconds from ``now``."""
    history: list[dict[str, Any]] = request.extra.setdefault(ATTEMPTS, [])
    history.append(
        {
            "attempt": request.attempt,
            "start": _start(request, record),
            "end": record.end,
            "status": STATUS_TEXT.get(record.status_code, str(record.status_code)),
        }
    )
    request.attempt += 1
    request.extra[NOT_BEFORE] = now + round(delay * 1000)
    request.extra.pop(BEGAN, None)
    request.state = ActivationState.RETRIED


def accepted_at(request: InvocationRequest) -> int:
    """When this attempt was asked for: the accept, or when a retry became due (its
    waiting time and time limit count from then)."""
    began_at = request.extra.get(BEGAN)
    return began_at if isinstance(began_at, int) else request.start


def due_in(request: InvocationRequest, now: int) -> float:
    """Seconds until the request's next attempt is due (0 when it is)."""
    due = request.extra.get(NOT_BEFORE)
    return max(0.0, (due - now) / 1000) if isinstance(due, int) else 0.0


def finish(request: InvocationRequest, record: Activation) -> None:
    """The final attempt's record: its own start, and the earlier attempts."""
    record.start = _start(request, record)
    record.end = max(record.end, record.start)
    history = request.extra.get(ATTEMPTS)
    if history:
        record.annotations.append({"key": ATTEMPTS, "value": history})


def bury(request: InvocationRequest, record: Activation, reason: str, now: int) -> DeadLetter:
    """Turn the last attempt's record into a dead one; the dead letter to keep."""
    response = record.response()
    record.status_code = DEAD
    record.annotations.append({"key": "reason", "value": reason})
    return DeadLetter(
        activation_id=request.activation_id,
        namespace=request.action.namespace,
        name=request.action.path,
        version=request.action.version,
        reason=reason,
        created=now,
        attempts=request.attempt,
        request={
            "params": call_params(request),
            "subject": request.subject,
            "cause": request.cause,
            "firstStart": request.start,
        },
        response=response,
    )


def call_params(request: InvocationRequest) -> dict[str, Any]:
    """The caller's own arguments: ``args`` without the function's defaults it did not
    override (those are bound again when a redrive resolves the function)."""
    defaults = request.target.parameters
    return {k: v for k, v in request.args.items() if k not in defaults or defaults[k] != v}


def _start(request: InvocationRequest, record: Activation) -> int:
    began_at = request.extra.get(BEGAN)
    return began_at if isinstance(began_at, int) else record.start
