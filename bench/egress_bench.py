"""What an egress instance's network namespace and veth pair cost (root; prints JSON).

Three ways to give an instance its network, in one process, alternating rounds:
- ``veth``: egress as it is now (own namespace, veth pair made by the stem cell);
- ``host``: egress as it was (the host's network, nothing per instance), by turning the
  veth layer off in the same sandbox;
- ``none``: a namespace with only loopback.

Per sample: ``prepare`` is fork + confinement + a tiny function's init on a fresh
process (what a stem cell refill costs, the init being what waits for confinement
to finish); ``cold`` is init + first run on a stem cell made 50 ms earlier (the cold
path a request takes). Not a test: run it, read it.

Usage: python bench/egress_bench.py [--runs 40] [--rounds 3]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import tempfile
import time
from pathlib import Path
from typing import Any

from alternate import spread

CODE = "def main(args):\n    return {'greeting': 'Hello ' + args.get('name', 'x')}\n"
MODES = ("host", "veth", "none")


async def measure(runs: int, rounds: int) -> dict[str, dict[str, list[float]]]:
    from wisp.config import Settings
    from wisp.runtimes import RuntimeTable, discover
    from wisp.sandbox.base import Code
    from wisp.sandbox.local import EGRESS, NO_NETWORK, LocalSandbox

    samples = {mode: {"prepare": [], "cold": []} for mode in MODES}
    with tempfile.TemporaryDirectory() as data:
        os.umask(0o077)
        settings = Settings(data_dir=Path(data), stem_cells=0, pool_memory_mb=1 << 16)
        sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
        await sandbox.start()
        if not sandbox.egress.active:
            raise SystemExit(f"veth egress is not active here ({sandbox.isolation})")
        kind = sandbox.runtimes.spawner.kind
        code = Code(source=CODE)
        try:
            for _ in range(rounds):
                for mode in MODES:
                    sandbox.egress.active = mode != "host"
                    network = NO_NETWORK if mode == "none" else EGRESS
                    for _ in range(runs):
                        start = time.perf_counter()
                        instance = await sandbox._fork(kind, network)
                        outcome = await instance.init(code, 5, 1 << 20)
                        samples[mode]["prepare"].append((time.perf_counter() - start) * 1000)
                        assert outcome.ok, outcome
                        await instance.kill()
                        cell = await sandbox._fork(kind, network)
                        await asyncio.sleep(0.05)  # confined and waiting: a stem cell
                        start = time.perf_counter()
                        await cell.init(code, 5, 1 << 20)
                        outcome = await cell.run({"name": "b"}, {}, 5, 1 << 20)
                        samples[mode]["cold"].append((time.perf_counter() - start) * 1000)
                        assert outcome.ok, outcome
                        await cell.kill()
                        await asyncio.sleep(0.005)
        finally:
            sandbox.egress.active = True
            await sandbox.stop()
    return samples


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--runs", type=int, default=40, help="samples per mode per round")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    samples = asyncio.run(measure(args.runs, args.rounds))
    report: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, kernel {platform.release()}",
        "load_avg": [round(x, 1) for x in os.getloadavg()],
    }
    for mode, kinds in samples.items():
        report[mode] = {name: spread(values) for name, values in kinds.items()}
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    main()
