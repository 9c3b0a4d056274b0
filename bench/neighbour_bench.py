"""A well-behaved tenant's latency while hostile functions run (prints JSON; not a test).

A real `wisp server` serves a trivial function one request at a time, first quietly,
then while a CPU spinner, a log flood and a fork bomb run (each until its 3 s
timeout). Each round measures both phases; with ``--server-src DIR`` a second server
runs another checkout's code and rounds alternate between the two (A/B in one run).
Issue 6's target: p99 under attack within 2x of the quiet p99.

Usage: python bench/neighbour_bench.py [--rounds 5] [--seconds 2] [--server-src DIR]
       [--attacks spin,spam,forks] [--copies N] [--refire MS]

``--attacks frames,malformed`` are issue 12's control-socket attacks (a frame flood, a
malformed frame); each ends at once, so ``--refire MS`` fires the attacks again every
MS ms while the neighbour is measured. ``exit`` (a function that exits) makes the same
churn of killed instances and cold starts without a protocol violation.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from invoke_bench import RawClient, percentile, server_cmd, start_server

GOOD = "def main(args):\n    return {'ok': 1}\n"
ATTACKS = {
    "spin": "def main(args):\n    while True:\n        pass\n",
    "spam": "def main(args):\n    while True:\n        print('y' * 500)\n",
    "forks": (
        "import os\ndef main(args):\n    while True:\n        try:\n            os.fork()\n"
        "        except OSError:\n            pass\n"
    ),
}
# Issue 12: what a function can write to its control socket (fd 3). Each ends at once
# (the instance is killed at the bad frame): --refire keeps them coming.
ATTACKS["frames"] = (  # valid 64 KB result frames, as fast as it can
    "import os\nBODY = b'{\"result\":{\"x\":\"' + b'a' * 65000 + b'\"}}'\n"
    "FRAME = len(BODY).to_bytes(4, 'big') + BODY\n"
    "def main(args):\n    while True:\n        os.write(3, FRAME)\n"
)
ATTACKS["malformed"] = (
    "import os\ndef main(args):\n    os.write(3, b'\\0\\0\\0\\x02[]')\n    return {}\n"
)
# The same churn of killed instances without a protocol violation, for comparison.
ATTACKS["exit"] = "import os\ndef main(args):\n    os._exit(1)\n"
ATTACK_MS = 3000


def deploy(client: RawClient, name: str, code: str, timeout: int = 3000, logs: int = 16) -> None:
    body = {"exec": {"kind": "python:default", "code": code}}
    body["limits"] = {"timeout": timeout, "logs": logs}
    status, text = client.request(
        "PUT", f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json.dumps(body).encode()
    )
    assert status == 200, text


def sample(client: RawClient, seconds: float) -> list[float]:
    times = []
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        t = time.perf_counter()
        status, _ = client.request("POST", "/api/v1/namespaces/_/actions/good?blocking=true", b"{}")
        times.append((time.perf_counter() - t) * 1000)
        assert status == 200, status
    return times


def attack(client: RawClient, names: list[str]) -> None:
    for name in names:
        status, _ = client.request("POST", f"/api/v1/namespaces/_/actions/{name}", b"{}")
        assert status == 202, status


def figures(values: list[float]) -> dict[str, float]:
    return {
        "n": len(values),
        "p50_ms": round(statistics.median(values), 3),
        "p99_ms": round(percentile(values, 99), 3),
    }


class Side:
    def __init__(
        self, label: str, tmp: Path, src: str | None, attacks: list[str], refire: float = 0
    ) -> None:
        self.label = label
        self.attacks = attacks
        self.refire = refire  # seconds between firings during the attack phase; 0: once
        self.proc, port, auth = start_server(tmp, server_cmd(src))
        self.client = RawClient(port, auth)
        self.side_client = RawClient(port, auth)
        deploy(self.client, "good", GOOD)
        for name, code in ATTACKS.items():
            deploy(self.client, name, code, timeout=ATTACK_MS)
        sample(self.client, 0.5)  # warm
        self.rounds: list[dict[str, object]] = []

    def round(self, seconds: float) -> None:
        cpu0 = self.server_cpu()
        quiet = sample(self.client, seconds)
        cpu1 = self.server_cpu()
        attack(self.side_client, self.attacks)
        loud_done = threading.Event()
        refiring = threading.Thread(target=self._refire, args=(loud_done,))
        if self.refire:
            refiring.start()
        time.sleep(0.2)
        cpu2 = self.server_cpu()
        loud = sample(self.client, seconds)
        cpu3 = self.server_cpu()
        loud_done.set()
        if self.refire:
            refiring.join()
        time.sleep(max(0.0, ATTACK_MS / 1000 + 0.5 - seconds - 0.2))  # let the attacks end
        q, a = figures(quiet), figures(loud)
        self.rounds.append(
            {
                "quiet": q,
                "attack": a,
                "p99_ratio": round(a["p99_ms"] / q["p99_ms"], 2),
                # The server process's own CPU (ms per second): what the attacks cost it.
                "server_cpu_ms_per_s": [
                    round((cpu1 - cpu0) / seconds, 1),
                    round((cpu3 - cpu2) / seconds, 1),
                ],
            }
        )

    def _refire(self, done: threading.Event) -> None:
        while not done.wait(self.refire):
            attack(self.side_client, self.attacks)

    def server_cpu(self) -> float:
        fields = Path(f"/proc/{self.proc.pid}/stat").read_text().rpartition(")")[2].split()
        return (int(fields[11]) + int(fields[12])) * 1000 / os.sysconf("SC_CLK_TCK")

    def summary(self) -> dict[str, object]:
        ratios = [float(r["p99_ratio"]) for r in self.rounds]  # type: ignore[arg-type]
        quiet = [r["quiet"]["p99_ms"] for r in self.rounds]  # type: ignore[index]
        loud = [r["attack"]["p99_ms"] for r in self.rounds]  # type: ignore[index]
        return {
            "median_quiet_p99_ms": round(statistics.median(quiet), 3),
            "median_attack_p99_ms": round(statistics.median(loud), 3),
            "median_p99_ratio": round(statistics.median(ratios), 2),
            "rounds": self.rounds,
        }

    def stop(self) -> None:
        self.proc.terminate()
        self.proc.wait(15)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--server-src", help="also run this checkout's src/ (A/B rounds)")
    parser.add_argument("--attacks", default="spin,spam,forks", help="comma-separated subset")
    parser.add_argument("--copies", type=int, default=1, help="instances of each attack at once")
    parser.add_argument(
        "--refire", type=float, default=0, help="ms between firings while attacking; 0: once"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as a, tempfile.TemporaryDirectory() as b:
        attacks = args.attacks.split(",") * args.copies
        for name in attacks:
            if name not in ATTACKS:
                parser.error(f"unknown attack {name!r}; use some of {','.join(ATTACKS)}")
        refire = args.refire / 1000
        sides = [Side("this", Path(a), None, attacks, refire)]
        if args.server_src:
            sides.append(Side("baseline", Path(b), args.server_src, attacks, refire))
        try:
            for _ in range(args.rounds):
                for side in sides:
                    side.round(args.seconds)
        finally:
            for side in sides:
                side.stop()
    result = {side.label: side.summary() for side in sides}
    result["loadavg_after"] = os.getloadavg()
    print(json.dumps(result, indent=1))


if __name__ == "__main__":
    threading.current_thread().name = "neighbour-bench"
    main()
