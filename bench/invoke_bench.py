"""Invoke-path benchmark against a real `wisp server` (prints JSON; not a test).

Measures, in one run on this machine:
- cold start of a newly created function, first blocking invoke over HTTP (p50/p99);
- warm blocking invoke latency at concurrency 1 (raw keep-alive HTTP client) and 32 (wrk);
- sustained blocking invocations/s with every activation recorded (wrk, then a count
  of stored records);
- non-blocking accept rate (wrk);
- private memory of an idle warm Python instance;
- the baseline: a fresh `python3` process per invocation (latency and rate).

Usage: python bench/invoke_bench.py [--duration 10] [--cold 100]
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import re
import shutil
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

CODE = "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'stranger')}\n"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class RawClient:
    """Minimal HTTP/1.1 keep-alive client: the load generator's own cost stays tiny."""

    def __init__(self, port: int, auth: str) -> None:
        self.port = port
        self.auth = "Basic " + base64.b64encode(auth.encode()).decode()
        self.connect()

    def connect(self) -> None:
        self.sock = socket.create_connection(("127.0.0.1", self.port))
        self.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""

    def request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        try:
            return self._request(method, path, body)
        except ConnectionError:  # the server closed an idle keep-alive connection
            self.sock.close()
            self.connect()
            return self._request(method, path, body)

    def recv(self) -> bytes:
        data = self.sock.recv(65536)
        if not data:
            raise ConnectionResetError("server closed the connection")
        return data

    def _request(self, method: str, path: str, body: bytes = b"") -> tuple[int, bytes]:
        head = (
            f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {self.auth}\r\n"
            f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
        )
        self.sock.sendall(head.encode() + body)
        while b"\r\n\r\n" not in self.buffer:
            self.buffer += self.recv()
        header, _, rest = self.buffer.partition(b"\r\n\r\n")
        status = int(header.split(b" ", 2)[1])
        match = re.search(rb"(?i)content-length:\s*(\d+)", header)
        length = int(match.group(1)) if match else 0
        while len(rest) < length:
            rest += self.recv()
        self.buffer = rest[length:]
        return status, rest[:length]


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]


def summary(values_ms: list[float]) -> dict[str, float]:
    return {
        "n": len(values_ms),
        "p50_ms": round(statistics.median(values_ms), 3),
        "p99_ms": round(percentile(values_ms, 99), 3),
    }


SERVER_CMD = ["wisp"]  # --server-src runs another checkout's code instead (A/B runs)


def server_cmd(src: str | None) -> list[str]:
    """The ``wisp`` command, or one that runs the server from another checkout's src/."""
    if not src:
        return ["wisp"]
    return [
        sys.executable,
        "-c",
        "import sys; sys.path.insert(0, sys.argv.pop(1)); from wisp.cli.main import main; main()",
        src,
    ]


def start_server(
    tmp: Path, cmd: list[str] | None = None
) -> tuple[subprocess.Popen[bytes], int, str]:
    port = free_port()
    env = {
        **os.environ,
        "WISP_CONFIG": str(tmp / "credentials.json"),
        # The benchmark measures the platform, not the default tenant quotas.
        "WISP_NAMESPACE_CONCURRENT": "100000",
        "WISP_NAMESPACE_PER_MINUTE": "100000000",
    }
    log = os.environ.get("WISP_BENCH_STDERR")  # a file for the server's log (debugging)
    proc = subprocess.Popen(
        [*(cmd or SERVER_CMD), "server", "--port", str(port), "--data-dir", str(tmp / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=open(log, "ab") if log else subprocess.DEVNULL,  # noqa: SIM115
    )
    deadline = time.time() + 30
    while time.time() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                break
        except OSError:
            time.sleep(0.1)
    time.sleep(0.5)
    auth = (tmp / "data" / "guest.key").read_text().strip()
    return proc, port, auth


def put_action(client: RawClient, name: str) -> None:
    body = json.dumps({"exec": {"kind": "python:default", "code": CODE}}).encode()
    status, text = client.request(
        "PUT", f"/api/v1/namespaces/_/actions/{name}?overwrite=true", body
    )
    if status != 200:
        raise SystemExit(f"could not create {name}: {status} {text!r}")


def invoke_path(name: str, blocking: bool = True) -> str:
    return f"/api/v1/namespaces/_/actions/{name}?blocking={'true' if blocking else 'false'}"


def cold_start(client: RawClient, count: int) -> dict[str, float]:
    times = []
    for i in range(count):
        name = f"cold{i}"
        put_action(client, name)
        time.sleep(0.02)  # let the stem cells refill, as between real deploys and calls
        t = time.perf_counter()
        status, _ = client.request("POST", invoke_path(name), b'{"name":"Ada"}')
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    return summary(times)


def warm_c1(client: RawClient, count: int) -> dict[str, float]:
    for _ in range(50):
        client.request("POST", invoke_path("warm"), b'{"name":"Ada"}')
    times = []
    for _ in range(count):
        t = time.perf_counter()
        status, _ = client.request("POST", invoke_path("warm"), b'{"name":"Ada"}')
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    return summary(times)


WRK_SCRIPT = """
wrk.method = "POST"
wrk.body = '{"name":"Ada"}'
wrk.headers["Content-Type"] = "application/json"
wrk.headers["Authorization"] = "%s"
"""


def wrk(port: int, auth: str, path: str, connections: int, seconds: int) -> dict[str, float]:
    if shutil.which("wrk") is None:
        return {"error": "wrk not installed (apt-get install wrk)"}  # type: ignore[dict-item]
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(WRK_SCRIPT % ("Basic " + base64.b64encode(auth.encode()).decode()))
    out = subprocess.run(
        [
            "wrk",
            "-t1",
            f"-c{connections}",
            f"-d{seconds}s",
            "--latency",
            "-s",
            script.name,
            f"http://127.0.0.1:{port}{path}",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    os.unlink(script.name)

    def ms(label: str) -> float:
        m = re.search(rf"{label}\s+([\d.]+)(us|ms|s)", out)
        if not m:
            return -1
        value, unit = float(m.group(1)), m.group(2)
        return value / 1000 if unit == "us" else value * 1000 if unit == "s" else value

    rate = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    non2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return {
        "connections": connections,
        "requests": int(total.group(1)) if total else 0,
        "rps": float(rate.group(1)) if rate else 0.0,
        "p50_ms": ms("50%"),
        "p99_ms": ms("99%"),
        "non_2xx": int(non2xx.group(1)) if non2xx else 0,
    }


def count_records(db: Path, name: str) -> int:
    with sqlite3.connect(db) as conn:
        return int(
            conn.execute("select count(*) from activations where name = ?", (name,)).fetchone()[0]
        )


def idle_instance_memory(server_pid: int) -> dict[str, float]:
    """Private memory (kB) of instances forked from the zygote."""
    out = subprocess.run(["ps", "-eo", "pid,ppid,args"], capture_output=True, text=True).stdout
    rows = [line.split(None, 2) for line in out.strip().splitlines()[1:]]
    zygotes = {r[0] for r in rows if r[1] == str(server_pid) and "launcher.py" in r[2]}
    private = []
    for pid, ppid, args in rows:
        if ppid in zygotes and "launcher.py" in args:  # Python instances, not exec'd runtimes
            try:
                text = Path(f"/proc/{pid}/smaps_rollup").read_text()
            except OSError:
                continue  # gone since ps listed it
            kb = sum(int(m) for m in re.findall(r"Private_(?:Clean|Dirty):\s+(\d+)", text))
            private.append(kb / 1024)
    if not private:
        return {"instances": 0}
    return {
        "instances": len(private),
        "median_private_mib": round(statistics.median(private), 2),
        "max_private_mib": round(max(private), 2),
    }


BASELINE = (
    "import json, sys\n"
    "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'stranger')}\n"
    "print(json.dumps(main(json.loads(sys.argv[1]))))\n"
)


def baseline(count: int, seconds: float) -> dict[str, object]:
    def once() -> float:
        t = time.perf_counter()
        subprocess.run(
            [sys.executable, "-c", BASELINE, '{"name":"Ada"}'], capture_output=True, check=True
        )
        return (time.perf_counter() - t) * 1000

    latency = summary([once() for _ in range(count)])
    done = 0
    end = time.time() + seconds
    with ThreadPoolExecutor(2) as pool:
        while time.time() < end:
            list(pool.map(lambda _: once(), range(8)))
            done += 8
    return {"fresh_process_latency": latency, "fresh_process_per_s": round(done / seconds, 1)}


def progress(results: dict[str, object]) -> None:
    name, value = list(results.items())[-1]
    print(f"{name}: {json.dumps(value)}", file=sys.stderr, flush=True)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--cold", type=int, default=100)
    parser.add_argument("--warm", type=int, default=2000)
    parser.add_argument("--server-src", help="run the server from this src/ folder (A/B runs)")
    args = parser.parse_args()
    if args.server_src:
        SERVER_CMD[:] = server_cmd(args.server_src)
    tmp = Path(tempfile.mkdtemp(prefix="wisp-bench-"))
    proc, port, auth = start_server(tmp)
    results: dict[str, object] = {
        "machine": {"cpus": os.cpu_count(), "python": sys.version.split()[0]}
    }
    try:
        client = RawClient(port, auth)
        results["cold_start_http"] = cold_start(client, args.cold)
        progress(results)
        put_action(client, "warm")
        results["warm_c1_http"] = warm_c1(client, args.warm)
        progress(results)
        results["warm_c32_http"] = wrk(port, auth, invoke_path("warm"), 32, args.duration)
        progress(results)
        put_action(client, "sustained")
        before = time.time()
        sustained = wrk(port, auth, invoke_path("sustained"), 64, args.duration)
        time.sleep(1)
        sustained["recorded"] = count_records(tmp / "data" / "wisp.db", "sustained")
        results["sustained_blocking"] = sustained
        progress(results)
        results["nonblocking_accept"] = wrk(
            port, auth, invoke_path("warm", blocking=False), 32, max(3, args.duration // 2)
        )
        time.sleep(2)
        results["idle_instance_memory"] = idle_instance_memory(proc.pid)
        del before
    finally:
        proc.terminate()
        proc.wait(15)
        shutil.rmtree(tmp, ignore_errors=True)
    results["baseline"] = baseline(50, 5)
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
