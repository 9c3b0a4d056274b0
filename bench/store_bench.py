"""Activation inserts/s through ActivationWriter, per backend and id scheme.

Compares time-ordered ids (``wisp.ids.activation_id``) with random ``uuid4().hex``
ids, on SQLite and PostgreSQL, each into a fresh database. Prints JSON.

    python bench/store_bench.py [--records 100000] [--batch 512] [--postgres-url URL]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import psycopg
from sqlalchemy import make_url

from wisp.ids import activation_id
from wisp.models import SUCCESS, Activation
from wisp.store.sql import SqlStore
from wisp.store.writer import ActivationWriter

DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
ID_SCHEMES: dict[str, Callable[[], str]] = {
    "time_ordered": activation_id,
    "uuid4": lambda: uuid.uuid4().hex,
}


def records(n: int, new_id: Callable[[], str]) -> list[Activation]:
    """Records shaped like a small web function's, built before the clock starts."""
    now = int(time.time() * 1000)
    return [
        Activation(
            activation_id=new_id(),
            namespace="guest",
            name=f"demo/fn{i % 20}",
            version="0.0.1",
            subject="guest",
            start=now + i,
            end=now + i + 3,
            status_code=SUCCESS,
            result={"body": f"hello {i}", "statusCode": 200},
            logs=[f"2024-01-01T00:00:00.000Z stdout: request {i}"],
            annotations=[
                {"key": "path", "value": f"guest/demo/fn{i % 20}"},
                {"key": "kind", "value": "python:3.11"},
                {"key": "limits", "value": {"timeout": 3000, "memory": 256, "logs": 16}},
                {"key": "waitTime", "value": 1},
            ],
            result_size=32,
        )
        for i in range(n)
    ]


@contextmanager
def sqlite_database() -> Iterator[str]:
    with tempfile.TemporaryDirectory(prefix="wisp-bench-") as tmp:
        yield f"sqlite:///{Path(tmp) / 'wisp.db'}"


@contextmanager
def postgres_database(server_url: str) -> Iterator[str]:
    server = make_url(server_url).set(drivername="postgresql")
    dsn = server.render_as_string(hide_password=False)
    name = f"wisp_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(dsn, autocommit=True, connect_timeout=3) as admin:
        admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield server.set(database=name).render_as_string(hide_password=False)
    finally:
        with psycopg.connect(dsn, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def run(url: str, batch: list[Activation], batch_size: int) -> dict[str, Any]:
    store = SqlStore(url)
    store.migrate()
    writer = ActivationWriter(store, batch=batch_size)
    writer.start()
    started = time.perf_counter()
    for record in batch:
        writer.submit(record)
    submitted = time.perf_counter()
    writer.flush()
    elapsed = time.perf_counter() - started
    writer.stop()
    assert writer.written == len(batch), (writer.written, len(batch))
    store.close()
    return {
        "inserts_per_s": round(len(batch) / elapsed),
        "seconds": round(elapsed, 3),
        "transactions": writer.batches,
        "submit_us": round((submitted - started) / len(batch) * 1e6, 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=100_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument(
        "--postgres-url",
        default=os.environ.get("WISP_TEST_POSTGRES_URL") or DEFAULT_POSTGRES_URL,
        help="server to create a scratch database on",
    )
    args = parser.parse_args()

    backends: dict[str, Callable[[], Any]] = {
        "sqlite": sqlite_database,
        "postgresql": lambda: postgres_database(args.postgres_url),
    }
    results: dict[str, Any] = {}
    for backend, database in backends.items():
        results[backend] = {}
        for scheme, new_id in ID_SCHEMES.items():
            batch = records(args.records, new_id)
            try:
                with database() as url:
                    results[backend][scheme] = run(url, batch, args.batch)
            except (psycopg.OperationalError, OSError) as e:
                results[backend][scheme] = {"error": str(e)}
    print(
        json.dumps(
            {
                "bench": "store.activation_writer",
                "records": args.records,
                "batch": args.batch,
                "python": platform.python_version(),
                "results": results,
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
