"""A real `wisp server` run by an unprivileged user: the user-namespace fallback.

As root (CI), the server is started as ``nobody`` with setpriv, in a mount namespace
where the interpreter's private home (e.g. /root/.pyenv) is exposed read-only, as an
operator's own Python would be. Run unprivileged, the test starts it directly.
"""

from __future__ import annotations

import base64
import contextlib
import io
import os
import shlex
import shutil
import sys
import zipfile
from collections.abc import Iterator, Sequence
from pathlib import Path

import pytest

from tests.live import LiveServer
from wisp.sandbox.layers import landlock_abi, user_namespaces

NOBODY = 65534
ROOT = os.geteuid() == 0


class Unprivileged(LiveServer):
    def deploy(self, name: str, exec_: dict[str, object], annotations: list[object] = ()) -> None:
        body = {"exec": exec_, "annotations": list(annotations)}
        path = f"/api/v1/namespaces/_/actions/{name}?overwrite=true"
        status, answer = self.call("PUT", path, body)
        assert status == 200, answer

    def invoke(self, name: str, params: object = None) -> object:
        path = f"/api/v1/namespaces/_/actions/{name}?blocking=true&result=true"
        status, body = self.call("POST", path, params or {})
        assert status == 200, body
        return body


def hidden_ancestor(path: Path) -> Path | None:
    """The first directory above ``path`` others cannot traverse (e.g. /root)."""
    for part in reversed(path.parents):
        if not part.stat().st_mode & 0o001:
            return part
    return None


def command(argv: list[str], stage: Path, before: Sequence[str] = ()) -> list[str]:
    """The server as ``nobody``; ``before``: a command (as root) that execs the rest."""
    server = [sys.executable, "-c", "from wisp.cli.main import main; main()", *argv]
    if not ROOT:
        return server
    prefix = Path(sys.base_prefix).resolve()
    hidden = hidden_ancestor(prefix)
    steps = ["set -e"]
    if hidden is not None:
        # As an operator would install Python for the service user: reachable.
        steps += [
            f"mount --bind {prefix} {stage}",
            f"mount -t tmpfs -o mode=0755,size=1m tmpfs {hidden}",
            f"mkdir -p {prefix}",
            f"mount --move {stage} {prefix}",
        ]
    setpriv = f"setpriv --reuid={NOBODY} --regid={NOBODY} --clear-groups --inh-caps=-all"
    steps.append(f"exec {shlex.join(before)} {setpriv} --bounding-set=-all {shlex.join(server)}")
    return ["unshare", "--mount", "--propagation", "private", "sh", "-c", "\n".join(steps)]


@contextlib.contextmanager
def nobody_server(
    tmp_path: Path, args: Sequence[str] = (), before: Sequence[str] = (), start: bool = True
) -> Iterator[Unprivileged]:
    """A server run as ``nobody`` (``args`` after its own; ``before``: see command);
    ``start``: False leaves starting it to the caller."""
    if ROOT and not shutil.which("setpriv"):
        pytest.fail("setpriv (util-linux) is needed to start the server as nobody")
    # A data dir where a sandbox could reach it if anything let it: not under /tmp.
    data_dir = Path("/var/lib") / f"wisp-userns-test-{os.getpid()}-{tmp_path.name}"
    home = tmp_path / "home"
    stage = tmp_path / "stage"
    for d in (home, stage):
        d.mkdir()
    if ROOT:
        data_dir.mkdir(mode=0o700)
        os.chown(data_dir, NOBODY, NOBODY)
        os.chown(home, NOBODY, NOBODY)
        os.chmod(tmp_path, 0o755)
    env = {"WISP_CONFIG": str(home / "credentials.json"), "HOME": str(home)}
    server = Unprivileged(
        tmp_path,
        env=env,
        args=args,
        data_dir=data_dir,
        launch=lambda argv: command(argv, stage, before),
    )
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()
        shutil.rmtree(data_dir, ignore_errors=True)


@pytest.fixture
def unprivileged(tmp_path: Path) -> Iterator[Unprivileged]:
    with nobody_server(tmp_path) as server:
        yield server


PROBE = """
import ctypes, os, socket
def main(args):
    out = {'pid': os.getpid(), 'uid': os.getuid()}
    out['pids'] = sorted(int(p) for p in os.listdir('/proc') if p.isdigit())
    def attempt(name, action):
        try:
            action()
            out[name] = 0
        except OSError as exc:
            out[name] = exc.errno
    data = args['data_dir']
    attempt('read_key', lambda: open(os.path.join(data, 'guest.key')).read())
    attempt('read_db', lambda: open(os.path.join(data, 'wisp.db'), 'rb').read(16))
    try:
        out['data_listing'] = os.listdir(data)
    except OSError as exc:
        out['data_listing'] = exc.errno
    attempt('list_bundles', lambda: os.listdir(os.path.join(data, 'bundles')))
    attempt('signal_server', lambda: os.kill(args['server'], 0))
    attempt('write_root', lambda: open('/wisp-owned', 'w').close())
    libc = ctypes.CDLL(None, use_errno=True)
    out['mount'] = 0 if libc.mount(b'none', b'/tmp', b'tmpfs', 0, None) == 0 else ctypes.get_errno()
    out['unshare'] = 0 if libc.unshare(0x10000000) == 0 else ctypes.get_errno()
    with open('/proc/self/status') as status:
        fields = dict(line.split(':', 1) for line in status)
    out['caps'] = [fields[k].strip() for k in ('CapEff', 'CapPrm', 'CapBnd')]
    out['seccomp'] = fields['Seccomp'].strip()
    out['interfaces'] = sorted(name for _, name in socket.if_nameindex())
    with open('/proc/self/limits') as limits:
        out['nproc'] = [l.split()[2] for l in limits if l.startswith('Max processes')][0]
    return out
"""


def zipped(files: dict[str, str]) -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, text in files.items():
            archive.writestr(name, text)
    return base64.b64encode(buffer.getvalue()).decode()


@pytest.mark.skipif(not user_namespaces()[0], reason="this host refuses user namespaces")
def test_unprivileged_server_confines_instances_in_user_namespaces(unprivileged):
    status, health = unprivileged.call("GET", "/healthz")
    assert status == 200
    isolation = health["isolation"]  # type: ignore[index]
    assert isolation["level"] == "userns", isolation
    assert "user-namespaces(pid,mount,ipc,uts,cgroup)+private-read-only-root" in isolation["layers"]
    abi = landlock_abi()
    assert (f"landlock(abi {abi})" if abi else "no-landlock") in isolation["layers"]

    # Another function's code on disk (a zip bundle), then the snoop.
    unprivileged.deploy(
        "other",
        {
            "kind": "python:default",
            "code": zipped({"__main__.py": "def main(a):\n    return {}\n"}),
            "binary": True,
        },
    )
    unprivileged.invoke("other")
    args = {"data_dir": str(unprivileged.data_dir), "server": unprivileged.proc.pid}
    unprivileged.deploy("snoop", {"kind": "python:default", "code": PROBE})
    result = unprivileged.invoke("snoop", args)
    assert isinstance(result, dict)
    assert result["uid"] == (NOBODY if ROOT else os.geteuid())  # the server's own uid
    assert result["pid"] == 1 and result["pids"] == [1], result  # its own pid namespace
    for denied in ("read_key", "read_db", "list_bundles"):
        assert result[denied] in (2, 13), (denied, result)  # absent or EACCES
    # In the private root the data dir holds only the bound bundles folder.
    assert result["data_listing"] in (2, 13, ["bundles"]), result
    assert result["signal_server"] == 3  # ESRCH: the server is not even visible
    assert result["write_root"] in (13, 30)
    assert result["mount"] != 0 and result["unshare"] != 0
    assert result["caps"] == ["0000000000000000"] * 3, result
    assert result["seccomp"] == "2"
    # egress without root has no filter to go through: fail closed, loopback only.
    assert result["interfaces"] == ["lo"], result
    assert isolation["egress"] == "none" and "egress-none(no root)" in isolation["layers"]
    assert result["nproc"] == "1024"  # shared by all instances (one uid)

    unprivileged.deploy(
        "offline",
        {"kind": "python:default", "code": PROBE},
        annotations=[{"key": "network", "value": "none"}],
    )
    assert unprivileged.invoke("offline", args)["interfaces"] == ["lo"]  # type: ignore[index]

    if shutil.which("node"):  # other runtimes' stem cells are confined the same way
        node = "function main(a) { return {pid: process.pid, uid: process.getuid()} }"
        unprivileged.deploy("nodefn", {"kind": "nodejs:default", "code": node})
        result = unprivileged.invoke("nodefn")
        assert result == {"pid": 1, "uid": NOBODY if ROOT else os.geteuid()}
