import asyncio
import threading
import time

import pytest

from tests.invoker.conftest import make_target
from wisp.config import Settings
from wisp.errors import TooManyRequests
from wisp.invoker.quotas import OTHER, REFRESH, RETRY, THROTTLED_MAX, Quotas
from wisp.namespaces import create_namespace
from wisp.server import build_platform
from wisp.store.memory import MemoryStore


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


def wait_for_limits(quotas, namespace, wanted):
    """Overrides are read in the background: wait until admission applies them."""
    deadline = time.monotonic() + 5
    while quotas.limits(namespace) != wanted:
        assert time.monotonic() < deadline, quotas.limits(namespace)
        time.sleep(0.01)


def test_operator_overrides_apply():
    quotas, _ = make(
        concurrent=1, overrides={"big": {"concurrentActions": 3, "invocationsPerMinute": 9}}
    )
    quotas.admit("big")  # the defaults, until the first read lands
    quotas.done("big")
    wait_for_limits(quotas, "big", (3, 9))
    for _ in range(3):
        quotas.admit("big")
    with pytest.raises(TooManyRequests):
        quotas.admit("big")


def test_bad_override_values_fall_back_to_defaults():
    overrides = {"x": {"concurrentActions": "many", "invocationsPerMinute": 4}}
    quotas, _ = make(concurrent=1, overrides=overrides)
    quotas.admit("x")
    wait_for_limits(quotas, "x", (1, 4))
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


class Blocking:
    """A lookup that hangs until released, as a store whose server went away."""

    def __init__(self, overrides):
        self.overrides = overrides
        self.entered = threading.Event()
        self.release = threading.Event()
        self.calls = 0

    def __call__(self, namespace):
        self.calls += 1
        self.entered.set()
        assert self.release.wait(10)
        return self.overrides


def test_a_hanging_store_read_does_not_hold_up_admission():
    lookup = Blocking({"concurrentActions": 2})
    clock = Clock()
    quotas = Quotas(Settings(namespace_concurrent=5), lookup, clock)
    started = time.monotonic()
    quotas.admit("guest")
    assert lookup.entered.wait(5)  # the read is under way, in another thread
    for _ in range(3):
        quotas.admit("guest")  # still the defaults: 4 of 5 in flight
    clock.now += REFRESH * 3  # a refresh is due, but one read at a time
    quotas.admit("guest")
    assert time.monotonic() - started < 1 and lookup.calls == 1
    with pytest.raises(TooManyRequests):
        quotas.admit("guest")
    lookup.release.set()
    wait_for_limits(quotas, "guest", (2, 600))


def test_a_failing_store_keeps_the_last_limits_and_retries():
    answer = {"now": {"concurrentActions": 1}}

    def lookup(namespace):
        if isinstance(answer["now"], Exception):
            raise answer["now"]
        return answer["now"]

    def read_done():
        deadline = time.monotonic() + 5
        while quotas._pending:  # the reader thread is through with the namespace
            assert time.monotonic() < deadline
            time.sleep(0.01)

    clock = Clock()
    quotas = Quotas(Settings(namespace_concurrent=5), lookup, clock)
    quotas.admit("guest")
    quotas.done("guest")
    wait_for_limits(quotas, "guest", (1, 600))
    answer["now"] = ConnectionError("the server is down")
    clock.now += REFRESH + 1
    quotas.admit("guest")  # schedules a read, which fails
    read_done()
    assert quotas.limits("guest") == (1, 600)  # the last limits read
    with pytest.raises(TooManyRequests):
        quotas.admit("guest")
    quotas.done("guest")
    answer["now"] = {"concurrentActions": 3}
    clock.now += RETRY + 0.5  # retried sooner than REFRESH
    quotas.admit("guest")
    wait_for_limits(quotas, "guest", (3, 600))


class HangingStore(MemoryStore):
    """get_namespace hangs once armed: PostgreSQL gone, the connection not yet timed out."""

    def __init__(self):
        super().__init__()
        self.hang = None

    def get_namespace(self, name):
        if self.hang is not None:
            self.hang(name)
        return super().get_namespace(name)


async def test_invokes_do_not_wait_for_a_hanging_store(tmp_path, server_umask):
    store = HangingStore()
    settings = Settings(data_dir=tmp_path, pool_memory_mb=1024, stem_cells=1, keepalive=60)
    create_namespace(store, "guest")
    store.set_namespace_limits("guest", {"concurrentActions": 7})
    platform = build_platform(settings, store)
    await platform.start()
    store.hang = Blocking(None)
    lags = []

    async def heartbeat():
        while True:
            before = time.monotonic()
            await asyncio.sleep(0.01)
            lags.append(time.monotonic() - before)

    beat = asyncio.create_task(heartbeat())
    try:
        target = make_target("def main(args):\n    return {'n': args['n']}\n")
        for n in range(5):
            invocation = platform.invoker.submit(target, {"n": n}, subject="guest")
            record = await asyncio.wait_for(invocation.done, 30)
            assert record.result == {"n": n}
        # Every invoke ran while the read of the namespace's limits was stuck.
        assert store.hang.entered.is_set() and not store.hang.release.is_set()
        assert max(lags) < 1.0, max(lags)
        store.hang.release.set()
        await asyncio.to_thread(wait_for_limits, platform.invoker.quotas, "guest", (7, 600))
    finally:
        beat.cancel()
        store.hang.release.set()
        await platform.stop()
