import time

import pytest

from wisp.invoker.journal import LOST, AcceptJournal
from wisp.models import INTERNAL_ERROR, Activation
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
