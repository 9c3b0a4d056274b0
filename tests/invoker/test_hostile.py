"""Hostile functions against real sandboxes: each attack fails or is contained, the
platform keeps serving, and nothing leaks. Root-only layers are checked when the
tests run as root (as they do in CI here)."""

from __future__ import annotations

import asyncio
import os
import socket
import statistics
import time
from pathlib import Path

import pytest

from tests.invoker.conftest import make_target
from wisp.config import Settings
from wisp.models import DEVELOPER_ERROR, SUCCESS
from wisp.sandbox import cgroups
from wisp.sandbox import instance as instance_module
from wisp.sandbox.layers import landlock_abi
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="this layer needs root (CI runs as root)")
LANDLOCK = landlock_abi()
needs_landlock = pytest.mark.skipif(not LANDLOCK, reason="this kernel has no Landlock")


async def still_serving(invoke) -> None:
    record = await invoke(make_target("def main(args):\n    return {'ok': 1}\n", name="canary"))
    assert record.result == {"ok": 1}


def platform_dirs_under_tmp() -> set[str]:
    """The top folders under /tmp of the interpreter and the wisp package, if any."""
    import wisp
    from wisp.sandbox.local import venv_paths

    paths = [*venv_paths(), str(Path(wisp.__file__).resolve().parent)]
    return {Path(p).parts[2] for p in paths if Path(p).parts[1:2] == ("tmp",) and len(Path(p).parts) > 2}


def probe(body: str) -> str:
    """A function that runs ``body`` (which sets ``out``) and returns it."""
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    return f"import os, sys, socket, subprocess\ndef main(args):\n    out = {{}}\n{indented}\n    return out\n"


async def test_fork_bomb_is_contained(invoke, platform):
    code = "import os\ndef main(args):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n"
    record = await invoke(make_target(code, timeout=1000, name="forkbomb"))
    assert record.status_code == DEVELOPER_ERROR
    await asyncio.sleep(0.5)
    await still_serving(invoke)


async def test_thread_bomb_is_contained(invoke):
    code = (
        "import threading, time\n"
        "def main(args):\n"
        "    n = 0\n"
        "    try:\n"
        "        while True:\n"
        "            threading.Thread(target=time.sleep, args=(30,), daemon=True).start()\n"
        "            n += 1\n"
        "    except RuntimeError:\n"
        "        return {'threads': n}\n"
    )
    record = await invoke(make_target(code, timeout=5000, name="threads"))
    # Either the thread limit stops it (a result) or the timeout/memory does: contained.
    if record.status_code == SUCCESS and ROOT:
        assert record.result["threads"] < 300
    await still_serving(invoke)


async def test_infinite_log_output_is_truncated(invoke):
    code = "def main(args):\n    while True:\n        print('x' * 1000)\n"
    record = await invoke(make_target(code, timeout=1000, logs=64, name="chatty"))
    assert record.status_code == DEVELOPER_ERROR
    assert "time limits" in record.result["error"]
    assert sum(len(line) for line in record.logs) < 200 * 1024
    assert "truncated" in record.logs[-1]
    await still_serving(invoke)


async def test_fd_exhaustion_is_contained(invoke):
    code = probe(
        """
files = []
try:
    while True:
        files.append(open('/dev/null'))
except OSError as exc:
    out['opened'] = len(files)
    out['errno'] = exc.errno
"""
    )
    record = await invoke(make_target(code, name="fds"))
    assert record.status_code == SUCCESS
    assert record.result["opened"] < 1100
    await still_serving(invoke)


@needs_root
async def test_tmp_is_private_and_size_capped(invoke):
    host_marker = Path("/tmp") / f"wisp-host-{os.getpid()}"
    host_marker.write_text("host")
    try:
        code = probe(
            f"""
out['sees_host_tmp'] = os.path.exists({str(host_marker)!r})
out['tmp_entries'] = os.listdir('/tmp')
try:
    with open('/tmp/fill', 'wb') as f:
        for _ in range(2048):
            f.write(b'x' * 1024 * 1024)
    out['filled'] = True
except OSError as exc:
    out['filled'] = False
    out['errno'] = exc.errno
"""
        )
        record = await invoke(make_target(code, memory=1024, timeout=10000, name="filltmp"))
        assert record.status_code in (SUCCESS, DEVELOPER_ERROR)
        if record.status_code == SUCCESS:
            assert record.result["sees_host_tmp"] is False
            # Empty, but for the read-only binds of where the platform itself runs from
            # when that is under /tmp (a virtual environment or a checkout there, as CI's).
            assert set(record.result["tmp_entries"]) == platform_dirs_under_tmp()
            assert record.result["filled"] is False  # the 512 MB cap (or memory) stopped it
        assert not Path("/tmp/fill").exists()  # nothing reached the host's /tmp
    finally:
        host_marker.unlink()
    await still_serving(invoke)


@needs_root
async def test_cannot_write_outside_tmp(invoke):
    code = probe(
        """
for path in ['/etc/wisp-owned', '/usr/wisp-owned', '/root/wisp-owned', '/wisp-owned']:
    try:
        open(path, 'w').close()
        out[path] = 'written'
    except OSError as exc:
        out[path] = exc.errno
"""
    )
    record = await invoke(make_target(code, name="writer"))
    assert all(v != "written" for v in record.result.values()), record.result


@pytest.fixture
def private_data_dir():
    """A data dir as `wisp server` lays it out (0711, files 0600), outside /tmp."""
    path = Path("/var/lib") / f"wisp-hostile-test-{os.getpid()}"
    path.mkdir(mode=0o711, exist_ok=True)
    os.chmod(path, 0o711)
    secret = path / "guest.key"
    secret.write_text("uuid:secret\n")
    os.chmod(secret, 0o600)
    yield path
    secret.unlink()
    path.rmdir()


@needs_root
async def test_cannot_read_platform_database_keys_or_other_tenants(invoke, private_data_dir):
    data_dir = private_data_dir
    secret = data_dir / "guest.key"
    code = probe(
        f"""
for path in [{str(secret)!r}, '/proc/1/environ', '/proc/1/cmdline', '/root/.bash_history',
             '/etc/shadow', '/proc/{os.getpid()}/environ']:
    try:
        with open(path, 'rb') as f:
            out[path] = f.read(64).decode('latin-1')
    except OSError as exc:
        out[path] = exc.errno
try:
    out['listing'] = os.listdir({str(data_dir)!r})
except OSError as exc:
    out['listing'] = exc.errno
"""
    )
    record = await invoke(make_target(code, name="snoop"))
    result = record.result
    assert result[str(secret)] in (2, 13)  # not there (private root) or EACCES
    assert result["/etc/shadow"] == 13
    assert result[f"/proc/{os.getpid()}/environ"] in (2, 13)  # the server's: unseen or denied
    assert result["/proc/1/environ"] == 13
    assert result["listing"] in (2, 13)


@needs_root
async def test_cannot_see_another_instances_environment(invoke):
    victim = make_target(
        "import time\ndef main(args):\n    time.sleep(1)\n    return {}\n",
        name="victim",
        env={"SECRET": "tenant-a"},
    )
    running = asyncio.create_task(invoke(victim))
    await asyncio.sleep(0.4)
    code = probe(
        """
found = []
for pid in os.listdir('/proc'):
    if pid.isdigit():
        try:
            with open(f'/proc/{pid}/environ', 'rb') as f:
                if b'tenant-a' in f.read():
                    found.append(pid)
        except OSError:
            pass
out['found'] = found
"""
    )
    record = await invoke(make_target(code, name="thief"))
    await running
    assert record.result["found"] == []


@needs_root
async def test_cannot_signal_other_processes(invoke):
    code = probe(
        f"""
for pid in [1, {os.getpid()}]:
    try:
        os.kill(pid, 0)
        out[str(pid)] = 'allowed'
    except OSError as exc:
        out[str(pid)] = exc.errno
"""
    )
    record = await invoke(make_target(code, name="signaller"))
    # pid 1 is the instance itself (its own pid namespace); the server is not even
    # visible there (ESRCH) — or, without the namespace, not allowed (EPERM).
    assert record.result[str(os.getpid())] in (1, 3)


@needs_root
async def test_process_list_shows_only_the_instance(invoke):
    code = probe(
        """
out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
out['me'] = os.getpid()
with open('/proc/1/cmdline', 'rb') as f:
    out['init'] = f.read().decode('latin-1')
"""
    )
    record = await invoke(make_target(code, name="lister"))
    assert record.result["me"] == 1
    assert record.result["pids"] == [1]
    assert "launcher.py" in record.result["init"]


@needs_root
async def test_the_cgroup_path_is_hidden(invoke):
    """A cgroup namespace rooted at the instance's own slot: /proc/self/cgroup names
    no host path (which would show the server's pid and the slot layout)."""
    code = probe(
        """
with open('/proc/self/cgroup') as f:
    out['lines'] = f.read().splitlines()
"""
    )
    record = await invoke(make_target(code, name="cgroups"))
    lines = record.result["lines"]
    assert lines and all(line.rpartition(":")[2] == "/" for line in lines), lines


@needs_root
async def test_privileged_calls_are_refused(invoke):
    code = probe(
        """
import ctypes
libc = ctypes.CDLL(None, use_errno=True)
def errno_of(result):
    return ctypes.get_errno() if result != 0 else 0
out['ptrace'] = errno_of(libc.ptrace(16, 1, 0, 0))  # PTRACE_ATTACH to pid 1
out['mount'] = errno_of(libc.mount(b'none', b'/tmp', b'tmpfs', 0, None))
out['unshare_user'] = errno_of(libc.unshare(0x10000000))
out['unshare_net'] = errno_of(libc.unshare(0x40000000))
out['setns'] = errno_of(libc.setns(0, 0))
try:
    os.setuid(0)
    out['setuid'] = 0
except OSError as exc:
    out['setuid'] = exc.errno
try:
    os.chroot('/')
    out['chroot'] = 0
except OSError as exc:
    out['chroot'] = exc.errno
with open('/proc/self/status') as status:
    out['status'] = {k: v.strip() for k, _, v in (l.partition(':') for l in status) if k in ('CapEff', 'CapBnd', 'NoNewPrivs', 'Seccomp')}
"""
    )
    record = await invoke(make_target(code, name="escalate"))
    result = record.result
    for call in ("ptrace", "mount", "unshare_user", "unshare_net", "setns", "setuid", "chroot"):
        assert result[call] != 0, (call, result)
    assert result["status"]["CapEff"] == "0000000000000000"
    assert result["status"]["CapBnd"] == "0000000000000000"
    assert result["status"]["NoNewPrivs"] == "1"
    assert result["status"]["Seccomp"] == "2"


@needs_root
async def test_control_plane_and_private_ranges_are_closed(invoke, platform):
    egress = platform.invoker.sandbox.egress
    if not egress.active:
        pytest.fail(f"the egress filter was not installed: {egress.refused}")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = probe(
            f"""
s = socket.socket()
s.settimeout(2)
try:
    s.connect(('127.0.0.1', {port}))
    out['loopback'] = 'connected'
except OSError as exc:
    out['loopback'] = exc.errno
finally:
    s.close()
"""
        )
        record = await invoke(make_target(code, name="dialer"))
    # ECONNREFUSED: its loopback is its own namespace's; the host's is out of reach
    # (tests/sandbox/test_egress.py tries the host's other addresses)
    assert record.result["loopback"] == 111


@needs_root
async def test_host_unix_sockets_are_out_of_reach(invoke, tmp_path):
    """Abstract and pathname unix sockets on the host (a service's, like PostgreSQL's
    world-writable one, or one the platform might open) cannot be reached."""
    name = f"wisp-test-{os.getpid()}-{time.monotonic_ns()}"
    paths = [f"/run/{name}.sock", str(tmp_path / "control.sock")]
    if os.path.exists("/var/run/postgresql/.s.PGSQL.5432"):
        paths.append("/var/run/postgresql/.s.PGSQL.5432")
    targets = ["\0" + name, *paths]
    listeners = []
    try:
        for address in targets[:3]:
            listener = socket.socket(socket.AF_UNIX)
            listener.bind(address)
            listener.listen()
            listeners.append(listener)
        for path in paths[:2]:
            os.chmod(path, 0o777)
        for address in targets:  # each is live: reachable from the host
            with socket.socket(socket.AF_UNIX) as client:
                client.connect(address)
        code = probe(
            f"""
for address in {targets!r}:
    s = socket.socket(socket.AF_UNIX)
    try:
        s.connect(address)
        out[address] = 'connected'
    except OSError as exc:
        out[address] = exc.errno
    finally:
        s.close()
"""
        )
        record = await invoke(make_target(code, name="unix-dialer"))
    finally:
        for listener in listeners:
            listener.close()
        os.unlink(paths[0])
    assert set(record.result) == set(targets)
    # ECONNREFUSED for the abstract name (its own network namespace has no such
    # listener), ENOENT for paths the private root does not hold.
    assert all(v in (111, 2) for v in record.result.values()), record.result


async def test_replacing_stdout_or_closing_fds_does_not_corrupt_the_protocol(invoke):
    code = (
        "import sys, io, os\n"
        "n = 0\n"
        "def main(args):\n"
        "    global n\n"
        "    n += 1\n"
        "    sys.stdout = io.StringIO()\n"
        "    print('swallowed')\n"
        "    if args.get('close'):\n"
        "        os.close(1)\n"
        "        os.close(2)\n"
        "    return {'n': n}\n"
    )
    target = make_target(code, name="protocol")
    assert (await invoke(target)).result == {"n": 1}
    assert (await invoke(target, {"close": True})).result == {"n": 2}
    assert (await invoke(target)).result == {"n": 3}
    closer = make_target(
        "import os\ndef main(args):\n    os.close(3)\n    return {}\n", name="closer"
    )
    record = await invoke(closer)
    assert record.status_code == DEVELOPER_ERROR
    await still_serving(invoke)


async def test_init_that_never_returns_is_stopped(invoke):
    code = "while True:\n    pass\ndef main(args):\n    return {}\n"
    record = await invoke(make_target(code, timeout=500, name="stuck"))
    assert "time limits" in record.result["error"]
    await still_serving(invoke)


async def test_attacks_leave_well_behaved_tenant_latency_within_bounds(invoke):
    """The p99 of a quiet function while CPU/fork/log attacks run, against its quiet p99."""
    good = make_target("def main(args):\n    return {'ok': 1}\n", name="good")
    await invoke(good)

    async def sample(n: int) -> list[float]:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await invoke(good)
            times.append((time.perf_counter() - t) * 1000)
        return times

    quiet = await sample(40)
    attacks = [
        make_target("def main(args):\n    while True:\n        pass\n", timeout=3000, name="spin"),
        make_target(
            "def main(args):\n    while True:\n        print('y' * 500)\n",
            timeout=3000,
            logs=16,
            name="spam",
        ),
        make_target(
            "import os\ndef main(args):\n    while True:\n        try:\n            os.fork()\n        except OSError:\n            pass\n",
            timeout=3000,
            name="forks",
        ),
    ]
    running = [asyncio.create_task(invoke(a)) for a in attacks]
    await asyncio.sleep(0.2)
    loud = await sample(40)
    await asyncio.gather(*running)
    quiet_p99 = statistics.quantiles(quiet, n=100)[98]
    loud_p99 = statistics.quantiles(loud, n=100)[98]
    print(f"well-behaved p99: quiet {quiet_p99:.2f} ms, under attack {loud_p99:.2f} ms")
    # Target 2x (issue 6); asserted loosely here because CI machines are shared.
    assert loud_p99 < max(10 * quiet_p99, 100)


SPIN_FOR = (  # keeps a CPU busy for args['s'] seconds
    "import time\ndef main(args):\n    end = time.time() + args['s']\n"
    "    while time.time() < end:\n        pass\n    return {}\n"
)


@needs_root
async def test_a_long_running_instance_yields_the_cpu(invoke, platform):
    """An exchange that keeps a CPU busy runs at a low CPU weight; answering restores it."""
    sandbox = platform.invoker.sandbox
    if not sandbox.cgroups.available:
        pytest.fail("cgroups are required here (CI runs as root with cgroup v1)")
    spin = make_target(SPIN_FOR, name="spinner")
    running = asyncio.create_task(invoke(spin, {"s": 0.6}))
    await asyncio.sleep(0.3)
    low = [i for i in sandbox.live.values() if i.slot is not None and i.slot.cpu_low]
    assert len(low) == 1
    slot = low[0].slot
    group = slot.dirs.get("cpu", slot.dirs.get("unified"))
    idle = group / "cpu.idle"  # SCHED_IDLE groups where the kernel has them
    weight = group / ("cpu.weight" if slot.v2 else "cpu.shares")
    if idle.exists():
        assert idle.read_text().strip() == "1"
    elif not slot.v2:
        assert weight.read_text().strip() == "16"
    assert (await running).status_code == SUCCESS
    assert not slot.cpu_low
    if idle.exists():
        assert idle.read_text().strip() == "0"
    elif not slot.v2:
        assert weight.read_text().strip() == "1024"
    # One that waits (I/O, sleep) keeps its weight, however long it runs.
    sleeper = make_target("import time\ndef main(args):\n    time.sleep(0.4)\n    return {}\n")
    running = asyncio.create_task(invoke(sleeper))
    await asyncio.sleep(0.3)
    assert not any(i.slot.cpu_low for i in sandbox.live.values() if i.slot is not None)
    assert (await running).status_code == SUCCESS


async def test_a_hog_is_fenced_off_a_cpu_while_others_run_short_requests(
    invoke, platform, monkeypatch
):
    """A demoted instance's cpuset shrinks to the hog CPUs as soon as another tenant's
    short exchange completes, and gets every CPU back FENCE_HOLD after the last one."""
    monkeypatch.setattr(cgroups, "FENCE_HOLD", 0.3)
    sandbox = platform.invoker.sandbox
    fence = sandbox.cgroups.fence
    if fence is None:
        pytest.fail("a cpuset controller is required here (CI runs as root with cgroup v1)")
    if not fence.hog:
        pytest.skip("one CPU: nothing to fence hogs off")
    spin = make_target(SPIN_FOR, name="fenced-spinner")
    running = asyncio.create_task(invoke(spin, {"s": 2.5}))
    await asyncio.sleep(0.5)  # its own (short) init raised the fence for 0.3 s
    low = [i for i in sandbox.live.values() if i.slot is not None and i.slot.cpu_low]
    assert len(low) == 1
    slot = low[0].slot
    cpus = slot.dirs["cpuset"] / "cpuset.cpus"
    assert cpus.read_text().strip() == fence.all  # nobody else ran yet: every CPU
    await still_serving(invoke)  # another tenant's short request
    assert slot.fenced and cpus.read_text().strip() == fence.hog
    pid = low[0].pid
    allowed = Path(f"/proc/{pid}/status").read_text().split("Cpus_allowed_list:")[1].split()[0]
    assert allowed == fence.hog  # the kernel moved the running process too
    await asyncio.sleep(0.6)  # past the hold with no other request
    assert not slot.fenced and cpus.read_text().strip() == fence.all
    await still_serving(invoke)
    assert slot.fenced
    assert (await running).status_code == SUCCESS
    assert not slot.fenced and cpus.read_text().strip() == fence.all  # answered: released


async def test_an_instance_gets_at_most_its_cpu_quota(tmp_path, server_umask):
    """Two processes spinning in one instance get no more than instance_cpus of CPU time
    per wall second (CFS quota on its cgroup), however many CPUs are idle."""
    settings = Settings(data_dir=tmp_path, pool_memory_mb=1024, stem_cells=1, instance_cpus=0.5)
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    try:
        if not platform.invoker.sandbox.cgroups.available:
            pytest.fail("cgroups are required here (CI runs as root with cgroup v1)")
        code = (
            "import os, time\ndef main(args):\n    pid = os.fork()\n"
            "    start = time.time()\n    while time.time() - start < 0.8:\n        pass\n"
            "    if pid == 0:\n        os._exit(0)\n    os.waitpid(pid, 0)\n"
            "    t = os.times()\n"
            "    return {'cpu': t.user + t.system + t.children_user + t.children_system,"
            " 'wall': time.time() - start}\n"
        )
        target = make_target(code, name="two-spinners")
        record = await platform.invoker.submit(target, {}, subject="guest").done
        assert record.status_code == SUCCESS, record.result
        cpu, wall = record.result["cpu"], record.result["wall"]
        assert cpu <= wall * 0.5 * 1.15 + 0.05, (cpu, wall)  # two CPUs' worth without it
        throttled = []
        for instance in platform.invoker.sandbox.live.values():  # the warm one, stem cells
            stat = (instance.slot.dirs["cpu"] / "cpu.stat").read_text().split()
            throttled.append(int(stat[stat.index("nr_throttled") + 1]))
        assert max(throttled) > 0, throttled
    finally:
        await platform.stop()


async def test_rlimits_bound_every_instance_and_a_worn_instance_is_retired(
    invoke, platform, monkeypatch
):
    code = probe(
        """
import resource
for name in ('RLIMIT_CORE', 'RLIMIT_NOFILE', 'RLIMIT_FSIZE', 'RLIMIT_CPU'):
    out[name] = list(resource.getrlimit(getattr(resource, name)))
import time
end = time.process_time() + args.get('spin', 0)
while time.process_time() < end:
    pass
"""
    )
    target = make_target(code, name="limits", timeout=30_000)  # the spin, on a loaded host
    record = await invoke(target)
    assert record.result["RLIMIT_CORE"] == [0, 0]
    assert record.result["RLIMIT_NOFILE"] == [1024, 1024]
    assert record.result["RLIMIT_FSIZE"] == [512 << 20, 512 << 20]
    assert record.result["RLIMIT_CPU"] == [3600, 3600]  # the backstop
    # An instance past CPU_RETIRE_NS of CPU in its life answers, then is not reused.
    monkeypatch.setattr(instance_module, "CPU_RETIRE_NS", 100_000_000)
    record = await invoke(target, {"spin": 0.15})
    assert record.status_code == SUCCESS, record.result
    assert not any(a["key"] == "initTime" for a in record.annotations)  # still warm then
    record = await invoke(target)
    assert any(a["key"] == "initTime" for a in record.annotations)  # a new instance


def test_cpu_lists_use_the_cpuset_format():
    assert cgroups.cpu_list([0, 1, 2, 5, 7, 8]) == "0-2,5,7-8"
    assert cgroups.cpu_list([3]) == "3"
    assert cgroups.cpu_list([]) == ""
    fence = cgroups.CpuFence([0, 1])
    assert (fence.all, fence.hog) == ("0-1", "1")
    fence = cgroups.CpuFence(list(range(8)))
    assert (fence.all, fence.hog) == ("0-7", "2-7")  # a quarter (at least one) kept free
    assert cgroups.CpuFence([4]).hog == ""


async def test_stdlib_beyond_the_zygote_is_importable(invoke):
    """The interpreter may live under a private home (/root/.pyenv): instances must
    still import any standard module, not only what the zygote preloaded."""
    code = "def main(args):\n    import uuid, decimal, sqlite3, email.parser\n    return {'ok': str(decimal.Decimal('1.5'))}\n"
    record = await invoke(make_target(code, name="stdlib"))
    assert record.result == {"ok": "1.5"}, record.result


@needs_root
async def test_private_home_is_hidden_except_the_runtime(invoke):
    code = probe(
        """
import sys
home = '/root'
try:
    out['home'] = sorted(os.listdir(home))
except OSError as exc:
    out['home'] = exc.errno
out['prefix_readable'] = os.access(sys.base_prefix, os.R_OK)
try:
    open(os.path.join(sys.base_prefix, 'wisp-owned'), 'w')
    out['prefix_writable'] = True
except OSError:
    out['prefix_writable'] = False
"""
    )
    record = await invoke(make_target(code, name="home"))
    result = record.result
    assert result["prefix_readable"] is True and result["prefix_writable"] is False
    home = result["home"]
    assert home == 13 or (".bash_history" not in home and ".ssh" not in home), home


@needs_root
async def test_network_none_has_only_its_own_loopback(invoke):
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        code = probe(
            f"""
out['interfaces'] = sorted(name for _, name in socket.if_nameindex())
s = socket.socket()
s.settimeout(2)
try:
    s.connect(('127.0.0.1', {port}))
    out['host_port'] = 'connected'
except OSError as exc:
    out['host_port'] = exc.errno
finally:
    s.close()
own = socket.socket()
own.bind(('127.0.0.1', 0))
own.listen()
peer = socket.create_connection(own.getsockname(), timeout=2)
out['own_loopback'] = True
peer.close()
own.close()
"""
        )
        target = make_target(code, name="offline")
        target.action.annotations.append({"key": "network", "value": "none"})
        record = await invoke(target)
    assert record.status_code == SUCCESS, record.result
    assert record.result["interfaces"] == ["lo"]
    assert record.result["host_port"] == 111  # nothing listens on *its* loopback
    assert record.result["own_loopback"] is True


@needs_root
async def test_default_network_is_a_namespace_with_a_way_out(invoke):
    code = probe("out['interfaces'] = sorted(name for _, name in socket.if_nameindex())")
    record = await invoke(make_target(code, name="online"))
    assert record.result["interfaces"] == ["eth0", "lo"]  # not the host's


@needs_root
async def test_private_read_only_root_holds_only_the_runtime(invoke):
    here = str(Path(__file__).resolve())  # this repository's files: not the function's business
    code = probe(
        f"""
out['top'] = sorted(os.listdir('/'))
out['repo_visible'] = os.path.exists({here!r})
out['var_log'] = os.path.exists('/var/log')
out['postgres'] = os.path.exists('/var/lib/postgresql')
for path in ['/wisp-owned', '/usr/wisp-owned', '/etc/wisp-owned']:
    try:
        open(path, 'w').close()
        out[path] = 'written'
    except OSError as exc:
        out[path] = exc.errno
with open('/tmp/mine', 'w') as f:
    f.write('ok')
out['tmp_writable'] = open('/tmp/mine').read() == 'ok'
"""
    )
    record = await invoke(make_target(code, name="rootfs"))
    result = record.result
    assert result["repo_visible"] is False
    # /work holds the launchers and /root the interpreter here: only those are bound.
    for hidden in ("home", "srv", "opt", "boot", "mnt", "media"):
        assert hidden not in result["top"], result["top"]
    assert result["var_log"] is False and result["postgres"] is False  # /var: tmp, bundles
    assert {"usr", "etc", "tmp", "proc", "dev"} <= set(result["top"])
    assert result["/wisp-owned"] == 30  # EROFS: the root itself is read-only
    assert result["/usr/wisp-owned"] in (13, 30) and result["/etc/wisp-owned"] in (13, 30)
    assert result["tmp_writable"] is True


@needs_landlock
async def test_landlock_denies_what_the_modes_would_allow(invoke, platform):
    """Files the instance's uid could read or list (world-readable, in its view) are
    closed by Landlock: only the runtime, the code, a few system files and /tmp."""
    assert f"landlock(abi {LANDLOCK})" in platform.invoker.sandbox.isolation
    etc = next(
        p
        for p in ("/etc/fstab", "/etc/debian_version", "/etc/issue", "/etc/hostname")
        if os.path.isfile(p) and not os.path.islink(p) and os.stat(p).st_mode & 0o004
    )
    code = probe(
        f"""
def attempt(name, action):
    try:
        action()
        out[name] = 0
    except OSError as exc:
        out[name] = exc.errno
attempt('read_etc', lambda: open({etc!r}).read())
attempt('list_etc', lambda: os.listdir('/etc'))
attempt('read_hosts', lambda: open('/etc/hosts').read())
attempt('read_stdlib', lambda: open(os.__file__).read())
attempt('write_tmp', lambda: open('/tmp/ok', 'w').write('x'))
attempt('tmp_tool', lambda: (open('/tmp/t.sh', 'w').write('exit 0'), subprocess.run(['/bin/sh', '/tmp/t.sh'], check=True)))
attempt('tty', lambda: open('/dev/tty', 'w'))
attempt('signal_zygote', lambda: os.kill(os.getppid() or 1, 0))
"""
    )
    record = await invoke(make_target(code, name="landlocked"))
    result = record.result
    assert result["read_etc"] == 13, result
    if not platform.invoker.sandbox.root:  # in a private root every directory may be listed
        assert result["list_etc"] == 13, result
    assert result["tty"] == 13, result
    for allowed in ("read_hosts", "read_stdlib", "write_tmp", "tmp_tool"):
        assert result[allowed] == 0, (allowed, result)
    await still_serving(invoke)


# -- the control socket (fd 3 in every instance): frames the launcher did not send ------

MALFORMED = (  # call n writes the n-th of these before returning
    "import os, time\n"
    "FRAMES = [b'[]', b'\"text\"', b'{}', b'{\"ok\":true}', b'{\"result\":7}', b'{\"res']\n"
    "n = -1\n"
    "def main(args):\n"
    "    global n\n"
    "    n += 1\n"
    "    body = FRAMES[n % len(FRAMES)]\n"
    "    os.write(3, len(body).to_bytes(4, 'big') + body)\n"
    "    time.sleep(0.05)\n"
    "    return {'n': n}\n"
)
FLOOD = (  # valid result frames of 64 KB, as fast as it can, forever
    "import os\n"
    "BODY = b'{\"result\":{\"x\":\"' + b'a' * 65000 + b'\"}}'\n"
    "FRAME = (len(BODY) | FLAGS).to_bytes(4, 'big') + BODY\n"
    "def main(args):\n"
    "    while True:\n"
    "        os.write(3, FRAME)\n"
)
HUGE = "def main(args):\n    return {'x': 'a' * (args.get('mb', 200) << 20)}\n"


def memory_kb(field: str) -> int:
    """This process's (the server's) VmRSS or VmHWM, in KB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1])
    raise AssertionError(f"no {field} in /proc/self/status")


def reset_peak_memory() -> None:
    Path("/proc/self/clear_refs").write_text("5")  # VmHWM starts again from VmRSS


def pool_key(target) -> tuple[str, str, str, str]:
    action = target.action
    return (action.namespace, action.package, action.name, action.version)


async def test_malformed_frames_are_developer_errors_and_never_fill_the_pool(
    tmp_path, server_umask
):
    """Issue 12: four calls writing a bad frame to fd 3 filled a 1 GiB pool and the
    fifth queued forever. Each is now its activation's developer error, its instance
    killed: the pool (room for four 256 MB instances) never fills."""
    settings = Settings(data_dir=tmp_path, pool_memory_mb=1024, stem_cells=1)
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    try:
        bad = make_target(MALFORMED, name="malformed", memory=256, timeout=10_000)
        pool = platform.invoker.pool
        for call in range(8):
            invocation = platform.invoker.submit(bad, {}, subject="guest")
            record = await asyncio.wait_for(invocation.done, 20)  # never queued for good
            assert record.status_code == DEVELOPER_ERROR, (call, record.result)
            error = record.result["error"]
            assert "broke the runtime protocol" in error and "was stopped" in error, error
            assert pool.busy == 0 and pool.instances(pool_key(bad)) == 0
        assert pool.used_mb == 0
        good = make_target("def main(args):\n    return {'ok': 1}\n", name="canary", timeout=10_000)
        record = await asyncio.wait_for(platform.invoker.submit(good, {}, subject="guest").done, 20)
        assert record.result == {"ok": 1}
    finally:
        await platform.stop()


async def test_a_frame_flood_is_cut_off_and_the_server_memory_stays_bounded(invoke, platform):
    """A loop writing valid 64 KB frames to fd 3: the server reads the one frame it
    asked for, kills the instance at the next, and its memory does not grow."""
    await still_serving(invoke)  # the platform's own start-up allocations are done
    flood = make_target("FLAGS = 0\n" + FLOOD, name="flood", timeout=10_000)
    before = memory_kb("VmRSS")
    reset_peak_memory()
    began = time.monotonic()
    record = await invoke(flood)
    took = time.monotonic() - began
    assert record.status_code == DEVELOPER_ERROR, record.result
    assert "broke the runtime protocol" in record.result["error"]
    assert took < 5  # cut off, not left to the 10 s timeout
    assert platform.invoker.pool.instances(pool_key(flood)) == 0
    await asyncio.sleep(1)  # a flooder left running would keep growing the server
    grown = (memory_kb("VmHWM") - before) // 1024
    print(f"frame flood: server peak RSS grew {grown} MB, cut off after {took * 1000:.0f} ms")
    assert grown < 32, grown
    await still_serving(invoke)


async def test_a_flood_of_quiet_frames_is_cut_off_too(invoke, platform):
    """With the QUIET bit no end-of-log markers are awaited: the first frame may be
    answered as the function's result (its own forgery) before the next arrives, but
    that next one kills the instance all the same, idle in the pool or not."""
    await still_serving(invoke)
    flood = make_target("FLAGS = 1 << 31\n" + FLOOD, name="quiet-flood", timeout=10_000)
    before = memory_kb("VmRSS")
    reset_peak_memory()
    records = []
    for _ in range(3):
        record = await invoke(flood)
        assert record.status_code in (DEVELOPER_ERROR, SUCCESS), record.result
        records.append(record)
        await asyncio.sleep(0.3)
    # Never handed out again: every call started a new instance (an init).
    assert all(any(a["key"] == "initTime" for a in r.annotations) for r in records)
    statuses = [r.status_code for r in records]
    grown = (memory_kb("VmHWM") - before) // 1024
    print(f"quiet frame flood: statuses {statuses}, server peak RSS grew {grown} MB")
    assert grown < 32, grown
    assert platform.invoker.pool.busy == 0
    await still_serving(invoke)


async def test_a_200_mb_result_is_refused_unread_without_blocking_the_loop(invoke, platform):
    """Refused from the reply's length word: the server neither buffers nor parses it,
    and another tenant's invokes are answered meanwhile."""
    await still_serving(invoke)
    loop = asyncio.get_running_loop()
    lags: list[float] = []
    answered: list[float] = []
    done = asyncio.Event()

    async def watch_the_loop() -> None:
        while not done.is_set():
            tick = loop.time()
            await asyncio.sleep(0.005)
            lags.append(loop.time() - tick - 0.005)

    async def neighbour() -> None:
        good = make_target("def main(args):\n    return {'ok': 1}\n", name="neighbour")
        while not done.is_set():
            record = await invoke(good)
            assert record.result == {"ok": 1}
            answered.append(loop.time())
            await asyncio.sleep(0.05)  # within the namespace's 600 a minute

    before = memory_kb("VmRSS")
    reset_peak_memory()
    watchers = [asyncio.create_task(watch_the_loop()), asyncio.create_task(neighbour())]
    try:
        huge = make_target(HUGE, name="huge", memory=1024, timeout=30_000)
        began = loop.time()
        record = await invoke(huge)
        ended = loop.time()
    finally:
        done.set()
        await asyncio.gather(*watchers)
    grown = (memory_kb("VmHWM") - before) // 1024
    print(
        f"200 MB result: refused after {(ended - began) * 1000:.0f} ms, server peak RSS grew "
        f"{grown} MB, longest loop stall {max(lags) * 1000:.1f} ms, "
        f"{sum(began <= t <= ended for t in answered)} neighbour invokes answered meanwhile"
    )
    assert record.status_code == DEVELOPER_ERROR, record.result
    assert record.result["error"] == (
        "The action produced a response that exceeded the allowed length: "
        f"{(200 << 20) + 8} > {platform.invoker.settings.limits.result_max} bytes."  # {"x":""}
    )
    assert grown < 32, grown  # not 200 MB, let alone the gigabytes parsing took
    # Parsing it stalled the loop 1.1 s on main; the bound leaves room for a loaded host.
    assert max(lags) < 0.3, max(lags)
    assert any(began <= t <= ended for t in answered)
    assert platform.invoker.pool.instances(pool_key(huge)) == 0


async def test_protocol_attacks_leave_a_neighbours_latency_within_bounds(invoke):
    """A neighbour's p99 while flooders, malformed frames and 200 MB results keep coming,
    against its quiet p99 (the measuring pattern of the CPU/fork/log attack test)."""
    good = make_target("def main(args):\n    return {'ok': 1}\n", name="good")
    await invoke(good)

    async def sample(n: int) -> list[float]:
        times = []
        for _ in range(n):
            t = time.perf_counter()
            await invoke(good)
            times.append((time.perf_counter() - t) * 1000)
        return times

    quiet = await sample(100)
    attacks = [
        make_target("FLAGS = 0\n" + FLOOD, name="flooder", timeout=10_000),
        make_target(MALFORMED, name="malformer", timeout=10_000),
        make_target(HUGE, name="huge-result", memory=1024, timeout=30_000),
    ]
    stop = asyncio.Event()
    counts = [0] * len(attacks)

    async def keep_attacking(which: int) -> None:
        while not stop.is_set():
            record = await invoke(attacks[which])
            assert record.status_code == DEVELOPER_ERROR, record.result
            counts[which] += 1

    running = [asyncio.create_task(keep_attacking(i)) for i in range(len(attacks))]
    await asyncio.sleep(0.2)
    loud = await sample(100)
    stop.set()
    await asyncio.gather(*running)
    quiet_p99 = statistics.quantiles(quiet, n=100)[98]
    loud_p99 = statistics.quantiles(loud, n=100)[98]
    print(
        f"neighbour p99: quiet {quiet_p99:.2f} ms, under protocol attacks {loud_p99:.2f} ms "
        f"({loud_p99 / quiet_p99:.2f}x; attacks: {counts} floods, malformed, 200 MB results)"
    )
    assert all(counts), counts
    # Target 2x (issue 12); asserted loosely, as above, because CI machines are shared.
    assert loud_p99 < max(10 * quiet_p99, 100)
