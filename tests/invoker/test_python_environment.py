"""The __OW_* variables of each activation: seen by the function and by the processes
it starts, and set without growing the instance's memory run after run."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import wisp.runtimes
from tests.invoker.conftest import make_target
from wisp.models import SUCCESS

LAUNCHER_DIR = Path(wisp.runtimes.__file__).parent / "python"


async def test_child_processes_see_this_activations_variables(invoke):
    code = (
        "import os, subprocess, sys\n"
        "def main(args):\n"
        "    child = subprocess.run([sys.executable, '-c',\n"
        "        'import os; print(os.environ.get(\"__OW_ACTIVATION_ID\"))'],\n"
        "        capture_output=True, text=True)\n"
        "    return {'mine': os.environ['__OW_ACTIVATION_ID'], 'child': child.stdout.strip()}\n"
    )
    target = make_target(code)
    for _ in range(2):  # the second run rewrites the same variables
        record = await invoke(target)
        assert record.status_code == SUCCESS, record.result
        assert record.result == {"mine": record.activation_id, "child": record.activation_id}


RUNS = """
import ctypes, json, os, sys
sys.path.insert(0, sys.argv[1])
import launcher

def rss():
    return int(open("/proc/self/status").read().split("VmRSS:")[1].split()[0])

instance = launcher.Instance(None)
instance.init({"op": "init", "code": "def main(args):\\n    return {}\\n"})
meta = lambda n: {"activation_id": "%032x" % n, "transaction_id": "%032x" % n,
                  "deadline": 10**12 + n, "trace_parent": "00-%032x-%016x-01" % (n, n)}
for n in range(1000):  # the interpreter's own caches settle first
    instance.run({"args": {}, "meta": meta(n)})
before = rss()
for n in range(1000, 41000):
    instance.run({"args": {}, "meta": meta(n)})
launcher._libc.getenv.restype = ctypes.c_char_p
print(json.dumps({"growth_kb": rss() - before,
                  "c": launcher._libc.getenv(b"__OW_ACTIVATION_ID").decode(),
                  "python": os.environ["__OW_ACTIVATION_ID"]}))
"""


def test_setting_the_variables_does_not_leak():
    out = subprocess.run(
        [sys.executable, "-I", "-S", "-c", RUNS, str(LAUNCHER_DIR)],
        capture_output=True,
        text=True,
        env={},
        check=True,
        timeout=120,
    ).stdout
    result = json.loads(out)
    assert result["c"] == result["python"] == f"{40999:032x}"
    # glibc's setenv kept ~95 bytes per distinct value: ~15 MB over these 40,000 runs.
    assert result["growth_kb"] < 2000, result
