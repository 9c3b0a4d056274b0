import pytest

from wisp.config import Settings
from wisp.errors import TooManyRequests
from wisp.invoker.quotas import OTHER, THROTTLED_MAX, Quotas


class Clock:
    def __init__(self) -> None:
        self.now = 60 * 16_667 + 20.0  # 20 s into a minute

    def __call__(self) -> float:
        return self.now


def make(concurrent=2, per_minute=5, overrides=None):
    clock = Clock()
    settings = Settings(namespace_concurrent=concurrent, namespace_per_minute=per_minute)
    return Quotas(settings, lambda ns: (overrides or {}).get(ns), clock), clock


def test_concurrency_limit_with_openwhisk_text():
    quotas, _ = make()
    quotas.admit("guest")
    quotas.admit("guest")
    with pytest.raises(TooManyRequests) as caught:
        quotas.admit("guest")
    assert caught.value.message == "Too many concurrent requests in flight (count: 3, allowed: 2)."
    assert caught.value.retry_after == 1
    quotas.done("guest")
    quotas.admit("guest")  # room again
    assert quotas.throttled == {"guest": 1}


def test_per_minute_limit_and_retry_after():
    quotas, clock = make(concurrent=100, per_minute=3)
    for _ in range(3):
        quotas.admit("guest")
        quotas.done("guest")
    with pytest.raises(TooManyRequests) as caught:
        quotas.admit("guest")
    assert caught.value.message == "Too many requests in the last minute (count: 4, allowed: 3)."
    assert caught.value.retry_after == 40
    clock.now += 40  # the next minute
    quotas.admit("guest")


def test_namespaces_are_counted_apart():
    quotas, _ = make(concurrent=1)
    quotas.admit("a")
    quotas.admit("b")
    with pytest.raises(TooManyRequests):
        quotas.admit("a")


def test_operator_overrides_apply():
    quotas, _ = make(
        concurrent=1, overrides={"big": {"concurrentActions": 3, "invocationsPerMinute": 9}}
    )
    for _ in range(3):
        quotas.admit("big")
    with pytest.raises(TooManyRequests):
        quotas.admit("big")


def test_bad_override_values_fall_back_to_defaults():
    quotas, _ = make(concurrent=1, overrides={"x": {"concurrentActions": "many"}})
    quotas.admit("x")
    with pytest.raises(TooManyRequests):
        quotas.admit("x")


def test_throttles_are_counted_per_namespace_and_bounded():
    quotas, _ = make(concurrent=1)
    quotas.admit("a")
    quotas.admit("b")
    for _ in range(2):
        with pytest.raises(TooManyRequests):
            quotas.admit("a")
    with pytest.raises(TooManyRequests):
        quotas.admit("b")
    assert quotas.throttled == {"a": 2, "b": 1}
    for i in range(THROTTLED_MAX):
        quotas.admit(f"ns{i}")
        with pytest.raises(TooManyRequests):
            quotas.admit(f"ns{i}")
    assert len(quotas.throttled) == THROTTLED_MAX + 1
    assert quotas.throttled[OTHER] == 2  # the two past the bound
    assert quotas.throttled["a"] == 2
