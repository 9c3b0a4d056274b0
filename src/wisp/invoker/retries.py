"""Retry policy for asynchronous invocations: a function's invoke config, the backoff
delay before each retry, and which outcomes are retried. Pure: no I/O, no clock
(the caller passes ``now`` and a random source), so every rule is unit-tested.

The wire shape (``PUT .../actions/{name}/invokeConfig``, ``invokeConfig:`` in
project.yml) is ``InvokeConfig.to_json()``; ``parse_invoke_config`` validates it and
names the field and its allowed range when a value is wrong.
"""

from __future__ import annotations

import random
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from wisp.errors import BadRequest
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, INTERNAL_ERROR

RETRIES_MAX = 5
RETRIES_DEFAULT = 0  # as OpenWhisk: an asynchronous activation runs once unless asked
AGE_MIN = 60  # seconds
AGE_MAX = 21_600  # six hours
AGE_DEFAULT = AGE_MAX
DELAY_MIN = 0.1  # seconds, for backoff.initial and backoff.max
DELAY_MAX = 3600.0
FACTOR_MIN = 1.0
FACTOR_MAX = 10.0
JITTER_MAX = 0.5

# Outcome kinds, named after the activation status they come from.
INTERNAL = "internal"
DEVELOPER = "developer"
APPLICATION = "application"
KINDS = (INTERNAL, DEVELOPER, APPLICATION)
KIND_OF_STATUS = {
    INTERNAL_ERROR: INTERNAL,
    DEVELOPER_ERROR: DEVELOPER,
    APPLICATION_ERROR: APPLICATION,
}

# Why an activation became a dead letter.
RETRIES_EXHAUSTED = "RetriesExhausted"
EVENT_AGE_EXCEEDED = "EventAgeExceeded"

_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)?\s*$")
_UNIT = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, None: 1.0}


@dataclass(frozen=True)
class Backoff:
    """Delay before retry n (n = 1 after the first attempt failed):
    ``min(max, initial * factor**(n-1))``, then scaled by a random factor in
    ``[1 - jitter, 1 + jitter]`` so that retries of many failures spread out."""

    initial: float = 1.0  # seconds
    factor: float = 2.0
    max: float = 60.0  # seconds
    jitter: float = 0.1  # fraction of the delay, either way

    def base(self, retry: int) -> float:
        """The delay before ``retry`` (1-based) without jitter, in seconds."""
        exponent = max(0, retry - 1)
        delay = self.initial
        for _ in range(exponent):  # no float overflow for large exponents
            delay *= self.factor
            if delay >= self.max:
                return self.max
        return min(delay, self.max)

    def delay(self, retry: int, rand: Callable[[], float] = random.random) -> float:
        """The jittered delay before ``retry`` (1-based), in seconds."""
        spread = (2 * rand() - 1) * self.jitter
        return self.base(retry) * (1 + spread)


@dataclass(frozen=True)
class Destination:
    """Where a dead letter is sent: a function (``pkg/fn``) or a trigger."""

    function: str | None = None
    trigger: str | None = None

    def to_json(self) -> dict[str, str]:
        return {"function": self.function} if self.function else {"trigger": self.trigger or ""}


@dataclass(frozen=True)
class InvokeConfig:
    maximum_retry_attempts: int = RETRIES_DEFAULT
    maximum_event_age_seconds: int = AGE_DEFAULT
    backoff: Backoff = field(default_factory=Backoff)
    retry_on: frozenset[str] = frozenset({INTERNAL})  # INTERNAL is always in it
    on_failure: Destination | None = None

    @property
    def attempts(self) -> int:
        """How many times an asynchronous activation may run in all."""
        return 1 + self.maximum_retry_attempts

    def retries(self, status_code: int) -> bool:
        """Whether an attempt that ended with ``status_code`` is one to retry."""
        kind = KIND_OF_STATUS.get(status_code)
        return kind is not None and kind in self.retry_on

    def decide(self, status_code: int, attempt: int, first_start: int, now: int) -> Decision:
        """What follows attempt ``attempt`` (1-based) of an activation first started at
        ``first_start`` (epoch ms) that ended with ``status_code`` at ``now``."""
        if not self.retries(status_code):
            return Decision("finish")
        if self.maximum_retry_attempts == 0 and self.on_failure is None:
            return Decision("finish")  # no policy at all: OpenWhisk's record, as it is
        if attempt >= self.attempts:
            return Decision("dead", reason=RETRIES_EXHAUSTED)
        delay = self.backoff.delay(attempt)
        if now + delay * 1000 - first_start > self.maximum_event_age_seconds * 1000:
            return Decision("dead", reason=EVENT_AGE_EXCEEDED)
        return Decision("retry", delay=delay)

    def to_json(self) -> dict[str, Any]:
        return {
            "maximumRetryAttempts": self.maximum_retry_attempts,
            "maximumEventAgeSeconds": self.maximum_event_age_seconds,
            "backoff": {
                "initial": self.backoff.initial,
                "factor": self.backoff.factor,
                "max": self.backoff.max,
                "jitter": self.backoff.jitter,
            },
            "retryOn": [kind for kind in KINDS if kind in self.retry_on],
            "onFailure": self.on_failure.to_json() if self.on_failure else None,
        }


@dataclass(frozen=True)
class Decision:
    verb: str  # "finish" (record as it is), "retry" (after ``delay``), "dead"
    delay: float = 0.0  # seconds
    reason: str = ""  # RETRIES_EXHAUSTED | EVENT_AGE_EXCEEDED when dead


DEFAULT = InvokeConfig()


def parse_duration(field_name: str, raw: Any) -> float:
    """Seconds from a number or a string such as ``500ms``, ``1s``, ``2.5s``, ``1m``."""
    if isinstance(raw, bool):
        raise BadRequest(f"{field_name} must be a duration such as 1s or 500ms (got {raw!r})")
    if isinstance(raw, int | float):
        return float(raw)
    if isinstance(raw, str):
        match = _DURATION.match(raw)
        if match is not None:
            return float(match.group(1)) * _UNIT[match.group(2)]
    raise BadRequest(f"{field_name} must be a duration such as 1s or 500ms (got {raw!r})")


def parse_invoke_config(raw: Any) -> InvokeConfig:
    """Validate a PUT body (or a project.yml ``invokeConfig``); absent fields take defaults."""
    if not isinstance(raw, dict):
        raise BadRequest("invokeConfig must be a JSON object")
    known = {"maximumRetryAttempts", "maximumEventAgeSeconds", "backoff", "retryOn", "onFailure"}
    unknown = sorted(set(raw) - known)
    if unknown:
        raise BadRequest(
            f"invokeConfig.{unknown[0]} is not a known field; known: {', '.join(sorted(known))}"
        )
    retries = _int_in(
        "maximumRetryAttempts", raw.get("maximumRetryAttempts", RETRIES_DEFAULT), 0, RETRIES_MAX
    )
    age = _int_in(
        "maximumEventAgeSeconds", raw.get("maximumEventAgeSeconds", AGE_DEFAULT), AGE_MIN, AGE_MAX
    )
    return InvokeConfig(
        maximum_retry_attempts=retries,
        maximum_event_age_seconds=age,
        backoff=_backoff(raw.get("backoff")),
        retry_on=_retry_on(raw.get("retryOn")),
        on_failure=_destination(raw.get("onFailure")),
    )


def _backoff(raw: Any) -> Backoff:
    if raw is None:
        return Backoff()
    if isinstance(raw, str | int | float) and not isinstance(raw, bool):
        raw = {"initial": raw}  # "backoff": "1s" sets the first delay
    if not isinstance(raw, dict):
        raise BadRequest("backoff must be an object {initial, factor, max, jitter} or a duration")
    unknown = sorted(set(raw) - {"initial", "factor", "max", "jitter"})
    if unknown:
        raise BadRequest(f"backoff.{unknown[0]} is not a known field; known: initial, factor, "
                         "max, jitter")  # fmt: skip
    default = Backoff()
    initial = _float_in(
        "backoff.initial", parse_duration("backoff.initial", raw.get("initial", default.initial)),
        DELAY_MIN, DELAY_MAX, "s",
    )  # fmt: skip
    factor = _float_in(
        "backoff.factor", _number("backoff.factor", raw.get("factor", default.factor)),
        FACTOR_MIN, FACTOR_MAX, "",
    )  # fmt: skip
    top = raw.get("max", max(default.max, initial))
    ceiling = _float_in(
        "backoff.max", parse_duration("backoff.max", top), DELAY_MIN, DELAY_MAX, "s"
    )
    if ceiling < initial:
        raise BadRequest(f"backoff.max ({ceiling:g}s) must be at least backoff.initial "
                         f"({initial:g}s)")  # fmt: skip
    jitter = _float_in(
        "backoff.jitter", _number("backoff.jitter", raw.get("jitter", default.jitter)),
        0.0, JITTER_MAX, "",
    )  # fmt: skip
    return Backoff(initial, factor, ceiling, jitter)


def _retry_on(raw: Any) -> frozenset[str]:
    if raw is None:
        return frozenset({INTERNAL})
    if not isinstance(raw, list) or not all(isinstance(k, str) for k in raw):
        raise BadRequest(f"retryOn must be a list of outcome kinds: {', '.join(KINDS)}")
    wrong = [k for k in raw if k not in KINDS]
    if wrong:
        raise BadRequest(f"retryOn: {wrong[0]!r} is not an outcome kind; allowed: "
                         f"{', '.join(KINDS)}")  # fmt: skip
    return frozenset({INTERNAL, *raw})  # a platform failure is always worth another try


def _destination(raw: Any) -> Destination | None:
    if raw is None:
        return None
    if not isinstance(raw, dict) or len(raw) != 1 or not set(raw) <= {"function", "trigger"}:
        raise BadRequest(
            'onFailure must be {"function": "PKG/FN"} or {"trigger": "NAME"} (or null)'
        )
    (key, value), = raw.items()  # fmt: skip
    if not isinstance(value, str) or not value.strip("/") or len(value) > 513:
        raise BadRequest(f"onFailure.{key} must be a non-empty name (got {value!r})")
    value = value.strip("/")
    if key == "trigger":
        if "/" in value:
            raise BadRequest(f"onFailure.trigger must be a trigger name (got {value!r})")
        return Destination(trigger=value)
    if value.count("/") > 1:
        raise BadRequest(f"onFailure.function must be FN or PKG/FN (got {value!r})")
    return Destination(function=value)


def _number(field_name: str, raw: Any) -> float:
    if isinstance(raw, bool) or not isinstance(raw, int | float):
        raise BadRequest(f"{field_name} must be a number (got {raw!r})")
    return float(raw)


def _int_in(field_name: str, raw: Any, low: int, high: int) -> int:
    if isinstance(raw, bool) or not isinstance(raw, int) or not low <= raw <= high:
        raise BadRequest(f"{field_name} must be an integer from {low} to {high} (got {raw!r})")
    return raw


def _float_in(field_name: str, value: float, low: float, high: float, unit: str) -> float:
    if not low <= value <= high:
        raise BadRequest(
            f"{field_name} must be from {low:g}{unit} to {high:g}{unit} (got {value:g}{unit})"
        )
    return value
