"""Fair share under a flood (prints JSON; not a test).

Namespace `flood` saturates a real `wisp server` with `wrk` (blocking invokes of a
function that holds its instance for a few milliseconds) while namespace `quiet`
invokes its own function one request at a time. Reports the quiet tenant's latency
alone and during the flood, and how many of the flood's requests were throttled by
the namespace quota (429).

Usage: python bench/fairness_bench.py [--duration 10] [--pool-mb 2048]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from invoke_bench import RawClient, free_port, percentile, wrk

FLOOD = "import time\ndef main(args):\n    time.sleep(0.005)\n    return {}\n"
QUIET = "def main(args):\n    return {'ok': True}\n"


def start(tmp: Path, pool_mb: int) -> tuple[subprocess.Popen[bytes], int]:
    port = free_port()
    env = {
        **os.environ,
        "WISP_CONFIG": str(tmp / "credentials.json"),
        "WISP_POOL_MEMORY_MB": str(pool_mb),
        "WISP_NAMESPACE_PER_MINUTE": "100000000",
    }
    proc = subprocess.Popen(
        ["wisp", "server", "--port", str(port), "--data-dir", str(tmp / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        if (tmp / "data" / "guest.key").exists():
            break
        time.sleep(0.1)
    time.sleep(1)
    return proc, port


def create_namespace(tmp: Path, name: str) -> str:
    out = subprocess.run(
        ["wisp", "admin", "namespace", "create", name, "--data-dir", str(tmp / "data")],
        capture_output=True,
        text=True,
        check=True,
    )
    return out.stdout.strip()


def deploy(client: RawClient, name: str, code: str) -> None:
    body = json.dumps({"exec": {"kind": "python:default", "code": code}}).encode()
    path = f"/api/v1/namespaces/_/actions/{name}?overwrite=true"
    status, text = client.request("PUT", path, body)
    assert status == 200, text


def sample(client: RawClient, seconds: float) -> list[float]:
    times = []
    end = time.time() + seconds
    while time.time() < end:
        t = time.perf_counter()
        status, _ = client.request("POST", "/api/v1/namespaces/_/actions/q?blocking=true", b"{}")
        if status == 200:
            times.append((time.perf_counter() - t) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--pool-mb", type=int, default=2048)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="wisp-fair-"))
    proc, port = start(tmp, args.pool_mb)
    try:
        flood_auth = create_namespace(tmp, "flood")
        quiet_auth = create_namespace(tmp, "quiet")
        flood, quiet = RawClient(port, flood_auth), RawClient(port, quiet_auth)
        deploy(flood, "f", FLOOD)
        deploy(quiet, "q", QUIET)
        alone = sample(quiet, 3)
        results: dict[str, object] = {}

        def run_flood() -> None:
            results["flood"] = wrk(
                port, flood_auth, "/api/v1/namespaces/_/actions/f?blocking=true", 64, args.duration
            )

        thread = threading.Thread(target=run_flood)
        thread.start()
        time.sleep(1)
        during = sample(quiet, args.duration - 2)
        thread.join()
        results["quiet_alone"] = {
            "n": len(alone),
            "p50_ms": round(statistics.median(alone), 3),
            "p99_ms": round(percentile(alone, 99), 3),
        }
        results["quiet_during_flood"] = {
            "n": len(during),
            "p50_ms": round(statistics.median(during), 3),
            "p99_ms": round(percentile(during, 99), 3),
        }
        results["pool_mb"] = args.pool_mb
        print(json.dumps(results, indent=2))
    finally:
        proc.terminate()
        proc.wait(20)


if __name__ == "__main__":
    main()
