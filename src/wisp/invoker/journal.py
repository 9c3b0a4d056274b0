"""The accept journal: no accepted invocation is lost when the server stops or is killed.

Each accepted invocation is one line (the whole request, arguments included: the
files are 0600 in a 0700 folder) written with one ``write`` to an O_APPEND
descriptor, which survives the process being killed, as the kernel holds the data.
When it gets an instance, a short ``started`` line (with its attempt) follows; a retry
journals the whole request again with the next attempt, and the latest line counts.
When it finishes, its record (up to ``FINISHED_MAX`` bytes) follows too: the writer
commits records in groups, and a record finished but not yet committed when the
process is killed is then written from here instead of being called interrupted.
Files rotate every ``ROTATE`` seconds; a retired file is deleted once all its
invocations finished and the writer committed their records, so the journal holds
about a rotation's worth.

A graceful stop keeps the files that hold invocations which never started. On the
next start, ``leftovers`` reads every file: an entry with a record in the store is
done; one with its record in the journal gets that record; one with a ``started``
mark is recorded as interrupted; the rest run again.

A journal that cannot be written (disk full, I/O error) refuses the invocation
with a 503: nothing is accepted that a crash could lose. At a stop, records the
writer could not write in time (the store is down) are kept beside the journal
(``*.unwritten``) and written at the next start.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from wisp import codec
from wisp.errors import PlatformError, Unavailable
from wisp.invoker.request import InvocationRequest
from wisp.models import Activation
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

ROTATE = 30.0  # seconds per journal file
_STARTED = b'{"started":"'
_FINISHED = b'{"finished":'
# A bigger record is not journaled: it stays with the writer alone (a kill before its
# commit records it as interrupted), so one huge result cannot double its disk cost.
FINISHED_MAX = 256 * 1024


@dataclass
class _File:
    path: Path
    fd: int
    outstanding: int = 0
    mark: int | None = None  # the writer's mark covering its records, once all finished


@dataclass
class Leftovers:
    """What the previous run's journal files left unfinished."""

    unstarted: list[dict[str, Any]] = field(default_factory=list)  # run them again
    started: list[dict[str, Any]] = field(default_factory=list)  # record them as interrupted
    finished: int = 0  # records found in the journal and handed to the writer
    paths: list[Path] = field(default_factory=list)  # delete once the above are handled


class AcceptJournal:
    def __init__(self, directory: Path, writer: ActivationWriter, rotate: float = ROTATE):
        self.directory = directory
        self.writer = writer
        self.rotate = rotate
        self._files: dict[int, _File] = {}
        self._current = -1
        self._opened_at = 0.0

    def open(self) -> None:
        self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)  # the lines hold arguments, which may be secrets
        self._roll()

    def accepted(self, request: InvocationRequest) -> None:
        """Journal one accepted invocation. Raises ``Unavailable`` when the journal
        cannot be written: the invocation must then not start."""
        try:
            if time.monotonic() - self._opened_at > self.rotate:
                self._roll()
            entry = self._files[self._current]
            os.write(entry.fd, codec.dumps(request.entry()) + b"\n")
        except OSError as exc:
            log.error("cannot write the accept journal in %s: %s", self.directory, exc)
            raise Unavailable(
                f"The invocation was not accepted: its journal could not be written "
                f"({exc.strerror or exc}). Try again later.",
                retry_after=5,
            ) from exc
        entry.outstanding += 1
        request.journaled = self._current

    def started(self, request: InvocationRequest) -> None:
        """It got an instance: after a crash it is interrupted, not re-run."""
        entry = self._files.get(request.journaled) if request.journaled is not None else None
        if entry is not None:
            mark = b'","attempt":%d}\n' % request.attempt
            os.write(entry.fd, _STARTED + request.activation_id.encode() + mark)

    def finished(self, request: InvocationRequest, record: Activation | None = None) -> None:
        """Its record has been handed to the writer; ``record`` is journaled too (when
        small enough) until the writer has committed it."""
        generation = request.journaled
        request.journaled = None
        entry = self._files.get(generation) if generation is not None else None
        if entry is not None and record is not None:
            encoded = record.encoded()  # computed once: the store row shares it
            if len(encoded) <= FINISHED_MAX:
                try:
                    os.write(entry.fd, _FINISHED + encoded + b"}\n")
                except OSError as exc:  # the writer still has it; only a kill would lose it
                    log.error("cannot journal the record of %s: %s", record.activation_id, exc)
        self._done(generation)

    def retried(self, request: InvocationRequest) -> None:
        """Its next attempt is scheduled (``request.attempt`` is already the next one):
        journal the request again, so a restart runs that attempt when it is due, and
        let its previous line go. Raises ``Unavailable`` as ``accepted`` does (the
        previous line is kept then)."""
        previous = request.journaled
        request.journaled = None
        try:
            self.accepted(request)
        except Unavailable:
            request.journaled = previous
            raise
        self._done(previous)

    def _done(self, generation: int | None) -> None:
        entry = self._files.get(generation) if generation is not None else None
        if entry is None:
            return
        entry.outstanding -= 1
        if entry.outstanding == 0 and generation != self._current:
            entry.mark = self.writer.mark()
        self._sweep()

    def close(self, timeout: float | None = None) -> None:
        """At a stop: wait up to ``timeout`` for the writer to store every record, then
        keep only the files that hold invocations which did not finish (they run
        after the restart). Records the writer could not store in time are taken
        from it and kept in a ``.unwritten`` file."""
        try:
            self.writer.flush(timeout)
        except PlatformError:
            left = self.writer.stop(0)  # it stops retrying: the records are ours now
            if left:
                try:
                    path = self._keep(left)
                except OSError as exc:
                    # The last place left is the log: in full, to be recovered by hand.
                    log.error("cannot keep unwritten activation records on disk: %s", exc)
                    for record in left:
                        log.error("activation record not written: %s", record.encoded().decode())
                else:
                    log.warning(
                        "the activation store is unreachable: %d activation records not "
                        "written after %.1fs are kept in %s and written at the next start",
                        len(left),
                        timeout or 0.0,
                        path,
                    )
        for entry in self._files.values():
            if entry.outstanding == 0 and entry.mark is None:
                entry.mark = self.writer.mark()
            os.close(entry.fd)
            if entry.outstanding == 0 and self._stored(entry):
                entry.path.unlink(missing_ok=True)
        self._files.clear()

    def _stored(self, entry: _File) -> bool:
        return entry.mark is not None and self.writer.committed(entry.mark)

    def _keep(self, records: list[Activation]) -> Path:
        """Write ``records`` to a new ``.unwritten`` file, synced to disk."""
        path = self.directory / f"{time.time_ns()}.unwritten"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_CLOEXEC, 0o600)
        try:
            os.write(fd, b"".join(record.encoded() + b"\n" for record in records))
            os.fsync(fd)
        finally:
            os.close(fd)
        return path

    def write_kept(self) -> int:
        """Submit the records a stop could not write (``.unwritten``) and forget the
        files (blocking: call before ``leftovers``, which needs them to know what
        finished). Returns how many were submitted."""
        kept = 0
        paths = sorted(self.directory.glob("*.unwritten")) if self.directory.is_dir() else []
        for path in paths:
            for doc in _lines(path):
                try:
                    record = Activation.from_json(doc)
                except (AttributeError, KeyError, TypeError, ValueError):
                    log.error("unreadable activation record kept in %s: %s", path, doc)
                    continue
                if self.writer.get(record.namespace, record.activation_id) is None:
                    self.writer.submit(record)
                    kept += 1
        if paths:
            self.writer.flush()
            for path in paths:
                path.unlink()
        if kept:
            log.warning("wrote %d activation records kept from the last stop", kept)
        return kept

    def leftovers(self) -> Leftovers:
        """Read what a previous run left (blocking: call before ``open``)."""
        found = Leftovers()
        if not self.directory.is_dir():
            return found
        entries: dict[str, dict[str, Any]] = {}  # by id: a crash mid-recovery repeats some
        started: set[tuple[str, int]] = set()  # (id, attempt)
        finished: dict[str, dict[str, Any]] = {}  # records journaled at the finish, by id
        for path in sorted(self.directory.glob("*.jsonl")):
            found.paths.append(path)
            _read(path, entries, started, finished)
        for aid, entry in entries.items():
            if self.writer.get(entry["ns"], aid) is not None:
                continue  # it finished and its record was written
            record = _record(finished.get(aid))
            if record is not None:  # it finished; the kill came before the commit
                self.writer.submit(record)
                found.finished += 1
                continue
            attempt = _attempt(entry)
            (found.started if (aid, attempt) in started else found.unstarted).append(entry)
        if found.finished:
            self.writer.flush()
            log.warning("wrote %d activation records the journal held", found.finished)
        return found

    @staticmethod
    def forget(paths: list[Path]) -> None:
        """The previous run's files, once what they held is recorded or re-journaled."""
        for path in paths:
            path.unlink(missing_ok=True)

    def _roll(self) -> None:
        generation = time.time_ns()
        path = self.directory / f"{generation}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        previous = self._files.get(self._current)
        if previous is not None and previous.outstanding == 0:
            previous.mark = self.writer.mark()
        self._files[generation] = _File(path, fd)
        self._current = generation
        self._opened_at = time.monotonic()
        self._sweep()

    def _sweep(self) -> None:
        for generation, entry in list(self._files.items()):
            if self._stored(entry):
                os.close(entry.fd)
                entry.path.unlink(missing_ok=True)
                del self._files[generation]


def _lines(path: Path) -> list[dict[str, Any]]:
    docs = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            doc = json.loads(line)
        except ValueError:
            continue  # a line cut short by the crash: its write never completed
        if isinstance(doc, dict):
            docs.append(doc)
    return docs


def _read(
    path: Path,
    entries: dict[str, dict[str, Any]],
    started: set[tuple[str, int]],
    finished: dict[str, dict[str, Any]],
) -> None:
    for entry in _lines(path):
        if "finished" in entry:
            doc = entry["finished"]
            if isinstance(doc, dict) and isinstance(doc.get("activationId"), str):
                finished[doc["activationId"]] = doc
        elif "started" in entry:
            started.add((str(entry["started"]), _attempt(entry)))
        elif isinstance(entry.get("id"), str) and isinstance(entry.get("ns"), str):
            # A retried request is journaled again for each attempt: the latest counts.
            known = entries.get(entry["id"])
            if known is None or _attempt(entry) > _attempt(known):
                entries[entry["id"]] = entry


def _record(doc: dict[str, Any] | None) -> Activation | None:
    if doc is None:
        return None
    try:
        return Activation.from_json(doc)
    except (AttributeError, KeyError, TypeError, ValueError):
        log.error("unreadable activation record in the journal: %s", doc)
        return None


def _attempt(entry: dict[str, Any]) -> int:
    attempt = entry.get("attempt", 1)
    return attempt if isinstance(attempt, int) and not isinstance(attempt, bool) else 1
