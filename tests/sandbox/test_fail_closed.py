"""Egress fails closed, and a host below ``userns`` runs only when asked by name.

A hostile function dials the services a Wisp host typically has on loopback
(PostgreSQL with trust auth, Redis, RabbitMQ, NATS, the Wisp API itself) and the API
on the host's other addresses, in real servers: as root with and without the ``nft``
binary on the server's PATH (the rules go over netlink: filtered either way), as root
where the filter cannot be installed (no network), with the operator's explicit
``WISP_NETWORK=egress-unfiltered`` (the old behaviour: everything reachable), and as
``nobody`` at ``minimal`` (no namespaces at all: seccomp refuses the sockets).
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import os
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.live import LiveServer
from tests.sandbox.test_userns import NOBODY, ROOT, Unprivileged, command, nobody_server
from wisp.sandbox.egress import LOCKS

pytestmark = pytest.mark.skipif(not ROOT, reason="servers with and without nft need root")

SERVICES = {5432: "postgresql", 6379: "redis", 5672: "rabbitmq", 4222: "nats"}
NO_USERNS = [sys.executable, str(Path(__file__).with_name("no_userns.py"))]
# A PATH with the system's programs but not /usr/sbin, where nft lives.
WITHOUT_NFT = f"{Path(sys.executable).parent}:/usr/bin:/bin"
TINY = "10.203.254.252/30"  # one instance's egress addresses
HOST = ["--host", "0.0.0.0"]  # the API on every address of the host: more to dial

DIAL = """
import os, socket
def main(args):
    out = {}
    for host, port in args['targets']:
        key = f'{host}:{port}'
        try:
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        except OSError as exc:
            out[key] = exc.errno
            continue
        s.settimeout(2)
        try:
            s.connect((host, port))
            out[key] = 'connected'
        except socket.timeout:
            out[key] = 'timeout'
        except OSError as exc:
            out[key] = exc.errno
        finally:
            s.close()
    try:
        out['interfaces'] = sorted(name for _, name in socket.if_nameindex())
    except OSError as exc:
        out['interfaces'] = exc.errno
    with open('/proc/self/limits') as limits:
        out['nproc'] = [l.split()[2] for l in limits if l.startswith('Max processes')][0]
    out['uid'] = os.getuid()
    return out
"""


def host_addresses() -> list[str]:
    listed = subprocess.run(["ip", "-j", "-4", "addr"], capture_output=True, text=True)
    found = []
    for link in json.loads(listed.stdout or "[]"):
        for info in link.get("addr_info", []):
            if not info["local"].startswith("127.") and not link["ifname"].startswith("wv"):
                found.append(info["local"])
    return found


def reachable(host: str, port: int) -> bool:
    try:
        socket.create_connection((host, port), timeout=2).close()
    except OSError:
        return False
    return True


def targets(api_port: int) -> list[tuple[str, int]]:
    """What a hostile function dials; each one open from the host (checked, so that a
    refusal inside means the sandbox refused it, not that nothing listens)."""
    wanted = [("127.0.0.1", port) for port in SERVICES] + [("127.0.0.1", api_port)]
    wanted += [(address, api_port) for address in host_addresses()]
    found = [t for t in wanted if reachable(*t)]
    for required in (("127.0.0.1", 5432), ("127.0.0.1", 6379), ("127.0.0.1", api_port)):
        assert required in found, f"{required} is not listening on this host"
    return found


def dial(server: LiveServer, targets: list[tuple[str, int]]) -> dict[str, Any]:
    body = {"exec": {"kind": "python:default", "code": DIAL}, "limits": {"timeout": 60000}}
    status, answer = server.call("PUT", "/api/v1/namespaces/_/actions/dial?overwrite=true", body)
    assert status == 200, answer
    path = "/api/v1/namespaces/_/actions/dial?blocking=true&result=true"
    status, result = server.call("POST", path, {"targets": targets})
    assert status == 200, result
    assert isinstance(result, dict)
    return result


def assert_closed(result: dict[str, Any], targets: list[tuple[str, int]]) -> None:
    for host, port in targets:
        # Refused (its own loopback, or the rules' reject), unreachable (no route out),
        # EACCES (seccomp: no socket), or no answer at all: never connected.
        assert result[f"{host}:{port}"] in (111, 101, 113, 13, "timeout"), (host, port, result)


def health(server: LiveServer) -> dict[str, str]:
    status, body = server.call("GET", "/healthz")
    assert status == 200
    return body["isolation"]  # type: ignore[no-any-return]


def banner_line(server: LiveServer, name: str) -> str:
    lines = [line.strip() for line in server.output().splitlines()]
    return next(line for line in lines if line.startswith(f"{name}:"))


@pytest.mark.parametrize("path", [None, WITHOUT_NFT], ids=["nft", "no-nft"])
def test_egress_is_filtered_with_or_without_the_nft_binary(
    tmp_path: Path, path: str | None
) -> None:
    # The rules go to the kernel over netlink: the nft binary is not needed.
    if path is not None:
        assert shutil.which("nft", path=path) is None
    env = {"PATH": path} if path else {}
    with LiveServer(tmp_path, env=env, args=HOST) as server:
        isolation = health(server)
        assert isolation["egress"] == "filtered" and isolation["level"] == "strict", isolation
        assert banner_line(server, "egress").startswith("egress:    filtered (nf_tables table")
        wanted = targets(server.port)
        result = dial(server, wanted)
        assert_closed(result, wanted)
        assert result["interfaces"] == ["eth0", "lo"], result
        assert result["nproc"] == "256"  # root: a uid of its own, 256 processes


@contextlib.contextmanager
def no_filter_possible() -> Iterator[dict[str, str]]:
    """Settings under which a root server cannot install its filter: its one egress
    address block is held by someone else (as by another server)."""
    LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
    network = ipaddress.IPv4Network(TINY)
    name = f"egress-{network.network_address}-{network.prefixlen}.lock"
    fd = os.open(LOCKS / name, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        yield {"WISP_EGRESS_SUBNET": TINY}
    finally:
        os.close(fd)


def test_where_no_filter_can_be_installed_egress_gets_no_network(tmp_path: Path) -> None:
    with no_filter_possible() as env, LiveServer(tmp_path, env=env, args=HOST) as server:
        isolation = health(server)
        assert isolation["egress"] == "none", isolation
        assert "egress-none(no free egress addresses" in isolation["layers"]
        line = banner_line(server, "egress")
        assert line.startswith("egress:    none (no free egress addresses"), line
        assert "egress functions get no network" in line
        assert "WISP_NETWORK=egress-unfiltered" in line
        wanted = targets(server.port)
        result = dial(server, wanted)
        assert_closed(result, wanted)
        assert result["interfaces"] == ["lo"], result


def test_the_old_unfiltered_egress_must_be_asked_for_by_name(tmp_path: Path) -> None:
    with no_filter_possible() as env, LiveServer(
        tmp_path, env={**env, "WISP_NETWORK": "egress-unfiltered"}
    ) as server:
        isolation = health(server)
        assert isolation["egress"] == "unfiltered"
        assert "egress-unfiltered(no free egress addresses" in isolation["layers"]
        assert banner_line(server, "egress").startswith("egress:    UNFILTERED (")
        # What the default now prevents: the host's loopback services are all open.
        result = dial(server, [("127.0.0.1", 5432), ("127.0.0.1", server.port)])
        assert result["127.0.0.1:5432"] == "connected", result
        assert result[f"127.0.0.1:{server.port}"] == "connected", result


def test_an_unknown_network_mode_is_refused(tmp_path: Path) -> None:
    server = LiveServer(tmp_path, env={"WISP_NETWORK": "open"})
    argv = ["server", "--port", str(server.port), "--data-dir", str(server.data_dir)]
    done = subprocess.run(server.launch(argv), env=server.env, capture_output=True, text=True)
    assert done.returncode != 0
    assert "WISP_NETWORK='open': must be one of egress, none, egress-unfiltered" in done.stderr
    assert "Traceback" not in done.stderr


def test_below_userns_the_server_refuses_unless_minimal_is_asked_for(tmp_path: Path) -> None:
    with nobody_server(tmp_path, before=NO_USERNS, start=False) as server:
        argv = ["server", "--port", str(server.port), "--data-dir", str(server.data_dir)]
        stage = tmp_path / "stage"
        done = subprocess.run(
            command(argv, stage, NO_USERNS), env=server.env, capture_output=True, text=True
        )
        assert done.returncode != 0
        errors = [line for line in done.stderr.splitlines() if line.startswith("Error:")]
        assert len(errors) == 1, done.stderr
        assert "reaches only isolation 'minimal'" in errors[0]
        assert "single-tenant only: pass --isolation minimal" in errors[0]
        assert "Traceback" not in done.stderr


def test_minimal_when_asked_for_keeps_functions_off_the_network(tmp_path: Path) -> None:
    with nobody_server(tmp_path, args=["--isolation", "minimal"], before=NO_USERNS) as server:
        isolation = health(server)
        assert isolation["level"] == "minimal", isolation
        assert isolation["egress"] == "none"
        wanted = targets(server.port)
        result = dial(server, wanted)
        assert result["uid"] == NOBODY  # the server's own uid: no namespaces here
        for host, port in wanted:
            assert result[f"{host}:{port}"] == 13, result  # EACCES: seccomp, no socket
        # The shared count: the uid's tasks at start plus 1024, below the server's own.
        assert result["nproc"] != "unlimited"
        assert 1024 < int(result["nproc"]) < 1024 + 4096, result
        if shutil.which("node"):  # the socket filter lets other runtimes start
            code = "function main(a) { return {uid: process.getuid()} }"
            server.deploy("nodefn", {"kind": "nodejs:default", "code": code})
            assert server.invoke("nodefn") == {"uid": NOBODY}
        bomb(server)


def bomb(server: Unprivileged) -> None:
    """A fork bomb at minimal stops at the shared limit; the server still serves."""
    code = (
        "import os, time\n"
        "def main(args):\n"
        "    n = 0\n"
        "    while n < 100000:\n"
        "        try:\n"
        "            if os.fork() == 0:\n"
        "                time.sleep(60)\n"
        "                os._exit(0)\n"
        "            n += 1\n"
        "        except OSError:\n"
        "            return {'forked': n}\n"
        "    return {'forked': n}\n"
    )
    body = {"exec": {"kind": "python:default", "code": code}, "limits": {"timeout": 30000}}
    status, answer = server.call("PUT", "/api/v1/namespaces/_/actions/bomb?overwrite=true", body)
    assert status == 200, answer
    status, result = server.call(
        "POST", "/api/v1/namespaces/_/actions/bomb?blocking=true&result=true", {}
    )
    assert status == 200, result
    assert 0 < result["forked"] < 1024 + 4096, result  # stopped by RLIMIT_NPROC
    status, again = server.call(
        "POST", "/api/v1/namespaces/_/actions/dial?blocking=true&result=true", {"targets": []}
    )
    assert status == 200 and again["uid"] == NOBODY, again
