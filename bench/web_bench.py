"""Web functions and gateway routes against the plain invoke API, in the same run.

Starts a real ``wisp server`` (as ``invoke_bench.py`` does), deploys one warm Python
function, exposes it as a web function and as gateway routes with the ``none`` and
``api-key`` policies, then drives each path with ``wrk`` (POST, JSON body, keep-alive)
in interleaved rounds so that drift in the machine's load hits every path alike.
Prints JSON: requests/s and latency per path, and each path's throughput relative
to the invoke API (the policy layer's cost is ``1 - ratio``).

    python bench/web_bench.py [--duration 8] [--connections 32] [--rounds 2]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from invoke_bench import start_server

CODE = "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'stranger')}\n"
API_KEY = "bench-key-" + "x" * 24


def wrk(url: str, headers: dict[str, str], connections: int, seconds: int) -> dict[str, float]:
    lines = ['wrk.method = "POST"', 'wrk.body = \'{"name":"Ada"}\'']
    headers = {"Content-Type": "application/json", **headers}
    lines += [f'wrk.headers["{k}"] = "{v}"' for k, v in headers.items()]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write("\n".join(lines) + "\n")
    command = ["wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "--latency", "-s", script.name]
    out = subprocess.run([*command, url], capture_output=True, text=True, check=True).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)\b", out)
        if not m:
            return -1.0
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def setup(base: str, auth: str) -> None:
    user, _, key = auth.partition(":")
    with httpx.Client(base_url=base, auth=(user, key), timeout=30) as client:
        action = {
            "exec": {"kind": "python:default", "code": CODE},
            "annotations": [{"key": "web-export", "value": True}],
        }
        client.put("/api/v1/namespaces/_/actions/bench", json=action).raise_for_status()
        for path, policy in (
            ("/none", {"type": "none"}),
            ("/key", {"type": "api-key", "keys": [API_KEY]}),
        ):
            doc = {
                "basePath": "/b",
                "path": path,
                "method": "POST",
                "function": "bench",
                "responseType": "json",
                "policy": policy,
            }
            client.put("/api/v1/namespaces/_/routes", json=doc).raise_for_status()
        # Warm: the first calls start the instance and fill the caches.
        for _ in range(20):
            client.post("/api/v1/namespaces/_/actions/bench?blocking=true&result=true", json={})
            client.post("/api/v1/web/guest/default/bench.json", json={})
            client.post("/gw/guest/b/none", json={})
            client.post("/gw/guest/b/key", json={}, headers={"X-API-Key": API_KEY})


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=8)
    parser.add_argument("--connections", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (apt-get install wrk)")
    tmp = Path(tempfile.mkdtemp(prefix="wisp-web-bench-"))
    proc, port, auth = start_server(tmp)
    base = f"http://127.0.0.1:{port}"
    basic = "Basic " + base64.b64encode(auth.encode()).decode()
    paths = {
        "invoke_api": (
            f"{base}/api/v1/namespaces/_/actions/bench?blocking=true&result=true",
            {"Authorization": basic},
        ),
        "web_function": (f"{base}/api/v1/web/guest/default/bench.json", {}),
        "route_none": (f"{base}/gw/guest/b/none", {}),
        "route_api_key": (f"{base}/gw/guest/b/key", {"X-API-Key": API_KEY}),
    }
    runs: dict[str, list[dict[str, float]]] = {name: [] for name in paths}
    try:
        setup(base, auth)
        for _ in range(args.rounds):
            for name, (url, headers) in paths.items():
                runs[name].append(wrk(url, headers, args.connections, args.duration))
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        shutil.rmtree(tmp, ignore_errors=True)
    results: dict[str, object] = {
        "connections": args.connections,
        "seconds": args.duration,
        "rounds": args.rounds,
    }
    invoke_rps = statistics.median(r["rps"] for r in runs["invoke_api"])
    for name, samples in runs.items():
        rps = statistics.median(r["rps"] for r in samples)
        results[name] = {
            "rps": round(rps, 1),
            "p50_ms": statistics.median(r["p50_ms"] for r in samples),
            "p99_ms": statistics.median(r["p99_ms"] for r in samples),
            "non_2xx": sum(int(r["non_2xx"]) for r in samples),
            "vs_invoke": round(rps / invoke_rps, 3) if invoke_rps else None,
            "samples_rps": [r["rps"] for r in samples],
        }
    print(json.dumps(results))


if __name__ == "__main__":
    main()
