"""The retry policy: backoff delays with jitter, which outcomes retry, validation."""

from __future__ import annotations

import random

import pytest

from wisp.errors import BadRequest
from wisp.invoker.retries import (
    EVENT_AGE_EXCEEDED,
    RETRIES_EXHAUSTED,
    Backoff,
    Destination,
    InvokeConfig,
    parse_duration,
    parse_invoke_config,
)
from wisp.models import APPLICATION_ERROR, DEVELOPER_ERROR, INTERNAL_ERROR, SUCCESS


def test_backoff_grows_by_the_factor_up_to_the_ceiling() -> None:
    backoff = Backoff(initial=1.0, factor=2.0, max=5.0, jitter=0.0)
    assert [backoff.base(n) for n in range(1, 6)] == [1.0, 2.0, 4.0, 5.0, 5.0]
    assert backoff.base(10_000) == 5.0  # no overflow


def test_jitter_stays_within_its_fraction_and_spreads() -> None:
    backoff = Backoff(initial=2.0, factor=3.0, max=60.0, jitter=0.2)
    rng = random.Random(7)
    for retry in (1, 2, 3):
        base = backoff.base(retry)
        delays = [backoff.delay(retry, rng.random) for _ in range(2000)]
        assert min(delays) >= base * 0.8
        assert max(delays) <= base * 1.2
        # Jitter really spreads: both halves of the band are used.
        assert min(delays) < base * 0.9 and max(delays) > base * 1.1
    assert backoff.delay(1, lambda: 0.0) == pytest.approx(1.6)
    assert backoff.delay(1, lambda: 1.0) == pytest.approx(2.4)


def test_only_the_configured_kinds_retry_and_internal_always() -> None:
    default = parse_invoke_config({})
    assert default.retries(INTERNAL_ERROR)
    assert not default.retries(DEVELOPER_ERROR)
    assert not default.retries(APPLICATION_ERROR)
    assert not default.retries(SUCCESS)
    both = parse_invoke_config({"retryOn": ["developer", "application"]})
    assert both.retries(DEVELOPER_ERROR) and both.retries(APPLICATION_ERROR)
    assert both.retries(INTERNAL_ERROR)
    assert not both.retries(SUCCESS)


def test_decide_retries_then_runs_out_of_attempts() -> None:
    config = InvokeConfig(
        maximum_retry_attempts=2,
        backoff=Backoff(initial=1.0, factor=2.0, max=60.0, jitter=0.0),
        retry_on=frozenset({"internal", "developer"}),
    )
    first = config.decide(DEVELOPER_ERROR, 1, first_start=0, now=100)
    assert (first.verb, first.delay) == ("retry", 1.0)
    second = config.decide(DEVELOPER_ERROR, 2, first_start=0, now=1200)
    assert (second.verb, second.delay) == ("retry", 2.0)
    third = config.decide(DEVELOPER_ERROR, 3, first_start=0, now=3300)
    assert (third.verb, third.reason) == ("dead", RETRIES_EXHAUSTED)
    assert config.decide(SUCCESS, 1, 0, 100).verb == "finish"
    assert config.decide(APPLICATION_ERROR, 1, 0, 100).verb == "finish"


def test_the_default_runs_once_and_a_failure_is_not_dead() -> None:
    # No policy (OpenWhisk's behaviour): nothing is retried, a failure is recorded
    # as it is; with an onFailure destination, it is a dead letter sent there.
    config = parse_invoke_config({})
    assert config.attempts == 1
    assert config.decide(INTERNAL_ERROR, 1, 0, 10).verb == "finish"
    sending = parse_invoke_config({"onFailure": {"function": "alert"}})
    assert sending.decide(INTERNAL_ERROR, 1, 0, 10).reason == RETRIES_EXHAUSTED


def test_decide_stops_at_the_maximum_event_age() -> None:
    config = InvokeConfig(
        maximum_retry_attempts=5,
        maximum_event_age_seconds=60,
        backoff=Backoff(initial=30.0, factor=2.0, max=60.0, jitter=0.0),
    )
    assert config.decide(INTERNAL_ERROR, 1, first_start=0, now=1000).verb == "retry"
    # The next retry would start 60 s after an attempt that ended at 31 s: too old.
    late = config.decide(INTERNAL_ERROR, 2, first_start=0, now=31_000)
    assert (late.verb, late.reason) == ("dead", EVENT_AGE_EXCEEDED)


def test_parse_round_trips_and_fills_defaults() -> None:
    raw = {
        "maximumRetryAttempts": 3,
        "maximumEventAgeSeconds": 600,
        "backoff": {"initial": "500ms", "factor": 3, "max": "1m", "jitter": 0.05},
        "retryOn": ["application"],
        "onFailure": {"function": "ops/alert"},
    }
    config = parse_invoke_config(raw)
    assert config.backoff == Backoff(0.5, 3.0, 60.0, 0.05)
    assert config.on_failure == Destination(function="ops/alert")
    doc = config.to_json()
    assert doc["retryOn"] == ["internal", "application"]
    assert parse_invoke_config(doc) == config
    short = parse_invoke_config({"backoff": "2s"})
    assert short.backoff.initial == 2.0 and short.backoff.max == 60.0
    assert parse_invoke_config({"onFailure": {"trigger": "failures"}}).on_failure == Destination(
        trigger="failures"
    )


@pytest.mark.parametrize(
    ("raw", "names"),
    [
        ({"maximumRetryAttempts": 6}, ["maximumRetryAttempts", "0 to 5"]),
        ({"maximumRetryAttempts": -1}, ["maximumRetryAttempts", "0 to 5"]),
        ({"maximumRetryAttempts": True}, ["maximumRetryAttempts"]),
        ({"maximumEventAgeSeconds": 59}, ["maximumEventAgeSeconds", "60 to 21600"]),
        ({"maximumEventAgeSeconds": 21601}, ["maximumEventAgeSeconds", "60 to 21600"]),
        ({"backoff": {"initial": "0s"}}, ["backoff.initial", "0.1s to 3600s"]),
        ({"backoff": {"initial": "soon"}}, ["backoff.initial", "duration"]),
        ({"backoff": {"factor": 11}}, ["backoff.factor", "1 to 10"]),
        ({"backoff": {"initial": 10, "max": 5}}, ["backoff.max", "at least"]),
        ({"backoff": {"jitter": 0.9}}, ["backoff.jitter", "0 to 0.5"]),
        ({"backoff": {"delay": 1}}, ["backoff.delay"]),
        ({"retryOn": ["timeout"]}, ["retryOn", "internal, developer, application"]),
        ({"retryOn": "developer"}, ["retryOn"]),
        ({"onFailure": {"queue": "x"}}, ["onFailure"]),
        ({"onFailure": {"trigger": "a/b"}}, ["onFailure.trigger"]),
        ({"onFailure": {"function": "a/b/c"}}, ["onFailure.function"]),
        ({"retries": 3}, ["invokeConfig.retries"]),
        ([], ["invokeConfig"]),
    ],
)
def test_bad_values_name_the_field_and_range(raw: object, names: list[str]) -> None:
    with pytest.raises(BadRequest) as caught:
        parse_invoke_config(raw)
    for name in names:
        assert name in caught.value.message


def test_durations() -> None:
    assert parse_duration("d", "250ms") == 0.25
    assert parse_duration("d", "2m") == 120.0
    assert parse_duration("d", "1.5") == 1.5
    assert parse_duration("d", 3) == 3.0
    with pytest.raises(BadRequest, match="d must be a duration"):
        parse_duration("d", "1 fortnight")
