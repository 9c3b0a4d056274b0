"""Egress for instances: a network namespace each, the internet through a veth pair.

Each ``egress`` instance (as root) has a network namespace of its own, joined to the
host by a veth pair its stem cell makes before any request (runtimes/python/veth.py):
``eth0`` inside with the second address of a /30 from the server's pool, the host end
``wv<index>`` with the first. The host forwards and masquerades the pool's traffic;
one nftables table per server (``inet wisp_<pid>``) decides what it may reach:

- nothing on the host itself (the control plane, anything bound on 0.0.0.0, every
  address the host has or will have): input from ``wv*`` is rejected;
- nothing private: loopback, RFC 1918, link-local, CGNAT, multicast and reserved
  destinations are rejected, except DNS (port 53) to the nameservers the host uses;
- no other instance (``wv*`` to ``wv*`` is dropped), and no connection started from
  outside towards an instance;
- no IPv6 (instances have none; anything else that shows up is dropped).

A namespace goes with its instance's last process, and its veth pair with it: the
server only gives the /30 back to its pool, where it rests (``rest`` seconds, longer
than conntrack keeps a UDP flow) before another instance gets it: a late reply to one
tenant's connection never reaches the next tenant on that address, and the kernel has
long finished tearing the old namespace down. Only when every block is claimed and
every address is in use or resting is the longest-resting one reused early. Tables
and links left by servers that died are swept at start.

Several servers on one host share the pool: each claims blocks of 256 /30s (a /22)
as it needs them, holding a lock file per block in /run/wisp for as long as it runs
(the kernel drops the lock when the process dies, however it dies). Link names come
from the address, so they are unique too, and each server's rules apply to its own
blocks only.
"""

from __future__ import annotations

import contextlib
import fcntl
import ipaddress
import json
import logging
import os
import re
import shutil
import subprocess
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wisp.errors import PlatformError

log = logging.getLogger("wisp.sandbox")

DEFAULT_SUBNET = "10.203.0.0/16"
# Flows (conntrack entries) one instance may have at once: NAT tracks every flow in a
# host-wide table (nf_conntrack_max, 262144 here), which a loop of UDP sends to fresh
# ports would otherwise fill for everyone, the host's own services included.
DEFAULT_FLOWS = 2048
DENIED_V4 = (
    "0.0.0.0/8",
    "10.0.0.0/8",
    "100.64.0.0/10",
    "127.0.0.0/8",
    "169.254.0.0/16",
    "172.16.0.0/12",
    "192.168.0.0/16",
    "224.0.0.0/4",
    "240.0.0.0/4",
)
TABLE_PREFIX = "wisp_"
LINK_PREFIX = "wv"
ALIAS_PREFIX = "wisp "  # + the server's pid: marks the host ends a server made
SLOT = 4  # addresses per instance: a /30 (network, gateway, instance, broadcast)
BLOCK = 256  # /30s a server claims at a time
FORWARDING = Path("/proc/sys/net/ipv4/ip_forward")
UDP_TIMEOUTS = (  # how long conntrack keeps a UDP flow (a TCP one ends with a reset)
    Path("/proc/sys/net/netfilter/nf_conntrack_udp_timeout_stream"),
    Path("/proc/sys/net/netfilter/nf_conntrack_udp_timeout"),
)
LOCKS = Path("/run/wisp")


def host_nameservers(resolv_conf: Path = Path("/etc/resolv.conf")) -> list[str]:
    """The IPv4 nameservers the host's resolver uses (what an instance's resolv.conf,
    bound from the host's /etc, names too)."""
    found = []
    with contextlib.suppress(OSError):
        for line in resolv_conf.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 2 and parts[0] == "nameserver":
                with contextlib.suppress(ValueError):
                    address = ipaddress.ip_address(parts[1])
                    if address.version == 4:
                        found.append(str(address))
    return found


class EgressNetwork:
    def __init__(
        self,
        subnet: str = DEFAULT_SUBNET,
        nameservers: Sequence[str] = (),
        flows: int = DEFAULT_FLOWS,
    ) -> None:
        self.subnet = ipaddress.IPv4Network(subnet)
        self.flows = flows
        self.slots = self.subnet.num_addresses // SLOT
        self.block = min(BLOCK, self.slots)
        explicit = [str(ipaddress.IPv4Address(a)) for a in nameservers]
        found = explicit or host_nameservers()
        # A resolver on the host's loopback (systemd-resolved's 127.0.0.53) cannot be
        # reached from another namespace: instances then have no DNS.
        self.unreachable = [a for a in found if ipaddress.IPv4Address(a).is_loopback]
        self.nameservers = [a for a in found if a not in self.unreachable]
        self.pid = os.getpid()
        self.table = f"{TABLE_PREFIX}{self.pid}"
        self.active = False
        self._free: deque[int] = deque()
        self._resting: deque[tuple[float, int]] = deque()  # (freed at, index), oldest first
        self.rest = conntrack_udp_timeout() + 10.0
        self._claimed: dict[int, int] = {}  # block -> its lock file's descriptor

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0 and shutil.which("nft") is not None

    def install(self) -> bool:
        """Forwarding, NAT and the rules; False (with a warning) when this host cannot."""
        if self.active:
            return True
        if not self.available():
            return False
        self._sweep_stale()
        done = subprocess.run(
            ["nft", "-f", "-"], input=self.ruleset(), text=True, capture_output=True
        )
        if done.returncode != 0:
            log.warning("egress network not installed: %s", done.stderr.strip())
            return False
        try:
            self._claim()
        except PlatformError as exc:
            log.warning("egress network not installed: %s", exc)
            self._delete_table(self.table)
            return False
        try:
            if FORWARDING.read_text().strip() != "1":
                FORWARDING.write_text("1")
                log.info("net.ipv4.ip_forward set to 1 (instances' egress is forwarded)")
        except OSError as exc:
            log.warning("egress network not installed: cannot enable forwarding: %s", exc)
            self._delete_table(self.table)
            return False
        for address in self.unreachable:
            log.warning(
                "nameserver %s is on the host's loopback: instances cannot use it "
                "(set WISP_EGRESS_NAMESERVERS to the resolver it forwards to)",
                address,
            )
        self.active = True
        return True

    def ruleset(self) -> str:
        """The server's table. Rules every server agrees on match any ``wv*`` link;
        those that depend on a server's settings (nameservers) match the source
        addresses of its own blocks (the set ``mine``), so that another server's
        table never decides for this one's instances."""
        t = f"inet {self.table}"
        wv = f'"{LINK_PREFIX}*"'
        dns = (
            f"ip daddr {{ {', '.join(self.nameservers)} }} meta l4proto {{ tcp, udp }} th dport 53"
        )
        ours = f"iifname {wv} ip saddr @mine"
        rules = [
            f"add table {t}",
            f"add set {t} mine {{ type ipv4_addr; flags interval; }}",
            f"add set {t} flows {{ type ipv4_addr; size 65535; flags dynamic; }}",
            f"add chain {t} input {{ type filter hook input priority 0; policy accept; }}",
            f"add chain {t} forward {{ type filter hook forward priority 0; policy accept; }}",
            f"add chain {t} postrouting "
            "{ type nat hook postrouting priority srcnat; policy accept; }",
        ]
        if self.nameservers:  # a nameserver may be one of the host's own addresses
            rules.append(f"add rule {t} input {ours} {dns} accept")
        rules += [
            f"add rule {t} input {ours} reject",
            f"add rule {t} input iifname {wv} meta nfproto ipv6 drop",
            f"add rule {t} forward iifname {wv} oifname {wv} drop",
            f"add rule {t} forward oifname {wv} ct state established,related accept",
            f"add rule {t} forward oifname {wv} drop",
        ]
        rules.append(  # past its flows, an instance's new ones are dropped (no ICMP to make)
            f"add rule {t} forward {ours} ct state new "
            f"add @flows {{ ip saddr ct count over {self.flows} }} drop"
        )
        if self.nameservers:
            rules.append(f"add rule {t} forward {ours} {dns} accept")
        rules += [
            f"add rule {t} forward {ours} ip daddr {{ {', '.join(DENIED_V4)} }} reject",
            f"add rule {t} forward iifname {wv} meta nfproto ipv6 drop",
            f"add rule {t} postrouting ip saddr @mine oifname != {wv} masquerade",
        ]
        return "\n".join(rules) + "\n"

    def take(self) -> int:
        """A free /30 for a new instance (claiming another block when this server's
        are all in use)."""
        now = time.monotonic()
        while self._resting and now - self._resting[0][0] >= self.rest:
            self._free.append(self._resting.popleft()[1])
        if not self._free:
            try:
                self._claim()
            except PlatformError:
                if not self._resting:
                    raise
                log.warning(
                    "egress addresses short: reusing one freed %.0f s ago (rest %.0f s)",
                    now - self._resting[0][0],
                    self.rest,
                )
                self._free.append(self._resting.popleft()[1])
        return self._free.popleft()

    def _claim(self) -> None:
        """Lock the first block no other server holds, and open it to our rules."""
        LOCKS.mkdir(mode=0o700, parents=True, exist_ok=True)
        for block in range(self.slots // self.block):
            if block in self._claimed:
                continue
            network = self._block_network(block)
            name = f"egress-{network.network_address}-{network.prefixlen}.lock"
            fd = os.open(LOCKS / name, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                os.close(fd)
                continue
            element = f"add element inet {self.table} mine {{ {network} }}"
            done = subprocess.run(["nft", element], text=True, capture_output=True)
            if done.returncode != 0:
                os.close(fd)
                raise PlatformError(f"cannot add {network} to the egress rules: {done.stderr}")
            self._claimed[block] = fd
            first = block * self.block
            self._free.extend(range(first, first + self.block))
            return
        raise PlatformError(
            f"no free egress addresses: {self.subnet} holds {self.slots} instances "
            "(all in use, or claimed by other Wisp servers); widen WISP_EGRESS_SUBNET"
        )

    def _block_network(self, block: int) -> ipaddress.IPv4Network:
        first = self.subnet.network_address + block * self.block * SLOT
        return ipaddress.IPv4Network(f"{first}/{32 - (self.block * SLOT).bit_length() + 1}")

    def release(self, index: int) -> None:
        self._resting.append((time.monotonic(), index))

    @property
    def free(self) -> int:
        """Addresses not held by an instance (free or resting)."""
        return len(self._free) + len(self._resting)

    def spec(self, index: int) -> dict[str, Any]:
        """What the stem cell needs to make its end (runtimes/python/veth.py)."""
        base = self.subnet.network_address + index * SLOT
        return {
            "host": f"{LINK_PREFIX}{index}",
            "gateway": str(base + 1),
            "address": str(base + 2),
            "prefix": 30,
            "alias": f"{ALIAS_PREFIX}{self.pid}",
        }

    def remove(self) -> None:
        if self.active:
            self._delete_table(self.table)
            self.active = False
        for fd in self._claimed.values():
            os.close(fd)
        self._claimed.clear()
        self._free.clear()
        self._resting.clear()

    @staticmethod
    def _delete_table(table: str) -> None:
        with contextlib.suppress(OSError):
            subprocess.run(["nft", "delete", "table", "inet", table], capture_output=True)

    def _sweep_stale(self) -> None:
        """Tables and host ends of servers that are gone (a host end outlives its
        server only while something still holds its namespace)."""
        listed = subprocess.run(["nft", "list", "tables"], text=True, capture_output=True)
        for match in re.finditer(rf"table inet {TABLE_PREFIX}(\d+)", listed.stdout):
            pid = int(match.group(1))
            if pid != self.pid and not os.path.exists(f"/proc/{pid}"):
                self._delete_table(f"{TABLE_PREFIX}{pid}")
        for name in stale_links(self.pid):
            subprocess.run(["ip", "link", "delete", name], capture_output=True)


def conntrack_udp_timeout() -> float:
    """Seconds conntrack keeps a UDP flow here (120 by default on Linux)."""
    values = []
    for path in UDP_TIMEOUTS:
        with contextlib.suppress(OSError, ValueError):
            values.append(float(path.read_text()))
    return max(values, default=120.0)


def stale_links(me: int) -> list[str]:
    """Host ends (``wv*`` marked by a Wisp server) whose server is not running."""
    listed = subprocess.run(
        ["ip", "-j", "-d", "link", "show", "type", "veth"], text=True, capture_output=True
    )
    try:
        links: list[dict[str, Any]] = json.loads(listed.stdout or "[]")
    except ValueError:
        return []
    stale = []
    for link in links:
        alias = str(link.get("ifalias", ""))
        if not str(link.get("ifname", "")).startswith(LINK_PREFIX):
            continue
        if not alias.startswith(ALIAS_PREFIX) or not alias[len(ALIAS_PREFIX) :].isdigit():
            continue
        pid = int(alias[len(ALIAS_PREFIX) :])
        if pid != me and not os.path.exists(f"/proc/{pid}"):
            stale.append(str(link["ifname"]))
    return stale
