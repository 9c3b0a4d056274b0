"""Start-up of `wisp activations logs --follow`: until its request arrives, and its first line.

A stand-in server on a local socket (no `wisp server`: only the CLI is measured) answers
the stream request as the real one does — chunked Server-Sent Events, ``: stream open``
and then one ``log`` event — and notes when the request's head arrived. Per run:
- ``request``: from starting the command to its request reaching the server (the
  interpreter, the imports, reading credentials, connecting);
- ``first_line``: from starting the command to the log line on its stdout.
Each run then ends with SIGINT, as a user stops following. Variants run interleaved:
``python -c pass`` (the interpreter's own start-up), this checkout's src/ and, with
``--base-src DIR``, another checkout's (A/B in one run). Bytecode is cached, as after
``pip install``. Prints JSON.

Usage: python bench/follow_bench.py [--runs 10] [--base-src /tmp/before/src]
"""

from __future__ import annotations

import argparse
import json
import os
import queue
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from invoke_bench import summary

LOG_LINE = "2026-01-01T00:00:00.000000Z stdout: hello bench"
EVENT = (
    "event: log\ndata: "
    + json.dumps({"activationId": "a" * 32, "name": "bench/fn", "line": LOG_LINE})
    + "\n\n"
).encode()


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


class StandIn:
    """Answers each connection with an SSE stream; ``arrivals`` gets each request's time."""

    def __init__(self) -> None:
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        self.arrivals: queue.Queue[float] = queue.Queue()
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                peer, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(peer,), daemon=True).start()

    def _serve(self, peer: socket.socket) -> None:
        with peer:
            head = b""
            while b"\r\n\r\n" not in head:
                data = peer.recv(65536)
                if not data:
                    return
                head += data
            self.arrivals.put(time.perf_counter())
            peer.sendall(
                b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
                b"transfer-encoding: chunked\r\ncache-control: no-cache\r\n\r\n"
                + chunk(b": stream open\n\n")
                + chunk(EVENT)
            )
            peer.recv(1)  # until the client hangs up

    def close(self) -> None:
        self.listener.close()


def cli_from(src: Path) -> list[str]:
    code = "import sys; sys.path.insert(0, sys.argv.pop(1)); from wisp.cli.main import main; main()"
    return [sys.executable, "-c", code, str(src), "activations", "logs", "--follow"]


def follow_once(cmd: list[str], env: dict[str, str], server: StandIn) -> tuple[float, float]:
    start = time.perf_counter()
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    assert proc.stdout is not None and proc.stderr is not None
    line = proc.stdout.readline()
    printed = time.perf_counter()
    proc.send_signal(signal.SIGINT)
    proc.wait(30)
    err = proc.stderr.read().decode()
    proc.stdout.close()
    proc.stderr.close()
    if line.decode().rstrip("\n") != LOG_LINE or proc.returncode != 0:
        raise SystemExit(f"{cmd}: {proc.returncode} {line!r} {err}")
    arrived = server.arrivals.get(timeout=30)
    return (arrived - start) * 1000, (printed - start) * 1000


def main(runs: int, base_src: str | None) -> None:
    server = StandIn()
    env = {k: v for k, v in os.environ.items() if not k.startswith("WISP_")}
    env.pop("PYTHONDONTWRITEBYTECODE", None)
    pyc = tempfile.mkdtemp(prefix="wisp-bench-pyc-")
    home = tempfile.mkdtemp(prefix="wisp-bench-home-")
    env.update(
        PYTHONPYCACHEPREFIX=pyc,
        WISP_APIHOST=server.url,
        WISP_AUTH="u:k",
        WISP_CONFIG=str(Path(home) / "credentials.json"),
    )
    variants = {"follow": cli_from(Path(__file__).resolve().parent.parent / "src")}
    if base_src:
        variants["baseline_follow"] = cli_from(Path(base_src))
    python: list[float] = []
    request: dict[str, list[float]] = {name: [] for name in variants}
    first_line: dict[str, list[float]] = {name: [] for name in variants}
    try:
        for attempt in range(runs + 2):  # two warm-ups write the bytecode and fill the caches
            start = time.perf_counter()
            subprocess.run([sys.executable, "-c", "pass"], env=env, check=True)
            if attempt >= 2:
                python.append((time.perf_counter() - start) * 1000)
            for name, cmd in variants.items():
                sent, printed = follow_once(cmd, env, server)
                if attempt >= 2:
                    request[name].append(sent)
                    first_line[name].append(printed)
    finally:
        server.close()
        shutil.rmtree(pyc, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)
    result: dict[str, object] = {"python_c_pass": summary(python)}
    for name in variants:
        result[f"{name}_request"] = summary(request[name])
        result[f"{name}_first_line"] = summary(first_line[name])
    result["load_average"] = os.getloadavg()
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=10)
    parser.add_argument("--base-src", help="another checkout's src/, run interleaved (A/B)")
    args = parser.parse_args()
    main(args.runs, args.base_src)
