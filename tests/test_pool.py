import asyncio

import pytest

from tests.sandbox.fake import FakeSandbox
from wisp.pool import Pool, PoolClosed


@pytest.fixture
async def pool():
    p = Pool(FakeSandbox(), budget_mb=512, keepalive=60)
    await p.start()
    yield p
    await p.stop()


async def test_cold_then_warm_reuse(pool):
    first = await pool.acquire("a", "python:3.11", 256)
    assert first.cold
    pool.release(first)
    second = await pool.acquire("a", "python:3.11", 256)
    assert not second.cold
    assert second.instance is first.instance


async def test_new_version_never_reuses_old_instance(pool):
    old = await pool.acquire(("f", "0.0.1"), "python:3.11", 128)
    pool.release(old)
    new = await pool.acquire(("f", "0.0.2"), "python:3.11", 128)
    assert new.cold and new.instance is not old.instance


async def test_concurrent_acquires_get_distinct_instances(pool):
    leases = [await pool.acquire("a", "python:3.11", 128) for _ in range(4)]
    assert len({id(lease.instance) for lease in leases}) == 4
    assert pool.used_mb == 512


async def test_budget_evicts_idle_lru_first(pool):
    a = await pool.acquire("a", "python:3.11", 256)
    b = await pool.acquire("b", "python:3.11", 256)
    pool.release(a)
    pool.release(b)
    c = await pool.acquire("c", "python:3.11", 256)
    assert c.cold
    await asyncio.sleep(0)
    assert a.instance is not None and a.instance.alive is False  # oldest idle evicted
    assert b.instance is not None and b.instance.alive
    assert pool.evictions == 1


async def test_full_pool_queues_fifo(pool):
    held = [await pool.acquire(k, "python:3.11", 256) for k in ("a", "b")]
    order: list[str] = []

    async def take(key: str) -> None:
        lease = await pool.acquire(key, "python:3.11", 256)
        order.append(key)
        pool.release(lease)

    waiters = [asyncio.create_task(take(k)) for k in ("x", "y", "z")]
    await asyncio.sleep(0.01)
    assert pool.queued == 3 and order == []
    for lease in held:
        pool.release(lease)
    await asyncio.gather(*waiters)
    assert order == ["x", "y", "z"]


async def test_waiter_gets_released_instance_of_its_key(pool):
    held = [await pool.acquire("a", "python:3.11", 256) for _ in range(2)]
    task = asyncio.create_task(pool.acquire("a", "python:3.11", 256))
    await asyncio.sleep(0.01)
    assert not task.done()
    pool.release(held[0])
    lease = await task
    assert not lease.cold and lease.instance is held[0].instance


async def test_discard_frees_memory(pool):
    lease = await pool.acquire("a", "python:3.11", 256)
    await pool.discard(lease)
    assert pool.used_mb == 0
    assert lease.instance is not None and not lease.instance.alive


async def test_keepalive_scales_to_zero():
    pool = Pool(FakeSandbox(), budget_mb=512, keepalive=0.05)
    await pool.start()
    lease = await pool.acquire("a", "python:3.11", 128)
    pool.release(lease)
    await asyncio.sleep(0.3)
    assert pool.idle == 0 and pool.used_mb == 0
    assert lease.instance is not None and not lease.instance.alive
    await pool.stop()


async def test_one_tenant_flooding_does_not_starve_another(pool):
    held = [await pool.acquire(("a", f"f{i}"), "python:3.11", 256) for i in range(2)]
    served: list[str] = []

    async def take(key: tuple[str, str]) -> None:
        lease = await pool.acquire(key, "python:3.11", 256)
        served.append(key[0])
        await asyncio.sleep(0)
        await pool.discard(lease)

    flood = [asyncio.create_task(take(("a", f"x{i}"))) for i in range(20)]
    await asyncio.sleep(0.01)
    other = asyncio.create_task(take(("b", "y")))
    await asyncio.sleep(0.01)
    for lease in held:
        await pool.discard(lease)
    await asyncio.gather(*flood, other)
    # Tenants alternate: b is served within the first two grants, not after a's twenty.
    assert served.index("b") <= 1, served


async def test_max_instances_caps_a_version_and_queues_the_rest(pool):
    first = await pool.acquire("f", "python:3.11", 128, max_instances=1)
    second = asyncio.create_task(pool.acquire("f", "python:3.11", 128, max_instances=1))
    other = await pool.acquire("g", "python:3.11", 128, max_instances=1)  # not blocked
    await asyncio.sleep(0.01)
    assert not second.done() and pool.instances("f") == 1
    pool.release(first)
    lease = await second
    assert not lease.cold and lease.instance is first.instance
    assert other.cold


async def test_capped_waiter_does_not_block_later_waiters(pool):
    held = await pool.acquire(("a", "f"), "python:3.11", 256, max_instances=1)
    filler = await pool.acquire(("a", "g"), "python:3.11", 256)
    capped = asyncio.create_task(pool.acquire(("a", "f"), "python:3.11", 256, max_instances=1))
    later = asyncio.create_task(pool.acquire(("a", "h"), "python:3.11", 256))
    await asyncio.sleep(0.01)
    await pool.discard(filler)  # room for one: "h" gets it, "f" stays capped
    lease = await asyncio.wait_for(later, 1)
    assert lease.cold and not capped.done()
    pool.release(held)
    assert (await asyncio.wait_for(capped, 1)).instance is held.instance


async def test_network_mode_reaches_the_sandbox(pool):
    lease = await pool.acquire("f", "python:3.11", 128, network="none")
    assert lease.instance is not None and lease.instance.network == "none"


async def test_a_flooding_tenant_does_not_evict_a_quiet_tenants_warm_instance(pool):
    quiet = await pool.acquire(("b", "q"), "python:3.11", 256)
    pool.release(quiet)  # idle, warm: b holds 256 of 512, its share
    busy = await pool.acquire(("a", "f1"), "python:3.11", 256)
    more = asyncio.create_task(pool.acquire(("a", "f2"), "python:3.11", 256))
    await asyncio.sleep(0.01)
    assert not more.done()  # a would go past its share: it waits for its own instance
    again = await pool.acquire(("b", "q"), "python:3.11", 256)
    assert not again.cold and again.instance is quiet.instance  # still warm
    pool.release(again)
    await pool.discard(busy)  # a's own instance goes: its waiter gets that room
    assert (await asyncio.wait_for(more, 1)).cold
    assert quiet.instance is not None and quiet.instance.alive
    assert pool.evictions == 0


async def test_a_tenant_within_its_share_evicts_from_one_past_it(pool):
    held = [await pool.acquire(("a", f"f{i}"), "python:3.11", 256) for i in range(2)]
    for lease in held:
        pool.release(lease)  # a holds the whole budget, idle
    lease = await asyncio.wait_for(pool.acquire(("b", "q"), "python:3.11", 256), 1)
    assert lease.cold
    await asyncio.sleep(0)
    assert held[0].instance is not None and not held[0].instance.alive  # a's oldest went
    assert held[1].instance is not None and held[1].instance.alive


async def test_a_tenant_past_its_share_still_evicts_its_own_idle_instances(pool):
    quiet = await pool.acquire(("b", "q"), "python:3.11", 256)
    pool.release(quiet)
    old = await pool.acquire(("a", "f1"), "python:3.11", 256)
    pool.release(old)
    new = await asyncio.wait_for(pool.acquire(("a", "f2"), "python:3.11", 256), 1)
    assert new.cold
    await asyncio.sleep(0)
    assert old.instance is not None and not old.instance.alive  # its own went
    assert quiet.instance is not None and quiet.instance.alive  # b's stayed


async def test_a_waiter_cancelled_after_being_served_gives_its_grant_back():
    pool = Pool(FakeSandbox(), budget_mb=256, keepalive=60)
    await pool.start()
    try:
        held = await pool.acquire("a", "python:3.11", 256)
        waiter = asyncio.create_task(pool.acquire("a", "python:3.11", 256))
        await asyncio.sleep(0)
        assert pool.queued == 1
        pool.release(held)  # serves the waiter (a warm lease) before it wakes...
        waiter.cancel()  # ...and it is cancelled first: the lease must come back
        with pytest.raises(asyncio.CancelledError):
            await waiter
        assert (pool.busy, pool.idle, pool.used_mb) == (0, 1, 256)
        again = await pool.acquire("a", "python:3.11", 256)
        assert not again.cold
    finally:
        await pool.stop()


async def test_lease_releases_healthy_discards_spoiled_and_raising():
    sandbox = FakeSandbox()
    pool = Pool(sandbox, budget_mb=512, keepalive=60)
    await pool.start()
    try:
        async with pool.lease("a", "python:3.11", 256) as lease:
            pass
        assert (pool.busy, pool.idle) == (0, 1)
        async with pool.lease("a", "python:3.11", 256) as lease:
            lease.spoiled = True
        assert (pool.busy, pool.idle, pool.used_mb) == (0, 0, 0)
        with pytest.raises(RuntimeError):
            async with pool.lease("a", "python:3.11", 256):
                raise RuntimeError("boom")
        assert (pool.busy, pool.idle, pool.used_mb) == (0, 0, 0)
        assert all(instance.killed for instance in sandbox.spawned)
    finally:
        await pool.stop()


async def test_a_paused_pool_serves_no_waiter_and_a_stopped_one_fails_them():
    pool = Pool(FakeSandbox(), budget_mb=256, keepalive=60)
    await pool.start()
    held = await pool.acquire("a", "python:3.11", 256)
    waiter = asyncio.create_task(pool.acquire("b", "python:3.11", 256))
    await asyncio.sleep(0)
    pool.pause()
    pool.release(held)
    await asyncio.sleep(0.01)
    assert not waiter.done() and pool.queued == 1
    await pool.stop()
    with pytest.raises(PoolClosed):
        await waiter
