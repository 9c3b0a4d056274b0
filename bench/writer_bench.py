"""CPU per activation record of the group-commit writer at a steady arrival rate.

Records arrive as they do from a busy server (a few every millisecond) and the
writer thread commits them into a fresh SQLite database. The main thread mostly
sleeps, so the process's CPU time is the writer's cost: on the server it is taken
from the same GIL and cores as the invoke path. Runs each (source, interval) pair in
its own process, alternating, and prints JSON with the medians.

    python bench/writer_bench.py [--src /tmp/base/src] [--intervals 0.005,0.02] [--rounds 3]
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
from pathlib import Path

CHILD = """
import json, sys, tempfile, time
sys.path.insert(0, sys.argv[1])
from wisp.ids import activation_id
from wisp.models import Activation
from wisp.store.sql import SqlStore
from wisp.store.writer import ActivationWriter

interval, rate, seconds = float(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
store = SqlStore(f"sqlite:///{tempfile.mkdtemp()}/bench.db")
store.migrate()
writer = ActivationWriter(store, interval=interval)
writer.start()
annotations = [
    {"key": "path", "value": "guest/fn"}, {"key": "kind", "value": "python:3.11"},
    {"key": "limits", "value": {"timeout": 3000, "memory": 256, "logs": 1024, "concurrency": 1}},
    {"key": "waitTime", "value": 0}, {"key": "timeout", "value": False},
]
records = []
for _ in range(int(rate * seconds)):
    now = int(time.time() * 1000)
    record = Activation(activation_id(), "guest", "fn", "0.0.1", "guest", now, now, 0,
                        {"greeting": "Hello Ada"}, annotations=list(annotations))
    record.encoded()  # done on the invoke path, not by the writer
    records.append(record)
per_ms = max(1, rate // 1000)
cpu, began, i = time.process_time(), time.monotonic(), 0
while i < len(records):
    for record in records[i : i + per_ms]:
        writer.submit(record)
    i += per_ms
    delay = began + i / rate - time.monotonic()
    if delay > 0:
        time.sleep(delay)
writer.flush()
used = time.process_time() - cpu
writer.stop()
print(json.dumps({"cpu_us_per_record": used / len(records) * 1e6, "batches": writer.batches}))
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    here = str(Path(__file__).resolve().parent.parent / "src")
    parser.add_argument(
        "--src", action="append", help="src/ folders to compare (default: this one)"
    )
    parser.add_argument("--intervals", default="0.005,0.02", help="group-commit intervals, seconds")
    parser.add_argument("--rate", type=int, default=3000, help="records per second")
    parser.add_argument("--seconds", type=float, default=3.0)
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    sources = args.src or [here]
    intervals = [float(i) for i in args.intervals.split(",")]
    samples: dict[str, list[dict[str, float]]] = {}
    for _ in range(args.rounds):
        for src in sources:
            for interval in intervals:
                out = subprocess.run(
                    [
                        sys.executable,
                        "-c",
                        CHILD,
                        src,
                        str(interval),
                        str(args.rate),
                        str(args.seconds),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                ).stdout
                samples.setdefault(f"{src} interval={interval}", []).append(json.loads(out))
    print(
        json.dumps(
            {
                key: {
                    "cpu_us_per_record": round(
                        statistics.median(s["cpu_us_per_record"] for s in runs), 1
                    ),
                    "records_per_batch": round(
                        args.rate * args.seconds / statistics.median(s["batches"] for s in runs), 1
                    ),
                }
                for key, runs in samples.items()
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()
