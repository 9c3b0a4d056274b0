"""A/B in one run: a bench script re-run as a child on two checkouts' src/, alternating.

The child prints one JSON object of sample lists as its last line; the lists of each
variant ("baseline", "change") are pooled over the rounds.
"""

from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path

HERE = str(Path(__file__).resolve().parent.parent / "src")


def pooled_rounds(
    script: str, child_args: list[str], baseline_src: str, rounds: int
) -> dict[str, dict[str, list[float]]]:
    pooled: dict[str, dict[str, list[float]]] = {"baseline": {}, "change": {}}
    for _ in range(rounds):
        for variant, src in (("baseline", baseline_src), ("change", HERE)):
            done = subprocess.run(
                [sys.executable, script, "--child", *child_args],
                env={**os.environ, "PYTHONPATH": src},
                capture_output=True,
                text=True,
            )
            if done.returncode != 0:
                raise SystemExit(f"{variant} run failed:\n{done.stderr[-3000:]}")
            for key, values in json.loads(done.stdout.splitlines()[-1]).items():
                pooled[variant].setdefault(key, []).extend(values)
    return pooled


def spread(values: list[float]) -> dict[str, float]:
    """p50, p90 and mean in ms, and how many: what the sandbox-level benches report."""
    ordered = sorted(values)
    return {
        "p50_ms": round(statistics.median(ordered), 2),
        "p90_ms": round(ordered[max(0, int(len(ordered) * 0.9) - 1)], 2),
        "mean_ms": round(statistics.fmean(ordered), 2),
        "n": len(ordered),
    }
