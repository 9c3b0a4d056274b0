import os
import stat
import time

import pytest

from tests.invoker.conftest import make_target
from wisp.errors import PlatformError, Unavailable
from wisp.invoker.journal import AcceptJournal
from wisp.invoker.request import InvocationRequest
from wisp.models import Activation
from wisp.store import writer as writer_module
from wisp.store.memory import MemoryStore
from wisp.store.writer import ActivationWriter


@pytest.fixture
def writer():
    w = ActivationWriter(MemoryStore(), batch=64, interval=0.001)
    w.start()
    yield w
    w.stop()


def request(aid: str, start: int = 1000, **args: object) -> InvocationRequest:
    return InvocationRequest(aid, make_target("x"), dict(args), "guest", start)


def record(aid: str) -> Activation:
    return Activation(aid, "guest", "fn", "0.0.1", "guest", 1, 2, 0, {"ok": 1})


def test_leftovers_split_unstarted_from_started_and_skip_recorded(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    waiting, running, done = request("a" * 32, n=1), request("b" * 32), request("c" * 32)
    for each in (waiting, running, done):
        journal.accepted(each)
    journal.started(running)
    journal.started(done)
    writer.submit(record("c" * 32))
    journal.finished(done)
    writer.flush()
    # a crash: the journal is not closed; a new process reads the files
    left = AcceptJournal(tmp_path / "j", writer).leftovers()
    assert [e["id"] for e in left.unstarted] == ["a" * 32]
    assert [e["id"] for e in left.started] == ["b" * 32]
    entry = left.unstarted[0]
    assert entry["args"] == {"n": 1} and entry["start"] == 1000 and entry["attempt"] == 1
    assert (entry["ns"], entry["pkg"], entry["fn"], entry["version"]) == (
        "guest",
        "default",
        "fn",
        "0.0.1",
    )
    AcceptJournal.forget(left.paths)
    assert list((tmp_path / "j").glob("*.jsonl")) == []


def test_a_finished_record_the_store_never_got_is_written_from_the_journal(tmp_path):
    # The writer never commits (its store is not started): as a kill would leave it.
    store = MemoryStore()
    lazy = ActivationWriter(store, batch=64, interval=3600)
    journal = AcceptJournal(tmp_path / "j", lazy)
    journal.open()
    done, running = request("a" * 32), request("b" * 32)
    for each in (done, running):
        journal.accepted(each)
        journal.started(each)
    finished = record("a" * 32)
    lazy.submit(finished)
    journal.finished(done, finished)
    writer = ActivationWriter(store, batch=64, interval=0.001)  # the next process's
    writer.start()
    try:
        left = AcceptJournal(tmp_path / "j", writer).leftovers()
        assert left.finished == 1
        assert [e["id"] for e in left.started] == ["b" * 32]  # only what still ran
        assert left.unstarted == []
        stored = writer.get("guest", "a" * 32)
        assert stored is not None and stored.result == {"ok": 1}
    finally:
        writer.stop()


def test_a_record_over_the_bound_is_not_journaled(tmp_path, writer, monkeypatch):
    monkeypatch.setattr("wisp.invoker.journal.FINISHED_MAX", 10)
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    done = request("a" * 32)
    journal.accepted(done)
    path = tmp_path / "j" / f"{done.journaled}.jsonl"
    journal.finished(done, record("a" * 32))
    assert b'"finished"' not in path.read_bytes()


def test_journal_files_are_private(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    journal.accepted(request("d" * 32, password="hunter2"))
    assert stat.S_IMODE(os.stat(tmp_path / "j").st_mode) == 0o700
    [path] = (tmp_path / "j").glob("*.jsonl")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_close_keeps_only_files_with_unfinished_entries(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=0.01)
    journal.open()
    finished = request("e" * 32)
    journal.accepted(finished)
    time.sleep(0.02)
    unfinished = request("f" * 32)
    journal.accepted(unfinished)  # in a second file
    writer.submit(record("e" * 32))
    journal.finished(finished)
    writer.flush()
    journal.close(timeout=5)
    [kept] = (tmp_path / "j").glob("*.jsonl")
    assert "f" * 32 in kept.read_text() and "e" * 32 not in kept.read_text()


def test_retired_files_are_deleted_once_their_records_are_written(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=0.01)
    journal.open()
    requests = []
    for i in range(3):
        requests.append(request(f"{i:032x}", i))
        journal.accepted(requests[-1])
        time.sleep(0.02)  # each lands in a new file
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 3
    for i, each in enumerate(requests):
        writer.submit(record(f"{i:032x}"))
        journal.finished(each)
    writer.flush()
    journal.accepted(request("f" * 32, 9))  # rolls and sweeps
    assert len(list((tmp_path / "j").glob("*.jsonl"))) == 1


def test_torn_last_line_and_repeated_entries_are_ignored(tmp_path, writer):
    directory = tmp_path / "j"
    directory.mkdir()
    line = '{"id":"' + "c" * 32 + '","ns":"guest","name":"fn","version":"0.0.1","start":5}\n'
    (directory / "1.jsonl").write_text(line + '{"id":"dd')
    (directory / "2.jsonl").write_text(line)  # re-journaled by a recovery cut short
    left = AcceptJournal(directory, writer).leftovers()
    assert [e["id"] for e in left.unstarted] == ["c" * 32]
    assert len(left.paths) == 2


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
    first_request = request("a" * 32, 1)
    journal.accepted(first_request)
    first = tmp_path / "j" / f"{first_request.journaled}.jsonl"
    writer.submit(record("a" * 32))
    journal.finished(first_request)
    journal.rotate = 0  # the next accept retires the file
    journal.accepted(request("b" * 32, 2))
    time.sleep(0.05)  # the writer retries meanwhile
    journal.accepted(request("c" * 32, 3))
    assert first.exists()  # finished, but its record is not stored: kept
    store.down = False
    writer.flush(timeout=10)
    journal.accepted(request("d" * 32, 4))  # sweeps
    assert not first.exists()
    journal.close(timeout=1)


def test_close_with_the_store_down_keeps_records_and_entries(tmp_path, outage, caplog):
    store, writer = outage
    directory = tmp_path / "j"
    journal = AcceptJournal(directory, writer)
    journal.open()
    done = request("a" * 32, 1)
    journal.accepted(done)
    journal.accepted(request("b" * 32, 2))  # never finishes
    finished = record("a" * 32)
    finished.result = {"answer": 42}
    writer.submit(finished)
    journal.finished(done)
    unjournaled = record("c" * 32)  # a blocking call answered in time: only in the writer
    writer.submit(unjournaled)
    journal.close(timeout=0.2)
    assert "2 activation records not written after 0.2s are kept in" in caplog.text
    assert len(files(directory)) == 1  # the entries stay
    assert len(files(directory, "*.unwritten")) == 1
    assert store.list_activations("guest") == []
    # The next start, with the store back: the kept records are written as they
    # were, and only the invocation that never finished is left to run again.
    store.down = False
    again = AcceptJournal(directory, ActivationWriter(store))
    assert again.write_kept() == 2
    assert store.get_activation("guest", "a" * 32).result == {"answer": 42}
    assert store.get_activation("guest", "c" * 32) == unjournaled
    left = again.leftovers()
    assert [e["id"] for e in left.unstarted] == ["b" * 32] and left.started == []
    assert files(directory, "*.unwritten") == []


def test_close_deletes_what_the_store_has(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer)
    journal.open()
    each = request("a" * 32, 1)
    journal.accepted(each)
    writer.submit(record("a" * 32))
    journal.finished(each)
    journal.close(timeout=5)
    assert list((tmp_path / "j").iterdir()) == []


def test_a_journal_that_cannot_be_written_refuses_the_invocation(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=3600)
    journal.open()
    full = os.open("/dev/full", os.O_WRONLY)  # every write: ENOSPC, as on a full disk
    os.dup2(full, journal._files[journal._current].fd)
    os.close(full)
    with pytest.raises(Unavailable) as refused:
        journal.accepted(request("a" * 32, 1))
    assert refused.value.status == 503
    assert "journal could not be written" in refused.value.message
    assert "No space left on device" in refused.value.message
    journal.close(timeout=1)


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
    journal.close(timeout=0.1)
    assert "cannot keep unwritten activation records on disk" in caplog.text
    assert f'activation record not written: {{"activationId":"{"e" * 32}"' in caplog.text


def test_a_retried_request_is_journaled_again_and_its_latest_attempt_counts(tmp_path, writer):
    journal = AcceptJournal(tmp_path / "j", writer, rotate=0.01)
    journal.open()
    first = request("9" * 32, n=1)
    journal.accepted(first)
    journal.started(first)  # attempt 1 ran (and failed)
    time.sleep(0.02)
    first.attempt = 2
    first.extra = {"notBefore": 5000, "attempts": [{"attempt": 1, "status": "x"}]}
    journal.retried(first)  # attempt 2, in the next file; the first line still on disk
    left = AcceptJournal(tmp_path / "j", writer).leftovers()
    # Attempt 2 never started: it runs again (not "interrupted", as attempt 1 was).
    assert [e["id"] for e in left.unstarted] == ["9" * 32] and left.started == []
    [entry] = left.unstarted
    assert entry["attempt"] == 2 and entry["extra"]["notBefore"] == 5000
    again = InvocationRequest.from_entry(entry, make_target("x"))
    assert again.attempt == 2 and again.extra["attempts"] == [{"attempt": 1, "status": "x"}]
    journal.started(first)  # now attempt 2 runs
    left = AcceptJournal(tmp_path / "j", writer).leftovers()
    assert [e["attempt"] for e in left.started] == [2] and left.unstarted == []
