"""Egress for instances: a network namespace each, the internet through a veth pair.

Each ``egress`` instance (as root) has a network namespace of its own, joined to the
host by a veth pair its stem cell makes before any request (runtimes/python/veth.py):
``eth0`` inside with the second address of a /30 from the server's pool, the host end
``wv<the /30's address in hex>`` with the first. The host forwards and masquerades
the pool's traffic; one nftables table per server (``inet wisp_<pid>``, programmed
over netlink by nftables.py: no ``nft`` binary needed) decides what it may reach:

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
import logging
import os
import re
import time
from collections import deque
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from wisp.errors import PlatformError
from wisp.sandbox import nftables, rtnetlink
from wisp.sandbox.nftables import Batch, Set
from wisp.sandbox.rtnetlink import Link

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
        self.mine = Set("mine", interval=True)  # this server's blocks
        self.refused = ""  # why install() could not, for the banner and /healthz

    @staticmethod
    def available() -> bool:
        return os.geteuid() == 0

    def install(self) -> bool:
        """Forwarding, NAT and the rules; False (with a warning) when this host cannot."""
        if self.active:
            return True
        if not self.available():
            self.refused = "no root"
            return False
        try:
            self._sweep_stale()
            self.rules().commit()
        except OSError as exc:
            return self._refuse(f"nf_tables refused the rules ({exc.strerror or exc})")
        try:
            self._claim()
        except PlatformError as exc:
            return self._refuse(str(exc))
        try:
            if FORWARDING.read_text().strip() != "1":
                FORWARDING.write_text("1")
                log.info("net.ipv4.ip_forward set to 1 (instances' egress is forwarded)")
        except OSError as exc:
            return self._refuse(f"cannot enable forwarding: {exc.strerror}")
        for address in self.unreachable:
            log.warning(
                "nameserver %s is on the host's loopback: instances cannot use it "
                "(set WISP_EGRESS_NAMESERVERS to the resolver it forwards to)",
                address,
            )
        self.active = True
        return True

    def _refuse(self, why: str) -> bool:
        log.warning("egress network not installed: %s", why)
        self.refused = why
        self._delete_table(self.table)
        return False

    def rules(self) -> Batch:
        """The server's table. Rules every server agrees on match any ``wv*`` link;
        those that depend on a server's settings (nameservers) match the source
        addresses of its own blocks (the set ``mine``), so that another server's
        table never decides for this one's instances. In nft's words (what
        ``nft list table inet wisp_<pid>`` shows):

            input: iifname "wv*" ip saddr @mine ip daddr @nameservers tcp|udp dport 53 accept
                   iifname "wv*" ip saddr @mine reject
                   iifname "wv*" meta nfproto ipv6 drop
            forward: iifname "wv*" oifname "wv*" drop
                   oifname "wv*" ct state established,related accept
                   oifname "wv*" drop
                   iifname "wv*" ip saddr @mine ct state new
                       add @flows { ip saddr ct count over FLOWS } drop
                   iifname "wv*" ip saddr @mine ip daddr @nameservers tcp|udp dport 53 accept
                   iifname "wv*" ip saddr @mine ip daddr @denied reject
                   iifname "wv*" meta nfproto ipv6 drop
            postrouting (nat): ip saddr @mine oifname != "wv*" masquerade
        """
        n = nftables
        batch = Batch(self.table)
        batch.add_table()
        flows = Set("flows", dynamic=True, size=65535)
        denied = Set("denied", interval=True)
        nameservers = Set("nameservers")
        for set_ in (self.mine, flows, denied, nameservers):
            batch.add_set(set_)
        batch.add_elements(denied, DENIED_V4)
        batch.add_elements(nameservers, self.nameservers)
        batch.add_chain("input", "filter", 0)
        batch.add_chain("forward", "filter", 0)
        batch.add_chain("postrouting", "nat", 100)  # srcnat
        wv, out_wv = n.ifname(LINK_PREFIX), n.ifname(LINK_PREFIX, out=True)
        ours = wv + n.saddr() + n.lookup(self.mine)
        dns = [n.daddr() + n.lookup(nameservers) + n.l4proto(p) + n.dport(53) for p in (6, 17)]
        accept, drop = n.verdict(n.ACCEPT), n.verdict(n.DROP)
        if self.nameservers:  # a nameserver may be one of the host's own addresses
            for proto in dns:
                batch.add_rule("input", ours, proto, accept)
        batch.add_rule("input", ours, n.reject())
        batch.add_rule("input", wv, n.ipv6(), drop)
        batch.add_rule("forward", wv, out_wv, drop)
        batch.add_rule("forward", out_wv, n.ct_state(n.CT_ESTABLISHED | n.CT_RELATED), accept)
        batch.add_rule("forward", out_wv, drop)
        # Past its flows, an instance's new ones are dropped (no ICMP to make).
        batch.add_rule(
            "forward", ours, n.ct_state(n.CT_NEW), n.saddr(), n.count_over(flows, self.flows), drop
        )
        if self.nameservers:
            for proto in dns:
                batch.add_rule("forward", ours, proto, accept)
        batch.add_rule("forward", ours, n.daddr(), n.lookup(denied), n.reject())
        batch.add_rule("forward", wv, n.ipv6(), drop)
        out_not_wv = n.ifname(LINK_PREFIX, n.CMP_NEQ, out=True)
        batch.add_rule("postrouting", n.saddr(), n.lookup(self.mine), out_not_wv, n.masquerade())
        return batch

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
            batch = Batch(self.table)
            batch.add_elements(self.mine, [str(network)])
            try:
                batch.commit()
            except OSError as exc:
                os.close(fd)
                raise PlatformError(f"cannot add {network} to the egress rules: {exc}") from None
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
            # Named after the /30's address, not its index in the subnet: a server
            # with another subnet must never make (and so replace) a link of ours.
            "host": f"{LINK_PREFIX}{int(base):08x}",
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
            nftables.delete_table(table)

    def _sweep_stale(self) -> None:
        """Tables and host ends of servers that are gone (a host end outlives its
        server only while something still holds its namespace)."""
        for name in nftables.tables():
            match = re.fullmatch(rf"{TABLE_PREFIX}(\d+)", name)
            pid = int(match.group(1)) if match else self.pid
            if pid != self.pid and not os.path.exists(f"/proc/{pid}"):
                self._delete_table(name)
        for link in stale_links(self.pid):
            with contextlib.suppress(OSError):  # gone meanwhile (its namespace ended)
                rtnetlink.delete(link.index)


def conntrack_udp_timeout() -> float:
    """Seconds conntrack keeps a UDP flow here (120 by default on Linux)."""
    values = []
    for path in UDP_TIMEOUTS:
        with contextlib.suppress(OSError, ValueError):
            values.append(float(path.read_text()))
    return max(values, default=120.0)


def stale_links(me: int) -> list[Link]:
    """Host ends (``wv*`` marked by a Wisp server) whose server is not running."""
    stale = []
    for link in rtnetlink.links():
        alias = link.alias
        if link.kind != "veth" or not link.name.startswith(LINK_PREFIX):
            continue
        if not alias.startswith(ALIAS_PREFIX) or not alias[len(ALIAS_PREFIX) :].isdigit():
            continue
        pid = int(alias[len(ALIAS_PREFIX) :])
        if pid != me and not os.path.exists(f"/proc/{pid}"):
            stale.append(link)
    return stale
