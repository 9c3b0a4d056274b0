"""Live stream push latency against a real `wisp server` (prints JSON; not a test).

For each activation: (when its ``log`` event reaches a Server-Sent Events client) minus
(the activation's ``end``, as the server records it). Same host, same clock; ``end``
is in whole milliseconds, so figures carry ±1 ms. Measured with invocations one at
a time and with several callers at once (the stream shares the event loop with them).

Usage: python bench/sse_bench.py [--count 200] [--concurrency 8]
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import queue
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx

CODE = "def main(args):\n    print('hello', args.get('n'))\n    return {'n': args.get('n')}\n"
STREAM = "/api/v1/namespaces/_/activations/stream"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def start_server(tmp: Path) -> tuple[subprocess.Popen[bytes], str, tuple[str, str]]:
    port = free_port()
    env = {
        **os.environ,
        "WISP_CONFIG": str(tmp / "credentials.json"),
        "WISP_NAMESPACE_CONCURRENT": "100000",
        "WISP_NAMESPACE_PER_MINUTE": "100000000",
    }
    proc = subprocess.Popen(
        ["wisp", "server", "--port", str(port), "--data-dir", str(tmp / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.time() + 60
    while time.time() < deadline:
        try:
            if httpx.get(f"{url}/api/v1", timeout=1).status_code == 200:
                break
        except httpx.HTTPError:
            time.sleep(0.1)
    user, _, key = (tmp / "data" / "guest.key").read_text().strip().partition(":")
    return proc, url, (user, key)


def listen(url: str, auth: tuple[str, str], out: Any, ready: Any) -> None:
    """In a process of its own (the invoking threads must not delay it for the GIL):
    puts (activation id, epoch seconds) when each activation's log line arrives."""
    event = ""
    with (
        httpx.Client(base_url=url, auth=auth, timeout=None) as client,
        client.stream("GET", STREAM, params={"name": "bench/"}) as response,
    ):
        for line in response.iter_lines():
            if line.startswith(": stream open"):
                ready.set()
            elif line.startswith("event:"):
                event = line[6:].strip()
            elif line.startswith("data:") and event == "log":
                at = time.time()
                out.put((json.loads(line[5:])["activationId"], at))


def invoke(client: httpx.Client, n: int) -> tuple[str, int]:
    r = client.post("/api/v1/namespaces/_/actions/bench/echo?blocking=true", json={"n": n})
    r.raise_for_status()
    record = r.json()
    return record["activationId"], record["end"]


def measure(url: str, auth: tuple[str, str], count: int, concurrency: int) -> dict[str, Any]:
    arrivals: Any = multiprocessing.Queue()
    ready = multiprocessing.Event()
    listener = multiprocessing.Process(target=listen, args=(url, auth, arrivals, ready))
    listener.start()
    if not ready.wait(30):
        raise SystemExit("the stream did not open")
    ends: dict[str, int] = {}
    lock = threading.Lock()

    def worker(indexes: range) -> None:
        with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
            for n in indexes:
                aid, end = invoke(client, n)
                with lock:
                    ends[aid] = end

    per = count // concurrency
    with ThreadPoolExecutor(concurrency) as pool:
        list(pool.map(worker, [range(i * per, (i + 1) * per) for i in range(concurrency)]))
    lags: list[float] = []
    deadline = time.time() + 30
    seen: dict[str, float] = {}
    while len(seen) < len(ends) and time.time() < deadline:
        try:
            aid, at = arrivals.get(timeout=1)
        except queue.Empty:
            continue
        seen.setdefault(aid, at)
    listener.terminate()
    listener.join()
    for aid, end in ends.items():
        if aid in seen:
            lags.append((seen[aid] - end / 1000) * 1000)
    lags.sort()
    return {
        "concurrency": concurrency,
        "activations": len(ends),
        "events": len(lags),
        "lag_p50_ms": round(statistics.median(lags), 2),
        "lag_p90_ms": round(lags[int(len(lags) * 0.9) - 1], 2),
        "lag_p99_ms": round(lags[max(0, int(len(lags) * 0.99) - 1)], 2),
        "lag_max_ms": round(lags[-1], 2),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--count", type=int, default=200)
    parser.add_argument("--concurrency", type=int, default=8)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        proc, url, auth = start_server(Path(tmp))
        try:
            with httpx.Client(base_url=url, auth=auth, timeout=60) as client:
                client.put("/api/v1/namespaces/_/packages/bench?overwrite=true", json={})
                body = {"exec": {"kind": "python:default", "code": CODE}}
                r = client.put("/api/v1/namespaces/_/actions/bench/echo?overwrite=true", json=body)
                r.raise_for_status()
                invoke(client, -1)  # cold start out of the way
            results = [
                measure(url, auth, args.count, 1),
                measure(url, auth, args.count, args.concurrency),
            ]
        finally:
            proc.terminate()
            proc.wait(20)
    load = os.getloadavg()
    json.dump({"sse_push_lag": results, "loadavg": [round(x, 2) for x in load]}, sys.stdout)
    print()


if __name__ == "__main__":
    main()
