"""Egress instances in real sandboxes (root): a network namespace each, a veth pair to
the host, NAT to the internet, and nothing else. The "internet" is a network namespace
this test makes (``198.51.100.1``, and a private ``10.254.53.1`` standing for a
nameserver on a private range) with echo servers in it; no traffic leaves the host."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.invoker.conftest import make_target
from tests.live import LiveServer
from wisp.config import Settings
from wisp.errors import PlatformError
from wisp.models import SUCCESS
from wisp.runtimes import RuntimeTable, discover
from wisp.sandbox.egress import EgressNetwork, stale_links
from wisp.sandbox.local import EGRESS, LocalSandbox
from wisp.server import build_platform
from wisp.store.memory import MemoryStore

ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(
    not ROOT or shutil.which("nft") is None or shutil.which("ip") is None,
    reason="veth egress needs root and ip; nft reads the rules back (CI has both)",
)

PUBLIC, PRIVATE, PORT = "198.51.100.1", "10.254.53.1", 7007
SUBNET = "10.203.0.0/16"

# In the test's "internet" namespace: TCP and UDP echo on PORT and on 53 (answering
# with the address the packet came from, i.e. what NAT made of it).
ECHO = f"""
import socket, sys, threading
def tcp(port):
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("0.0.0.0", port))
    listener.listen(16)
    while True:
        conn, peer = listener.accept()
        data = conn.recv(512)
        conn.sendall(b"tcp " + peer[0].encode() + b" " + data)
        conn.close()
def udp(port):
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sock.bind(("0.0.0.0", port))
    while True:
        data, peer = sock.recvfrom(512)
        sock.sendto(data[:2] + b" udp " + peer[0].encode(), peer)
for port in ({PORT}, 53):
    threading.Thread(target=tcp, args=(port,), daemon=True).start()
    threading.Thread(target=udp, args=(port,), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""


def ip(*args: str) -> None:
    subprocess.run(["ip", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def internet() -> Iterator[str]:
    """A namespace with a public-looking and a private address, routed from the host
    through a veth pair whose host end is ``198.51.100.254`` (a test-made address)."""
    name = f"wisp-inet-{os.getpid()}"
    outside = f"wtest{os.getpid() % 1000000}"
    ip("netns", "add", name)
    server = None
    try:
        ip("link", "add", outside, "type", "veth", "peer", "name", "eth0", "netns", name)
        ip("addr", "add", "198.51.100.254/24", "dev", outside)
        ip("addr", "add", "10.254.53.254/24", "dev", outside)
        ip("link", "set", outside, "up")
        for command in (
            ("addr", "add", f"{PUBLIC}/24", "dev", "eth0"),
            ("addr", "add", f"{PRIVATE}/24", "dev", "eth0"),
            ("link", "set", "eth0", "up"),
            ("link", "set", "lo", "up"),
            ("route", "add", "default", "via", "198.51.100.254"),
        ):
            ip("-n", name, *command)
        server = subprocess.Popen(
            ["ip", "netns", "exec", name, sys.executable, "-c", ECHO],
            stdout=subprocess.PIPE,
            text=True,
        )
        assert server.stdout is not None and server.stdout.readline().strip() == "ready"
        yield outside
    finally:
        if server is not None:
            server.kill()
            server.wait()
            if server.stdout is not None:
                server.stdout.close()
        subprocess.run(["ip", "link", "delete", outside], capture_output=True)
        subprocess.run(["ip", "netns", "delete", name], capture_output=True)


@pytest.fixture
async def platform(tmp_path: Path, server_umask: None, internet: str) -> AsyncIterator[Any]:
    # The private "nameserver" of the test's internet is the one instances may use.
    settings = Settings(data_dir=tmp_path, stem_cells=1, keepalive=60, egress_nameservers=PRIVATE)
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    yield platform
    await platform.stop()


async def run(platform: Any, body: str, name: str, timeout: int = 8000) -> dict[str, Any]:
    indented = "\n".join("    " + line for line in body.strip().splitlines())
    code = (
        f"import os, socket, struct\ndef main(args):\n    out = {{}}\n{indented}\n    return out\n"
    )
    record = await platform.invoker.submit(
        make_target(code, name=name, timeout=timeout), {}, subject="guest"
    ).done
    assert record.status_code == SUCCESS, (record.result, record.logs)
    result: dict[str, Any] = record.result
    return result


def dial(host: str, port: int, kind: str = "tcp", key: str = "") -> str:
    """Function code that tries ``host`` (an expression) and ``port``, and stores what
    happened in out["<kind> <host>:<port>"] (or out[key])."""
    key = key or f"{kind} {host}:{port}"
    host = repr(host) if host[0].isdigit() else host
    if kind == "tcp":
        return f"""
try:
    s = socket.create_connection(({host}, {port}), timeout=1.5)
    s.sendall(b'hello')
    out[{key!r}] = s.recv(512).decode()
    s.close()
except OSError as exc:
    out[{key!r}] = exc.errno if exc.errno else 'timeout'
"""
    return f"""
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.settimeout(1.5)
try:
    s.connect(({host}, {port}))
    s.send(struct.pack('!H', 0x1234) + b'\\x01\\x00\\x00\\x01' + bytes(6) + b'\\x03wsp\\x00\\x00\\x01\\x00\\x01')
    out[{key!r}] = s.recv(512)[2:].decode()
except OSError as exc:
    out[{key!r}] = exc.errno if exc.errno else 'timeout'
s.close()
"""


async def test_an_egress_instance_has_a_network_namespace_of_its_own(platform: Any) -> None:
    sandbox = platform.invoker.sandbox
    assert sandbox.egress.active and sandbox.level == "strict"
    assert f"egress-veth({SUBNET})" in sandbox.isolation
    result = await run(
        platform,
        """
out['ns'] = os.readlink('/proc/self/ns/net')
out['interfaces'] = sorted(name for _, name in socket.if_nameindex())
out['dev'] = sorted(line.split(':')[0].strip() for line in open('/proc/net/dev').readlines()[2:])
out['ipv6'] = sorted(line.split()[-1] for line in open('/proc/net/if_inet6'))
out['routes'] = [line.split()[:3] for line in open('/proc/net/route').readlines()[1:]]
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('198.51.100.1', 9))
out['address'] = s.getsockname()[0]
""",
        "ns",
    )
    assert result["ns"] != os.readlink("/proc/self/ns/net")
    assert result["interfaces"] == ["eth0", "lo"]
    assert result["dev"] == ["eth0", "lo"]
    assert result["ipv6"] == ["lo"]  # ::1 only: no IPv6 way out
    assert result["address"].startswith("10.203.")
    assert result["routes"][0][:2] == ["eth0", "00000000"]  # the default route, via eth0


async def test_the_internet_is_reached_through_nat(platform: Any) -> None:
    result = await run(platform, dial(PUBLIC, PORT) + dial(PUBLIC, PORT, "udp"), "internet")
    # The far end sees the host's address on its side, not the instance's.
    assert result[f"tcp {PUBLIC}:{PORT}"] == "tcp 198.51.100.254 hello"
    assert result[f"udp {PUBLIC}:{PORT}"] == " udp 198.51.100.254"


async def test_an_instance_cannot_fill_the_hosts_flow_table(
    tmp_path: Path, server_umask: None, internet: str
) -> None:
    """Past its flows (WISP_EGRESS_FLOWS), an instance's new connections are dropped,
    however fast it makes them (the kernel's count may trail a burst by a few: 400
    sends leave about 33 flows for a cap of 32); other instances are not affected."""
    settings = Settings(
        data_dir=tmp_path, stem_cells=1, egress_nameservers=PRIVATE, egress_flows=32
    )
    platform = build_platform(settings, MemoryStore())
    await platform.start()
    try:
        spray = (
            dial(PUBLIC, PORT, key="before")
            # 400 flows: a new socket (a new source port) each, to the echo port
            + "for _ in range(400):\n"
            + "    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as u:\n"
            + f"        u.sendto(b'x', ({PUBLIC!r}, {PORT}))\n"
            + dial(PUBLIC, PORT, key="after")
        )
        result = await run(platform, spray, "sprayer")
        assert result["before"] == "tcp 198.51.100.254 hello"
        assert result["after"] == "timeout"  # dropped: the new flow is over its count
        other = await run(platform, dial(PUBLIC, PORT, key="other"), "bystander")
        assert other["other"] == "tcp 198.51.100.254 hello"
    finally:
        await platform.stop()


async def test_dns_to_the_nameservers_only(platform: Any) -> None:
    # 10.254.53.1 is private: only port 53 there is let through (it is the nameserver).
    code = dial(PRIVATE, 53, "udp") + dial(PRIVATE, 53) + dial(PRIVATE, PORT, "udp")
    result = await run(platform, code + dial(PRIVATE, PORT), "dns")
    assert result[f"udp {PRIVATE}:53"] == " udp 10.254.53.254"
    assert result[f"tcp {PRIVATE}:53"] == "tcp 10.254.53.254 hello"
    assert result[f"udp {PRIVATE}:{PORT}"] == 111  # rejected: ECONNREFUSED
    assert result[f"tcp {PRIVATE}:{PORT}"] == 111


async def test_the_host_is_closed(platform: Any) -> None:
    # Services on the host: bound on 0.0.0.0 (reached through any of its addresses,
    # here a test-made one and the instance's gateway) and on loopback.
    with socket.socket() as anywhere, socket.socket() as loopback:
        anywhere.bind(("0.0.0.0", 0))
        anywhere.listen()
        loopback.bind(("127.0.0.1", 0))
        loopback.listen()
        port, local = anywhere.getsockname()[1], loopback.getsockname()[1]
        gateway = """
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.connect(('198.51.100.1', 9))
mine = s.getsockname()[0]
gateway = mine.rsplit('.', 1)[0] + '.' + str(int(mine.rsplit('.', 1)[1]) - 1)
"""
        tries = dial("198.51.100.254", port) + dial("127.0.0.1", local)
        result = await run(platform, gateway + tries + dial("gateway", port, key="gw"), "host")
        anywhere.setblocking(False)
        with pytest.raises(BlockingIOError):
            anywhere.accept()  # nothing got through
    assert result[f"tcp 198.51.100.254:{port}"] == 111
    assert result[f"tcp 127.0.0.1:{local}"] == 111  # its own loopback: nothing there
    assert result["gw"] == 111


LISTENER = """
import socket, threading
LISTENER = socket.socket()
LISTENER.bind(('0.0.0.0', {port}))
LISTENER.listen()
def serve():
    while True:
        conn, _ = LISTENER.accept()
        conn.sendall(b'instance')
        conn.close()
threading.Thread(target=serve, daemon=True).start()
def main(args):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.connect(('198.51.100.1', 9))
    address = s.getsockname()[0]
    with socket.create_connection((address, {port}), timeout=2) as conn:
        return {{'address': address, 'itself': conn.recv(64).decode()}}
"""


async def test_instances_cannot_reach_each_other_nor_take_host_ports(platform: Any) -> None:
    with socket.socket() as probe:
        probe.bind(("0.0.0.0", 0))
        port = probe.getsockname()[1]
    record = await platform.invoker.submit(
        make_target(LISTENER.format(port=port), name="listener"), {}, subject="guest"
    ).done
    assert record.status_code == SUCCESS, record.logs
    address = record.result["address"]
    assert record.result["itself"] == "instance"  # it listens on its eth0 address
    # Listening inside took nothing on the host: the port is still free here.
    with socket.socket() as same:
        same.bind(("0.0.0.0", port))
    # Another instance cannot reach it.
    result = await run(platform, dial(address, port), "neighbour")
    assert result[f"tcp {address}:{port}"] == "timeout"


def links() -> list[dict[str, Any]]:
    listed = subprocess.run(
        ["ip", "-j", "-d", "link", "show", "type", "veth"], capture_output=True, text=True
    )
    return [link for link in json.loads(listed.stdout or "[]") if link["ifname"].startswith("wv")]


async def test_links_and_addresses_come_and_go(tmp_path: Path, server_umask: None) -> None:
    # A /26: sixteen /30s, one stem cell per runtime kind holding one each. Forty
    # instances come and go, one at a time: the others are used again and again.
    settings = Settings(
        data_dir=tmp_path, cgroups="off", stem_cells=1, egress_subnet="10.203.255.192/26"
    )
    sandbox = LocalSandbox(settings, RuntimeTable(discover(None)))
    kind = sandbox.runtimes.spawner.kind
    await sandbox.start()
    mine = f"wisp {os.getpid()}"
    try:
        assert sandbox.egress.slots == 16
        for _ in range(40):
            instance = await sandbox.spawn(kind, EGRESS)
            assert sandbox._links[instance.pid] < 16
            await instance.kill()
            await asyncio.wait_for(asyncio.shield(instance.exited), 5)
        await asyncio.sleep(0.1)  # the last one's settle() gives its /30 back
        live = [sandbox._links[pid] for pid in sandbox.live if pid in sandbox._links]
        assert sandbox.egress.free == 16 - len(live)
        expected = sorted(sandbox.egress.spec(i)["host"] for i in live)
        deadline = time.monotonic() + 10

        def ours() -> list[str]:
            return sorted(link["ifname"] for link in links() if link.get("ifalias") == mine)

        # The kernel tears dead namespaces down in the background, and stem cells being
        # refilled make their pairs a moment after they are forked (later on a busy host).
        while ours() != expected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)
        assert ours() == expected
    finally:
        await sandbox.stop()
    assert (
        f"wisp_{os.getpid()}"
        not in subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
    )


def test_a_dead_servers_table_and_links_are_swept() -> None:
    gone = subprocess.Popen(["true"])
    gone.wait()  # a pid that no longer runs
    subprocess.run(["nft", "add", "table", "inet", f"wisp_{gone.pid}"], check=True)
    ip("link", "add", "wv9999", "type", "veth", "peer", "name", "wvpeer9999")
    ip("link", "set", "wv9999", "alias", f"wisp {gone.pid}")
    ip("link", "add", "wv9998", "type", "veth", "peer", "name", "wvpeer9998")
    ip("link", "set", "wv9998", "alias", "wisp 1")  # a server that still runs: kept
    try:
        assert [link.name for link in stale_links(os.getpid())] == ["wv9999"]
        egress = EgressNetwork("10.203.254.0/30", ["192.0.2.53"])
        assert egress.install()
        egress.remove()
        tables = subprocess.run(["nft", "list", "tables"], capture_output=True, text=True).stdout
        assert f"wisp_{gone.pid}" not in tables
        names = {link["ifname"] for link in links()}
        assert "wv9999" not in names and "wv9998" in names
    finally:
        subprocess.run(["ip", "link", "delete", "wv9998"], capture_output=True)
        subprocess.run(["ip", "link", "delete", "wv9999"], capture_output=True)
        subprocess.run(["nft", "delete", "table", "inet", f"wisp_{gone.pid}"], capture_output=True)


def test_link_names_follow_the_address_not_the_index() -> None:
    # Two servers with disjoint subnets: the same index, never the same host end (the
    # stem cell replaces a link of the name it makes; another server's would go).
    first = EgressNetwork("10.203.0.0/16").spec(2)
    other = EgressNetwork("10.203.255.192/26").spec(2)
    assert first["host"] == "wv0acb0008" and other["host"] == "wv0acbffc8"
    assert first["gateway"] == "10.203.0.9" and other["gateway"] == "10.203.255.201"


def test_a_freed_address_rests_before_another_instance_gets_it() -> None:
    """A late reply to one tenant's UDP flow must not reach the next tenant on that
    address: a freed /30 waits longer than conntrack keeps the flow."""
    egress = EgressNetwork("10.203.253.0/28", ["192.0.2.53"])  # four /30s, one block
    assert egress.rest > 120  # conntrack's UDP stream timeout is 120 s here
    assert egress.install()
    try:
        a, b = egress.take(), egress.take()
        egress.release(a)
        c, d = egress.take(), egress.take()
        assert a not in (c, d)  # two never-used ones first; the freed one rests
        assert egress.free == 1
        egress.release(b)
        # Every block claimed, every address in use or resting: the longest-resting
        # one comes back early rather than failing the stem cell.
        assert egress.take() == a
        egress.rest = 0.0
        egress.release(c)
        assert egress.take() == b  # rested long enough, oldest first
        assert egress.take() == c
        with pytest.raises(PlatformError, match="no free egress addresses"):
            egress.take()
    finally:
        egress.remove()


def test_the_rules_read_back_by_nft_are_the_filter() -> None:
    """The table programmed over netlink, as nft itself prints it: every rule of the
    filter, in order, and the sets' contents."""
    egress = EgressNetwork("10.9.0.0/24", ["10.255.255.53", "127.0.0.53"], flows=77)
    egress.table = f"wisp_rules_test_{os.getpid()}"  # not a server's: left alone by sweeps
    try:
        egress.rules().commit()
        listed = subprocess.run(
            ["nft", "list", "table", "inet", egress.table], capture_output=True, text=True
        ).stdout
    finally:
        EgressNetwork._delete_table(egress.table)
    lines = [" ".join(line.split()) for line in listed.splitlines()]
    ours = 'iifname "wv*" ip saddr @mine'
    rules = [line for line in lines if line.startswith(("iifname", "oifname", "ip saddr"))]
    assert rules == [
        f"{ours} ip daddr @nameservers tcp dport 53 accept",
        f"{ours} ip daddr @nameservers udp dport 53 accept",
        f"{ours} reject with icmp port-unreachable",
        'iifname "wv*" meta nfproto ipv6 drop',
        'iifname "wv*" oifname "wv*" drop',
        'oifname "wv*" ct state established,related accept',
        'oifname "wv*" drop',
        f"{ours} ct state new add @flows {{ ip saddr ct count over 77 }} drop",
        f"{ours} ip daddr @nameservers tcp dport 53 accept",
        f"{ours} ip daddr @nameservers udp dport 53 accept",
        f"{ours} ip daddr @denied reject with icmp port-unreachable",
        'iifname "wv*" meta nfproto ipv6 drop',
        'ip saddr @mine oifname != "wv*" masquerade',
    ]
    text = " ".join(lines)
    # A loopback resolver cannot be reached from another namespace: left out, warned.
    assert "elements = { 10.255.255.53 }" in text and "127.0.0.53" not in text
    denied = text[text.index("set denied") :]
    denied = denied[: denied.index("}", denied.index("elements"))]
    for network in ("0.0.0.0/8", "10.0.0.0/8", "100.64.0.0/10", "127.0.0.0/8", "169.254.0.0/16"):
        assert network in denied
    assert "172.16.0.0/12" in denied and "192.168.0.0/16" in denied
    assert "224.0.0.0/3" in denied  # 224/4 and 240/4, merged into one interval
    assert "type filter hook input priority filter; policy accept;" in text
    assert "type nat hook postrouting priority srcnat; policy accept;" in text


def test_a_live_server_runs_egress_functions_in_their_namespace(
    tmp_path: Path, internet: str
) -> None:
    code = (
        "import os, socket\n"
        "def main(args):\n"
        "    out = {'ns': os.readlink('/proc/self/ns/net')}\n"
        "    for host, port in (('198.51.100.1', 7007), ('198.51.100.254', int(args['port']))):\n"
        "        try:\n"
        "            with socket.create_connection((host, port), timeout=2) as s:\n"
        "                s.sendall(b'hi')\n"
        "                out[host] = s.recv(64).decode()\n"
        "        except OSError as exc:\n"
        "            out[host] = exc.errno\n"
        "    return out\n"
    )
    with LiveServer(tmp_path, args=["--host", "0.0.0.0", "--isolation", "strict"]) as server:
        server.deploy("net", code)
        status, body = server.call(
            "POST",
            "/api/v1/namespaces/_/actions/net?blocking=true&result=true",
            {"port": server.port},
        )
        assert status == 200, body
        assert body["198.51.100.1"] == "tcp 198.51.100.254 hi"
        assert body["198.51.100.254"] == 111  # the control plane, through the host's address
        assert body["ns"] != os.readlink("/proc/self/ns/net")
        _, health = server.call("GET", "/healthz")
        assert f"egress-veth({SUBNET})" in health["isolation"]["layers"]
