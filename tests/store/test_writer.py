"""ActivationWriter: group commit, read-your-writes, and no lost records."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterator

import pytest

from wisp.errors import PlatformError, Unavailable
from wisp.models import Activation
from wisp.store import writer as writer_module
from wisp.store.base import Store
from wisp.store.memory import MemoryStore
from wisp.store.sql import SqlStore
from wisp.store.writer import ActivationWriter

from .test_contract import activation


class GatedStore(MemoryStore):
    """Holds every insert until the gate opens, so records stay unwritten."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = threading.Event()

    def insert_activations(self, records: list[Activation]) -> None:
        assert self.gate.wait(10), "test forgot to open the gate"
        super().insert_activations(records)


class FlakyStore(MemoryStore):
    """Fails the first ``failures`` inserts, and any batch holding ``poison``."""

    def __init__(self, failures: int = 0, poison: str | None = None) -> None:
        super().__init__()
        self.failures = failures
        self.poison = poison
        self.calls = 0

    def insert_activations(self, records: list[Activation]) -> None:
        self.calls += 1
        if self.calls <= self.failures:
            raise PlatformError("database is unavailable")
        if any(r.activation_id == self.poison for r in records):
            raise ValueError("cannot serialise this record")
        super().insert_activations(records)


@pytest.fixture(autouse=True)
def fast_retries(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(writer_module, "RETRY_FIRST", 0.001)


@pytest.fixture
def sqlite_store(sqlite_url: str) -> Iterator[SqlStore]:
    store = SqlStore(sqlite_url)
    store.migrate()
    yield store
    store.close()


def started(store: Store, **options: float) -> ActivationWriter:
    w = ActivationWriter(store, **options)  # type: ignore[arg-type]
    w.start()
    return w


def test_submitted_record_is_readable_before_it_is_written() -> None:
    store = GatedStore()
    w = started(store)
    record = activation("pkg/fn", 1000)
    w.submit(record)
    assert w.get("guest", record.activation_id) == record
    assert w.get("other", record.activation_id) is None
    assert w.list("guest") == [record]
    assert w.pending == 1
    assert store.get_activation("guest", record.activation_id) is None
    store.gate.set()
    w.flush()
    assert w.pending == 0
    assert store.get_activation("guest", record.activation_id) == record
    assert w.get("guest", record.activation_id) == record
    w.stop()


def test_writes_are_grouped_into_batches(sqlite_store: SqlStore) -> None:
    w = started(sqlite_store, batch=512)
    records = [activation("pkg/fn", 1000 + i) for i in range(2000)]
    for record in records:
        w.submit(record)
    w.flush()
    assert w.written == 2000
    assert w.batches < 100  # one commit per record would be 2000
    assert len(sqlite_store.list_activations("guest", limit=5000)) == 2000
    w.stop()


def test_batch_size_is_respected() -> None:
    store = GatedStore()
    w = started(store, batch=10)
    for i in range(95):
        w.submit(activation("fn", i))
    store.gate.set()
    w.flush()
    assert w.written == 95
    assert w.batches >= 10
    w.stop()


def test_stop_writes_everything(sqlite_store: SqlStore) -> None:
    w = started(sqlite_store, interval=1.0)
    for i in range(100):
        w.submit(activation("fn", i))
    w.stop()
    assert len(sqlite_store.list_activations("guest", limit=500)) == 100
    assert w.pending == 0


def test_flush_without_a_thread_writes_inline() -> None:
    store = MemoryStore()
    w = ActivationWriter(store)
    w.submit(activation("fn", 1))
    w.flush()
    assert len(store.list_activations("guest")) == 1
    w.stop()


def test_failing_store_loses_nothing(caplog: pytest.LogCaptureFixture) -> None:
    store = FlakyStore(failures=5)
    w = started(store, batch=8)
    records = [activation("fn", i) for i in range(50)]
    for record in records:
        w.submit(record)
    w.flush(timeout=30)
    assert {a.activation_id for a in store.list_activations("guest", limit=100)} == {
        r.activation_id for r in records
    }
    assert w.failures == 5
    assert w.written == 50
    assert w.dropped == 0
    assert "could not write" in caplog.text
    w.stop()


def test_one_bad_record_does_not_block_the_others(caplog: pytest.LogCaptureFixture) -> None:
    records = [activation("fn", i) for i in range(20)]
    bad = records[7]
    store = FlakyStore(poison=bad.activation_id)
    w = ActivationWriter(store, batch=20)
    for record in records:
        w.submit(record)
    with caplog.at_level(logging.ERROR):
        w.start()
        w.flush(timeout=30)
    assert w.written == 19
    assert w.dropped == 1
    assert store.get_activation("guest", bad.activation_id) is None
    assert f"DROPPING activation record after {writer_module.REJECTED_ATTEMPTS}" in caplog.text
    assert bad.activation_id in caplog.text  # the record itself is in the log
    w.stop()


def test_flush_timeout_raises_while_the_store_is_down() -> None:
    store = FlakyStore(failures=10**9)
    w = started(store)
    w.submit(activation("fn", 1))
    with pytest.raises(PlatformError, match="not written"):
        w.flush(timeout=0.2)
    assert w.pending == 1
    store.failures = 0
    w.flush(timeout=10)
    assert w.pending == 0
    w.stop()


def test_list_merges_unwritten_and_stored_records() -> None:
    store = GatedStore()
    store.gate.set()
    stored = [activation("pkg/a", 1000 + 2 * i) for i in range(10)]
    store.insert_activations(stored)
    store.gate.clear()
    w = started(store)
    unwritten = [activation("pkg/b", 1001 + 2 * i) for i in range(10)]
    for record in unwritten:
        w.submit(record)
    w.submit(activation("pkg/b", 5000, ns="other"))

    everything = sorted(stored + unwritten, key=lambda a: a.start, reverse=True)
    assert w.list("guest", limit=100) == everything
    assert w.list("guest", limit=5, skip=3) == everything[3:8]
    assert w.list("guest", name="pkg/b", limit=3) == everything[0:6:2]
    assert w.list("guest", name="pkg/", since=1015, upto=1017) == everything[2:5]
    assert [a.start for a in w.list("other")] == [5000]
    store.gate.set()
    w.flush()
    assert w.list("guest", limit=100) == everything
    w.stop()


def test_submit_from_many_threads(sqlite_store: SqlStore) -> None:
    w = started(sqlite_store, batch=64)

    def produce(n: int) -> None:
        for i in range(500):
            w.submit(activation(f"fn{n}", i))

    threads = [threading.Thread(target=produce, args=(n,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    w.stop()
    assert w.written == 2000
    assert len(sqlite_store.list_activations("guest", limit=5000)) == 2000


def test_purge_goes_to_the_store() -> None:
    store = MemoryStore()
    w = started(store)
    for start in (100, 200, 300):
        w.submit(activation("fn", start))
    w.flush()
    assert w.purge(250) == 2
    assert [a.start for a in w.list("guest")] == [300]
    w.stop()


# -- the backlog bound and stopping while the store is down -------------------


def test_a_full_backlog_refuses_new_work_but_loses_no_record() -> None:
    store = FlakyStore(failures=10**9)  # the database is away
    w = started(store, backlog=5)
    records = [activation("fn", i) for i in range(5)]
    for record in records[:4]:
        w.admit()
        w.submit(record)
    assert not w.saturated
    w.admit()
    w.submit(records[4])
    assert w.saturated
    with pytest.raises(Unavailable) as refused:
        w.admit()
    assert refused.value.status == 503 and refused.value.retry_after >= 1
    assert "5 waiting, limit 5" in refused.value.message
    assert w.refused == 1
    late = activation("fn", 99)  # an invocation that was already running still lands
    w.submit(late)
    assert w.pending == 6 and w.get("guest", late.activation_id) == late
    store.failures = 0  # the database is back
    w.flush(timeout=10)
    assert not w.saturated
    w.admit()
    stored = {a.activation_id for a in store.list_activations("guest", limit=100)}
    assert stored == {r.activation_id for r in [*records, late]}
    w.stop()


def test_stop_gives_up_after_its_timeout_and_hands_back_what_is_unwritten(
    caplog: pytest.LogCaptureFixture,
) -> None:
    store = FlakyStore(failures=10**9)
    w = started(store)
    records = [activation("fn", i) for i in range(3)]
    mark = 0
    for record in records:
        w.submit(record)
        mark = w.mark()
    began = time.monotonic()
    left = w.stop(timeout=0.3)
    assert time.monotonic() - began < 3
    assert left == records  # in submit order
    assert "stopping with 3 records not written" in caplog.text
    assert w.pending == 0 and not w.committed(mark)  # handed back, not written
    assert w.stop(timeout=0.1) == []
    w.flush(timeout=0.1)  # nothing of its own left to wait for


def test_stop_without_a_thread_also_has_a_timeout() -> None:
    w = ActivationWriter(FlakyStore(failures=10**9))
    w.submit(activation("fn", 1))
    assert len(w.stop(timeout=0.2)) == 1


def test_marks_are_committed_only_once_written() -> None:
    store = FlakyStore(failures=10**9)
    w = started(store)
    w.submit(activation("fn", 1))
    mark = w.mark()
    time.sleep(0.05)
    assert not w.committed(mark)
    store.failures = 0
    w.flush(timeout=10)
    assert w.committed(mark)
    w.stop()
