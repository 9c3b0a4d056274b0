"""The host's links over route netlink: list the veth ends, delete one.

What the server needs to sweep the host ends of servers that died, without the ``ip``
program (iproute2 is missing from slim images). Making pairs is the stem cell's job
(runtimes/python/veth.py, standard library, inside the sandbox's own process).
"""

from __future__ import annotations

import os
import socket
import struct
from dataclasses import dataclass

NETLINK_ROUTE = 0
RTM_DELLINK, RTM_GETLINK = 17, 18
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_ACK, NLM_F_DUMP = 0x1, 0x4, 0x300
IFLA_IFNAME, IFLA_LINKINFO, IFLA_IFALIAS = 3, 18, 20
IFLA_INFO_KIND = 1
NLA_TYPE_MASK = 0x3FFF  # without the nested and byte-order flags

_HEADER = struct.Struct("=IHHII")  # nlmsghdr
_IFINFO = struct.Struct("=BxHiII")  # ifinfomsg: family, type, index, flags, change


@dataclass(frozen=True)
class Link:
    index: int
    name: str
    kind: str  # "veth", "bridge", ... ("" for a plain device)
    alias: str


def links() -> list[Link]:
    """Every link in this network namespace."""
    found: list[Link] = []
    with _socket() as s:
        body = _IFINFO.pack(0, 0, 0, 0, 0)
        _send(s, RTM_GETLINK, NLM_F_REQUEST | NLM_F_DUMP, body)
        while True:
            for kind, payload in _messages(s.recv(1 << 16)):
                if kind == NLMSG_DONE:
                    return found
                if kind == NLMSG_ERROR:
                    _raise(payload, "list links")
                index = _IFINFO.unpack_from(payload)[2]
                attrs = _attributes(payload[_IFINFO.size :])
                info = _attributes(attrs.get(IFLA_LINKINFO, b""))
                found.append(
                    Link(
                        index,
                        _text(attrs.get(IFLA_IFNAME, b"")),
                        _text(info.get(IFLA_INFO_KIND, b"")),
                        _text(attrs.get(IFLA_IFALIAS, b"")),
                    )
                )


def delete(index: int) -> None:
    """Delete the link ``index`` (a veth end takes its peer with it)."""
    with _socket() as s:
        body = _IFINFO.pack(0, 0, index, 0, 0)
        _send(s, RTM_DELLINK, NLM_F_REQUEST | NLM_F_ACK, body)
        for kind, payload in _messages(s.recv(1 << 16)):
            if kind == NLMSG_ERROR:
                _raise(payload, "delete link")


def _socket() -> socket.socket:
    s = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW | socket.SOCK_CLOEXEC, NETLINK_ROUTE)
    s.settimeout(5)
    return s


def _send(s: socket.socket, kind: int, flags: int, body: bytes) -> None:
    s.send(_HEADER.pack(_HEADER.size + len(body), kind, flags, 1, 0) + body)


def _raise(payload: bytes, what: str) -> None:
    code = -struct.unpack_from("=i", payload)[0]
    if code:
        raise OSError(code, f"rtnetlink {what}: {os.strerror(code)}")


def _messages(data: bytes) -> list[tuple[int, bytes]]:
    found = []
    offset = 0
    while offset + _HEADER.size <= len(data):
        size, kind, _, _, _ = _HEADER.unpack_from(data, offset)
        found.append((kind, data[offset + _HEADER.size : offset + size]))
        offset += (size + 3) & ~3
    return found


def _attributes(data: bytes) -> dict[int, bytes]:
    found = {}
    offset = 0
    while offset + 4 <= len(data):
        size, kind = struct.unpack_from("=HH", data, offset)
        if size < 4:
            break
        found[kind & NLA_TYPE_MASK] = data[offset + 4 : offset + size]
        offset += (size + 3) & ~3
    return found


def _text(raw: bytes) -> str:
    return raw.split(b"\0", 1)[0].decode(errors="replace")
