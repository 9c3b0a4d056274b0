"""The accept journal: no accepted invocation is lost when the server is killed.

Every accepted invocation is appended to a journal file (one ``write`` to an
O_APPEND descriptor: it survives the process being killed, as the kernel holds the
data). On start, every journaled invocation without an activation record gets a
failed one saying why. Files rotate every ``ROTATE`` seconds; a retired file is
deleted once all its invocations finished and the writer committed their records,
so the journal holds about a rotation's worth of entries.
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
    written_mark: int | None = None  # writer.written count that covers its records


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
        """Journal one accepted invocation; returns the file it went to."""
        if time.monotonic() - self._opened_at > self.rotate:
            self._roll()
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
            entry.written_mark = self.writer.written + self.writer.pending
        self._sweep()

    def close(self, delete: bool) -> None:
        for entry in self._files.values():
            os.close(entry.fd)
            if delete:
                entry.path.unlink(missing_ok=True)
        self._files.clear()

    def recover(self) -> int:
        """Record every journaled invocation that has no record as failed (blocking:
        call before serving). Returns how many were recorded."""
        recovered = 0
        for path in sorted(self.directory.glob("*.jsonl")):
            for entry in _read(path):
                if self.writer.get(entry["ns"], entry["id"]) is None:
                    self.writer.submit(_lost(entry))
                    recovered += 1
        self.writer.flush()
        for path in self.directory.glob("*.jsonl"):
            path.unlink()
        if recovered:
            log.warning("recorded %d activations lost in a crash as failed", recovered)
        return recovered

    def _roll(self) -> None:
        generation = time.time_ns()
        path = self.directory / f"{generation}.jsonl"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND | os.O_CLOEXEC, 0o600)
        previous = self._files.get(self._current)
        if previous is not None and previous.outstanding == 0:
            previous.written_mark = self.writer.written + self.writer.pending
        self._files[generation] = _File(path, fd)
        self._current = generation
        self._opened_at = time.monotonic()
        self._sweep()

    def _sweep(self) -> None:
        written = self.writer.written
        for generation, entry in list(self._files.items()):
            if entry.written_mark is not None and written >= entry.written_mark:
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
