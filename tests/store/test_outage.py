"""A store outage under load, with real processes: ``wisp server`` on PostgreSQL through a
TCP proxy the test cuts (the shared PostgreSQL server keeps running for other tests).

While the store is away, non-blocking invokes are accepted until the writer's backlog is
full, then refused with 503 + Retry-After; what was accepted stays journaled on disk, and
once the store is back every accepted activation has its record. A stop during the outage
keeps the records it could not write, and the next start writes them.
"""

from __future__ import annotations

import json
import threading
import time
from collections import Counter
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import make_url

from tests.live import LiveServer
from tests.tcpproxy import TcpProxy

pytestmark = [pytest.mark.postgres, pytest.mark.slow]

BACKLOG = 300
CLIENTS = 8
QUICK = "def main(args):\n    return {'ok': True}\n"
INVOKE = "/api/v1/namespaces/_/actions/quick"


def proxied(url: str, port: int) -> str:
    return make_url(url).set(port=port).render_as_string(hide_password=False)


def stored(url: str) -> dict[str, int]:
    """activation id -> status code, read from the database itself."""
    dsn = make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)
    with psycopg.connect(dsn) as conn:
        rows = conn.execute("SELECT activation_id, status_code FROM activations").fetchall()
    return {aid: status for aid, status in rows}


def journaled(data_dir: Path) -> set[str]:
    ids = set()
    for path in (data_dir / "journal").glob("*.jsonl"):
        for line in path.read_text().splitlines():
            try:
                entry = json.loads(line)
            except ValueError:
                continue
            if "id" in entry:  # an accepted invocation (not a "started" line)
                ids.add(entry["id"])
    return ids


class Burst:
    """Client threads sending non-blocking invokes until stopped; every answer is kept
    with the time it came back."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        self.answers: list[tuple[float, int, dict[str, Any], httpx.Headers]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._threads = [threading.Thread(target=self._run) for _ in range(CLIENTS)]

    def __enter__(self) -> Burst:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()

    def _run(self) -> None:
        with self.server.client() as http:
            while not self._stop.is_set():
                answer = http.post(INVOKE, json={})
                with self._lock:
                    self.answers.append(
                        (time.monotonic(), answer.status_code, answer.json(), answer.headers)
                    )
                if answer.status_code == 503:
                    time.sleep(0.02)  # a polite client would wait Retry-After

    def between(self, start: float, end: float) -> list[tuple[int, dict[str, Any], httpx.Headers]]:
        with self._lock:
            return [(s, b, h) for t, s, b, h in self.answers if start <= t < end]


def wait_for_records(url: str, ids: set[str], seconds: float) -> dict[str, int]:
    deadline = time.monotonic() + seconds
    while True:
        found = stored(url)
        if ids <= found.keys() or time.monotonic() > deadline:
            return found
        time.sleep(0.5)


def start_server(tmp_path: Path, url: str, **env: str) -> LiveServer:
    return LiveServer(
        tmp_path,
        env={
            "WISP_DATABASE_URL": url,
            "WISP_WRITER_BACKLOG": str(BACKLOG),
            "WISP_NAMESPACE_PER_MINUTE": "1000000",
            "WISP_STEM_CELLS": "2",
            **env,
        },
    )


def test_invokes_during_a_store_outage_are_kept_or_refused_never_lost(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    with TcpProxy(make_url(empty_postgres_url).port or 5432) as proxy:
        url = proxied(empty_postgres_url, proxy.port)
        with start_server(tmp_path, url) as server:
            server.deploy("quick", QUICK)
            # Resolved and cached before the cut: invokes need no store read then.
            assert server.call("POST", INVOKE + "?blocking=true", {})[0] == 200
            with Burst(server) as burst:
                time.sleep(1.0)
                cut = time.monotonic()
                proxy.cut()
                time.sleep(4.0)
                on_disk = journaled(server.data_dir)
                down = burst.between(cut, time.monotonic())
                restored = time.monotonic()
                proxy.restore()
                # Keep sending until the writer has caught up and invokes pass again.
                deadline = restored + 30
                while time.monotonic() < deadline:
                    time.sleep(0.5)
                    after = burst.between(restored, time.monotonic())
                    if any(s == 202 for s, _, _ in after[-CLIENTS:]):
                        break
            answers = burst.between(0, time.monotonic())
        accepted = {b["activationId"] for s, b, _ in answers if s == 202}
        statuses = Counter(s for s, _, _ in answers)
        assert set(statuses) <= {202, 503, 429}, statuses
        # While the store was down: accepted (journaled) until the bound, then 503s.
        accepted_down = [b["activationId"] for s, b, _ in down if s == 202]
        refused_down = [(b, h) for s, b, h in down if s == 503]
        assert accepted_down, "nothing was accepted while the store was away"
        assert refused_down, f"no 503 during the outage: {Counter(s for s, _, _ in down)}"
        assert len(accepted_down) <= BACKLOG + 120  # plus at most the invocations in flight
        first_refusal = next(i for i, (s, _, _) in enumerate(down) if s == 503)
        assert first_refusal > 0
        for body, headers in refused_down:
            assert body["code"] == "unavailable", body
            assert "Try again later" in body["error"]
            assert int(headers["Retry-After"]) >= 1
        assert set(accepted_down) <= on_disk  # accepted work stays journaled
        assert any(s == 202 for s, _, _ in after), "invokes never passed again"
        # Every accepted activation has its record, and it is the real one.
        found = wait_for_records(url, accepted, 60)
        missing = accepted - found.keys()
        assert not missing, f"{len(missing)} of {len(accepted)} accepted activations missing"
        assert Counter(found[aid] for aid in accepted) == {0: len(accepted)}
        summary = {
            "accepted": len(accepted),
            "accepted_while_down": len(accepted_down),
            "refused_while_down": len(refused_down),
            "answers": dict(statuses),
            "missing": len(missing),
        }
        print(json.dumps(summary))  # shown with -s: the figures for docs/benchmarks.md
        assert proxy.refused > 0  # the server did try the store during the outage


def test_a_stop_during_an_outage_keeps_unwritten_records_for_the_next_start(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    with TcpProxy(make_url(empty_postgres_url).port or 5432) as proxy:
        url = proxied(empty_postgres_url, proxy.port)
        server = start_server(tmp_path, url, WISP_WRITER_STOP_TIMEOUT="1")
        with server:
            server.deploy("quick", QUICK)
            accepted = set()
            with server.client() as http:
                # Resolved and cached before the cut: invokes need no store read then.
                assert http.post(INVOKE + "?blocking=true", json={}).status_code == 200
                proxy.cut()
                for _ in range(40):
                    answer = http.post(INVOKE + "?blocking=true", json={})
                    assert answer.status_code == 200, answer.text  # ran; record unwritten
                    accepted.add(answer.json()["activationId"])
            began = time.monotonic()
            server.stop()
            assert server.proc is not None and server.proc.returncode == 0, server.output()
            assert time.monotonic() - began < 15  # the stop did not wait for the store
        assert "activation records not written after 1.0s are kept in" in server.output()
        kept = list((server.data_dir / "journal").glob("*.unwritten"))
        assert len(kept) == 1
        assert not accepted & stored(empty_postgres_url).keys()
        proxy.restore()
        with server:  # the same data dir and database
            found = wait_for_records(url, accepted, 30)
        assert accepted <= found.keys()
        assert {found[aid] for aid in accepted} == {0}  # the real results, not "lost"
        assert not list((server.data_dir / "journal").glob("*.unwritten"))
