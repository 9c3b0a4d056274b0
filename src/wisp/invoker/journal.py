"""The accept journal: no accepted invocation is lost when the server is killed.

Every accepted invocation is appended to a journal file (one ``write`` to an
O_APPEND descriptor: it survives the process being killed, as the kernel holds the
data). On start, every journaled invocation without an activation record gets a
failed one saying why. Files rotate every ``ROTATE`` seconds; a retired file is
deleted once all its invocations finished and the writer committed their records,
so the journal holds about a rotation's worth of entries — and, while the store is
down, everything accepted since it went away.

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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from wisp import codec
from wisp.errors import PlatformError, Unavailable
from wisp.models import INTERNAL_ERROR, Activation
from wisp.store.writer import ActivationWriter

log = logging.getLogger("wisp.invoker")

ROTATE = 30.0  # seconds per journal file
LOST = (
    "The platform stopped before this activation finished (the server was restarted); "
    "the function may have run partly or not at all."
)


@dataclass
class _File:
    path: Path
    fd: int
    outstanding: int = 0
    mark: int | None = None  # the writer's mark covering its records, once all finished


class AcceptJournal:
    def __init__(self, directory: Path, writer: ActivationWriter, rotate: float = ROTATE):
        self.directory = directory
        self.writer = writer
        self.rotate = rotate
        self._files: dict[int, _File] = {}
        self._current = -1
        self._opened_at = 0.0

    def open(self) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        os.chmod(self.directory, 0o700)
        self._roll()

    def accepted(
        self, aid: str, action_path: str, namespace: str, version: str, kind: str, start: int
    ) -> int:
        """Journal one accepted invocation; returns the file it went to. Raises
        ``Unavailable`` when the journal cannot be written: the invocation must
        then not start."""
        try:
            if time.monotonic() - self._opened_at > self.rotate:
                self._roll()
            return self._append(aid, action_path, namespace, version, kind, start)
        except OSError as exc:
            log.error("cannot write the accept journal in %s: %s", self.directory, exc)
            raise Unavailable(
                f"The invocation was not accepted: its journal could not be written "
                f"({exc.strerror or exc}). Try again later.",
                retry_after=5,
            ) from exc

    def _append(
        self, aid: str, action_path: str, namespace: str, version: str, kind: str, start: int
    ) -> int:
        entry = self._files[self._current]
        line = codec.dumps(
            {
                "id": aid,
                "ns": namespace,
                "name": action_path,
                "version": version,
                "kind": kind,
                "start": start,
            }
        )
        os.write(entry.fd, line + b"\n")
        entry.outstanding += 1
        return self._current

    def finished(self, generation: int) -> None:
        """The invocation's record has been handed to the writer."""
        entry = self._files.get(generation)
        if entry is None:
            return
        entry.outstanding -= 1
        if entry.outstanding == 0 and generation != self._current:
            entry.mark = self.writer.mark()
        self._sweep()

    def close(self, delete: bool = True, timeout: float | None = None) -> None:
        """Wait up to ``timeout`` for the writer to store every record, then close.

        ``delete``: remove the files whose invocations all finished and whose records
        are stored; the rest stay for the next start. Records the writer could not
        store in time are taken from it and kept in a ``.unwritten`` file."""
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
            if delete and entry.outstanding == 0 and self._stored(entry):
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

    def recover(self) -> int:
        """Record every journaled invocation that has no record as failed (blocking:
        call before serving). Returns how many were recorded.

        Records a stop could not write (``.unwritten``) are written first."""
        kept = 0
        for path in sorted(self.directory.glob("*.unwritten")):
            for doc in _read(path):
                try:
                    record = Activation.from_json(doc)
                except (AttributeError, KeyError, TypeError, ValueError):
                    log.error("unreadable activation record kept in %s: %s", path, doc)
                    continue
                if self.writer.get(record.namespace, record.activation_id) is None:
                    self.writer.submit(record)
                    kept += 1
        recovered = 0
        for path in sorted(self.directory.glob("*.jsonl")):
            for entry in _read(path):
                if self.writer.get(entry["ns"], entry["id"]) is None:
                    self.writer.submit(_lost(entry))
                    recovered += 1
        self.writer.flush()
        for path in [*self.directory.glob("*.jsonl"), *self.directory.glob("*.unwritten")]:
            path.unlink()
        if kept:
            log.warning("wrote %d activation records kept from the last stop", kept)
        if recovered:
            log.warning("recorded %d activations lost in a crash as failed", recovered)
        return recovered

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


def _read(path: Path) -> list[dict[str, Any]]:
    entries = []
    for line in path.read_text(errors="replace").splitlines():
        try:
            entries.append(json.loads(line))
        except ValueError:
            continue  # a line cut short by the crash: its write never completed
    return entries


def _lost(entry: dict[str, Any]) -> Activation:
    start = int(entry.get("start", 0))
    namespace = entry["ns"]
    return Activation(
        activation_id=entry["id"],
        namespace=namespace,
        name=entry.get("name", ""),
        version=entry.get("version", ""),
        subject=namespace,
        start=start,
        end=max(start, time.time_ns() // 1_000_000),
        status_code=INTERNAL_ERROR,
        result={"error": LOST},
        annotations=[
            {"key": "path", "value": f"{namespace}/{entry.get('name', '')}"},
            {"key": "kind", "value": entry.get("kind", "")},
        ],
    )
