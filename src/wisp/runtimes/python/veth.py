"""An instance's way out: a veth pair between the host and its network namespace.

Standard library only (rtnetlink over a raw socket: no ``ip`` to exec, no
library to import in the zygote). The child still root in the host's network
namespace opens one netlink socket there, makes its own namespace, then through
that socket creates the pair (the host end named by the server, the other end
``eth0`` straight in the new namespace) and gives the host end the gateway address;
through a second socket, opened in the new namespace, it gives ``eth0`` its
address and a default route via the gateway. A few round trips to the kernel, no
process and no message to the server: the namespace is ready before confinement
goes on. When the instance's last process exits the kernel destroys the namespace,
``eth0`` and, with it, the host end.
"""

import os
import socket
import struct

NETLINK_ROUTE = 0
RTM_NEWLINK, RTM_DELLINK, RTM_GETLINK = 16, 17, 18
RTM_NEWADDR, RTM_NEWROUTE = 20, 24
NLMSG_ERROR = 2
NLM_F_REQUEST, NLM_F_ACK, NLM_F_EXCL, NLM_F_CREATE = 0x1, 0x4, 0x200, 0x400
IFLA_IFNAME, IFLA_LINKINFO, IFLA_NET_NS_PID, IFLA_IFALIAS = 3, 18, 19, 20
IFLA_INFO_KIND, IFLA_INFO_DATA, VETH_INFO_PEER = 1, 2, 1
IFA_ADDRESS, IFA_LOCAL = 1, 2
RTA_GATEWAY = 5
IFF_UP = 0x1
RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST = 254, 3, 0, 1
EEXIST = 17
LOOPBACK = 1  # lo's index in every new network namespace

_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg
_IFADDR = struct.Struct("=BBBBI")  # ifaddrmsg
_RTMSG = struct.Struct("=BBBBBBBBI")  # rtmsg


def _attr(kind, data):
    size = 4 + len(data)
    return struct.pack("=HH", size, kind) + data + bytes(-size % 4)


def _name(text):
    return text.encode() + b"\0"


class Netlink:
    """A route netlink socket in the network namespace it was opened in (a socket
    stays there whatever namespace its owner later moves to)."""

    def __init__(self):
        self.sock = socket.socket(
            socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE
        )
        self.seq = 0

    def close(self):
        self.sock.close()

    def request(self, kind, flags, body):
        """Send one message; return the kernel's answer to it (the reply's payload for
        a query, b"" for an acknowledged change). Raise OSError on a refusal."""
        self.seq += 1
        self.sock.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, self.seq, 0) + body)
        while True:
            data = self.sock.recv(65536)
            offset = 0
            while offset + _HEADER.size <= len(data):
                size, answer, _, seq, _ = _HEADER.unpack_from(data, offset)
                payload = data[offset + _HEADER.size : offset + size]
                offset += (size + 3) & ~3
                if seq != self.seq:
                    continue
                if answer != NLMSG_ERROR:
                    return payload
                (error,) = struct.unpack_from("=i", payload)
                if error:
                    raise OSError(-error, f"netlink: {os.strerror(-error)}")
                return b""

    def index(self, name):
        """The index of the link ``name`` in this socket's namespace."""
        body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name))
        reply = self.request(RTM_GETLINK, NLM_F_REQUEST, body)
        return _IFINFO.unpack_from(reply)[2]

    def create_veth(self, host, peer, peer_pid):
        """The pair: ``host`` here, ``peer`` in the network namespace of ``peer_pid``,
        both down (the kernel refuses to bring the peer up in the same request)."""
        peer_info = (
            _IFINFO.pack(0, 0, 0, 0, 0)
            + _attr(IFLA_IFNAME, _name(peer))
            + _attr(IFLA_NET_NS_PID, struct.pack("=I", peer_pid))
        )
        linkinfo = _attr(IFLA_INFO_KIND, b"veth") + _attr(
            IFLA_INFO_DATA, _attr(VETH_INFO_PEER, peer_info)
        )
        body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(host))
        body += _attr(IFLA_LINKINFO, linkinfo)
        flags = NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL
        self.request(RTM_NEWLINK, flags, body)

    def up(self, index, alias=""):
        """Bring a link up, and mark it with ``alias`` (the kernel ignores an alias
        given when the link is created)."""
        body = _IFINFO.pack(0, 0, index, IFF_UP, IFF_UP)
        if alias:
            body += _attr(IFLA_IFALIAS, alias.encode())
        self.request(RTM_NEWLINK, NLM_F_REQUEST | NLM_F_ACK, body)

    def delete(self, name):
        body = _IFINFO.pack(0, 0, 0, 0, 0) + _attr(IFLA_IFNAME, _name(name))
        self.request(RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, body)

    def add_address(self, index, address, prefix):
        packed = socket.inet_aton(address)
        body = (
            _IFADDR.pack(socket.AF_INET, prefix, 0, RT_SCOPE_UNIVERSE, index)
            + _attr(IFA_LOCAL, packed)
            + _attr(IFA_ADDRESS, packed)
        )
        self.request(RTM_NEWADDR, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)

    def default_route(self, gateway):
        body = _RTMSG.pack(
            socket.AF_INET, 0, 0, 0, RT_TABLE_MAIN, RTPROT_BOOT, RT_SCOPE_UNIVERSE, RTN_UNICAST, 0
        ) + _attr(RTA_GATEWAY, socket.inet_aton(gateway))
        self.request(RTM_NEWROUTE, NLM_F_REQUEST | NLM_F_ACK | NLM_F_CREATE | NLM_F_EXCL, body)


def without_ipv6():
    """Links made from now on in this (new) namespace get no IPv6 address: an
    instance's only way out is IPv4 through the host's filter."""
    try:
        with open("/proc/sys/net/ipv6/conf/default/disable_ipv6", "w") as knob:
            knob.write("1")
    except FileNotFoundError:
        pass  # a kernel without IPv6


def connect(host, spec, unshare):
    """Make the network namespace (``unshare()``, which the caller does with its other
    namespaces) and its veth pair per ``spec``: {"host": link name on the host,
    "gateway": the host end's address, "address": eth0's, "prefix": their length,
    "alias": the server's mark on the host end}. ``host`` is a Netlink opened before,
    in the host's namespace."""
    unshare()
    without_ipv6()
    try:
        host.create_veth(spec["host"], "eth0", os.getpid())
    except OSError as exc:
        if exc.errno != EEXIST:
            raise
        # The server gives a link name to one live instance at a time: one left under
        # it belongs to an instance that has exited, whose namespace the kernel has not
        # finished tearing down yet.
        host.delete(spec["host"])
        host.create_veth(spec["host"], "eth0", os.getpid())
    outside = host.index(spec["host"])
    host.add_address(outside, spec["gateway"], spec["prefix"])
    host.up(outside, spec["alias"])
    inside = Netlink()
    try:
        inside.up(LOOPBACK)
        eth0 = socket.if_nametoindex("eth0")
        inside.add_address(eth0, spec["address"], spec["prefix"])
        inside.up(eth0)
        inside.default_route(spec["gateway"])
    finally:
        inside.close()
