import os
import time

import pytest

from wisp.errors import PlatformError, Unavailable
from wisp.invoker.journal import LOST, AcceptJournal
from wisp.models import INTERNAL_ERROR, Activation
from wisp.store import writer as writer_module
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter


@pytest.fixture
def writer():
    w = ActivationWriter(MemoryStore(), batch=64, interval=0.001)
    w.start()
    yield w
    w.stop()


def record(aid: str) -> Activation:
    return Activation(aid, "guest", "pkg/fn", "0.0.1", "guest", 1, 2, 0, {"ok": 1})


def test_unfinished_entries_are_recorded_as_failed_on_recovery(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    journal.accepted("a" * 32, "pkg/fn", "guest", "0.0.1", "python:3.11", 1000)
    gen = journal.accepted("b" * 32, "pkg/fn", "guest", "0.0.1", "python:3.11", 1001)
    writer.submit(record("b" * 32))
    journal.finished(gen)
    # a crash: the journal is not closed; a new process recovers from the files
    again = AcceptJournal(tmp_path / "j", writer)
    assert again.recover() == 1
    lost = writer.get("guest", "a" * 32)
    assert lost is not None and lost.status_code == INTERNAL_ERROR
    assert lost.result == {"error": LOST} and lost.start == 1000
    assert writer.get("guest", "b" * 32).status_code == 0  # finished: left alone
    assert list((tmp_path / "j").glob("*.jsonl")) == []


def test_retired_files_are_deleted_once_their_records_are_written(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=0.01)
    journal.open()
    gens = []
    for i in range(3):
        gens.append(journal.accepted(f"{i:032x}", "fn", "guest", "0.0.1", "python:3.11", i))
        time.sleep(0.02)  # each lands in a new file
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 3
    for i, gen in enumerate(gens):
        writer.submit(record(f"{i:032x}"))
        journal.finished(gen)
    writer.flush()
    journal.accepted("f" * 32, "fn", "guest", "0.0.1", "python:3.11", 9)  # rolls and sweeps
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 1


def test_torn_last_line_is_ignored(tmp_path, writer):
    directory = tmp_path / "j"
    directory.mkdir()
    (directory / "1.jsonl").write_text(
        '{"id":"'
        + "c" * 32
        + '","ns":"guest","name":"fn","version":"0.0.1","kind":"k","start":5}\n{"id":"dd'
    )
    assert AcceptJournal(directory, writer).recover() == 1


class Outage(MemoryStore):
    """A store that refuses every write while ``down``."""

    def __init__(self) -> None:
        super().__init__()
        self.down = True

    def insert_activations(self, records: list[Activation]) -> None:
        if self.down:
            raise PlatformError("database is unavailable")
        super().insert_activations(records)


@pytest.fixture
def outage(monkeypatch):
    monkeypatch.setattr(writer_module, "RETRY_FIRST", 0.001)
    monkeypatch.setattr(writer_module, "RETRY_MAX", 0.01)
    store = Outage()
    w = ActivationWriter(store, batch=64, interval=0.001)
    w.start()
    yield store, w
    w.stop(timeout=1)


def files(directory, pattern="*.jsonl"):
    return sorted(directory.glob(pattern))


def test_a_finished_file_stays_until_the_store_has_its_records(tmp_path, outage):
    store, writer = outage
    journal = AcceptJournal(tmp_path / "j", writer, rotate=3600)
    journal.open()
    gen = journal.accepted("a" * 32, "fn", "guest", "0.0.1", "python:3.11", 1)
    writer.submit(record("a" * 32))
    journal.finished(gen)
    journal.rotate = 0  # the next accept retires the file
    journal.accepted("b" * 32, "fn", "guest", "0.0.1", "python:3.11", 2)
    time.sleep(0.05)  # the writer retries meanwhile
    journal.accepted("c" * 32, "fn", "guest", "0.0.1", "python:3.11", 3)
    first = tmp_path / "j" / f"{gen}.jsonl"
    assert first.exists()  # finished, but its record is not stored: kept
    store.down = False
    writer.flush(timeout=10)
    journal.accepted("d" * 32, "fn", "guest", "0.0.1", "python:3.11", 4)  # sweeps
    assert not first.exists()
    journal.close(delete=False)


def test_close_with_the_store_down_keeps_records_and_entries(tmp_path, outage, caplog):
    store, writer = outage
    directory = tmp_path / "j"
    journal = AcceptJournal(directory, writer)
    journal.open()
    done = journal.accepted("a" * 32, "fn", "guest", "0.0.1", "python:3.11", 1)
    journal.accepted("b" * 32, "fn", "guest", "0.0.1", "python:3.11", 2)  # never finishes
    finished = record("a" * 32)
    finished.result = {"answer": 42}
    writer.submit(finished)
    journal.finished(done)
    unjournaled = record("c" * 32)  # a blocking call answered in time: only in the writer
    writer.submit(unjournaled)
    journal.close(delete=True, timeout=0.2)
    assert "2 activation records not written after 0.2s are kept in" in caplog.text
    assert len(files(directory)) == 1  # the entries stay
    assert len(files(directory, "*.unwritten")) == 1
    assert store.list_activations("guest") == []
    # The next start, with the store back: the kept records are written as they
    # were, and only the invocation that never finished is recorded as lost.
    store.down = False
    again = ActivationWriter(store)
    assert AcceptJournal(directory, again).recover() == 1
    assert store.get_activation("guest", "a" * 32).result == {"answer": 42}
    assert store.get_activation("guest", "c" * 32) == unjournaled
    assert store.get_activation("guest", "b" * 32).result == {"error": LOST}
    assert list(directory.iterdir()) == []


def test_close_deletes_what_the_store_has(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    gen = journal.accepted("a" * 32, "fn", "guest", "0.0.1", "python:3.11", 1)
    writer.submit(record("a" * 32))
    journal.finished(gen)
    journal.close(delete=True, timeout=5)
    assert list((tmp_path / "j").iterdir()) == []


def test_a_journal_that_cannot_be_written_refuses_the_invocation(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=3600)
    journal.open()
    full = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, as on a full disk
    os.dup2(full, journal._files[journal._current].fd)
    os.close(full)
    with pytest.raises(Unavailable) as refused:
        journal.accepted("a" * 32, "fn", "guest", "0.0.1", "python:3.11", 1)
    assert refused.value.status == 503
    assert "journal could not be written" in refused.value.message
    assert "No space left on device" in refused.value.message
    journal.close(delete=True, timeout=1)


def test_records_that_cannot_be_kept_on_disk_are_logged_in_full(
    tmp_path, outage, caplog, monkeypatch
):
    _, writer = outage
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    writer.submit(record("e" * 32))

    def disk_full(records):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(journal, "_keep", disk_full)
    journal.close(delete=True, timeout=0.1)
    assert "cannot keep unwritten activation records on disk" in caplog.text
    assert f'activation record not written: {{"activationId":"{"e" * 32}"' in caplog.text
