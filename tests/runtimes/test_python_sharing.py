"""The Python zygote keeps its pages shared with the instances it forks: it runs the
instance's code paths before forking, and it uses up its allocators' free slots so
that an instance's new objects land together instead of on many shared pages."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import wisp.runtimes

LAUNCHER_DIR = Path(wisp.runtimes.__file__).parent / "python"

PROBE = """
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[1])
import launcher

modules = set(sys.modules)
launcher.warm_up()
report = {"env": dict(os.environ), "new_modules": sorted(set(sys.modules) - modules)}

# Free slots scattered over the heaps, as a zygote's imports leave them.
holes = [object() for _ in range(4000)]
del holes[::2]
libc = launcher._libc
libc.malloc.restype = ctypes.c_void_p
libc.free.argtypes = [ctypes.c_void_p]
blocks = [libc.malloc(1000) for _ in range(100)]
for block in blocks[::2]:
    libc.free(block)
if sys.argv[2] == "fill":
    launcher.fill_free_space()

fresh = [object() for _ in range(200)]
addresses = [id(o) for o in fresh]
report["adjacent"] = sum(1 for a, b in zip(addresses, addresses[1:]) if b - a == 16)
libc.mallinfo2.restype = launcher.MallInfo2
info = libc.mallinfo2()
report["free_chunk_bytes"] = info.fordblks - info.keepcost
print(json.dumps(report))
"""


def probe(mode: str) -> dict[str, object]:
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", PROBE, str(LAUNCHER_DIR), mode],
        capture_output=True,
        text=True,
        env={},
        check=True,
        timeout=60,
    ).stdout
    result: dict[str, object] = json.loads(out)
    return result


def test_warm_up_leaves_no_trace_in_the_environment_or_modules():
    result = probe("fill")
    assert result["env"] == {}  # the __OW_* variables of the throwaway runs are gone
    assert result["new_modules"] == []


def test_new_objects_land_together_once_free_slots_are_used_up():
    scattered, filled = probe("none"), probe("fill")
    # Without filling, new objects take the holes: every other slot of many pages.
    assert scattered["adjacent"] < 50, scattered
    assert filled["adjacent"] > 180, filled
    assert scattered["free_chunk_bytes"] > 40_000, scattered
    assert filled["free_chunk_bytes"] < 8_000, filled
