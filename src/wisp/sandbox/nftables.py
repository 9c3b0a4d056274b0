"""nf_tables over netlink: the egress rules without the ``nft`` binary.

``pip install`` brings Wisp but not nftables' command-line tool, and egress must not
depend on it (without a filter it fails closed). The kernel takes the same rules as
messages on a NETLINK_NETFILTER socket (linux/netfilter/nf_tables.h): a batch of
NEWTABLE, NEWSET, NEWCHAIN, NEWRULE and NEWSETELEM messages, applied all or nothing.
A rule is a list of expressions working on registers, the way ``nft --debug=netlink``
prints them: load a field (meta, payload, ct) into register 1, compare it or look it
up in a set, and end with a verdict (immediate), a reject or a masquerade.

Only what egress.py needs is here: IPv4 keys, register 1, the inet family.
"""

from __future__ import annotations

import contextlib
import errno
import ipaddress
import itertools
import os
import socket
import struct
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field

NETLINK_NETFILTER = 12
NFNL_SUBSYS_NFTABLES = 10
BATCH_BEGIN, BATCH_END = 0x10, 0x11
NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_REQUEST, NLM_F_MULTI, NLM_F_ACK = 0x1, 0x2, 0x4
NLM_F_DUMP, NLM_F_CREATE, NLM_F_APPEND = 0x300, 0x400, 0x800
NLA_F_NESTED = 0x8000
FAMILY_INET = 1  # NFPROTO_INET: one table for IPv4 and IPv6
NFPROTO_IPV4, NFPROTO_IPV6 = 2, 10

# enum nf_tables_msg_types
NEWTABLE, GETTABLE, DELTABLE, NEWCHAIN, NEWRULE, NEWSET, NEWSETELEM = 0, 1, 2, 3, 6, 9, 12
TABLE_NAME = 1
CHAIN_TABLE, CHAIN_NAME, CHAIN_HOOK, CHAIN_POLICY, CHAIN_TYPE = 1, 3, 4, 5, 7
HOOK_NUM, HOOK_PRIORITY = 1, 2
RULE_TABLE, RULE_CHAIN, RULE_EXPRESSIONS = 1, 2, 4
LIST_ELEM = 1
EXPR_NAME, EXPR_DATA = 1, 2
SET_TABLE, SET_NAME, SET_FLAGS, SET_KEY_TYPE, SET_KEY_LEN, SET_DESC, SET_ID = 1, 2, 3, 4, 5, 9, 10
SET_DESC_SIZE = 1
SET_INTERVAL, SET_EVAL = 0x4, 0x20
ELEMS_TABLE, ELEMS_SET, ELEMS_LIST = 1, 2, 3
ELEM_KEY, ELEM_FLAGS = 1, 3
ELEM_INTERVAL_END = 0x1
DATA_VALUE, DATA_VERDICT = 1, 2
VERDICT_CODE = 1
TYPE_IPADDR = 7  # nft's datatype number for ipv4_addr (how `nft list` prints keys)

# Hooks (NF_INET_*) and verdicts (NF_*).
HOOKS = {"input": 1, "forward": 2, "postrouting": 4}
ACCEPT, DROP = 1, 0
REG_VERDICT, REG_1 = 0, 1

# Expression attributes, per expression.
META_DREG, META_KEY = 1, 2
META_IIFNAME, META_OIFNAME, META_NFPROTO, META_L4PROTO = 6, 7, 15, 16
CMP_SREG, CMP_OP, CMP_DATA = 1, 2, 3
CMP_EQ, CMP_NEQ = 0, 1
PAYLOAD_DREG, PAYLOAD_BASE, PAYLOAD_OFFSET, PAYLOAD_LEN = 1, 2, 3, 4
NETWORK_HEADER, TRANSPORT_HEADER = 1, 2
LOOKUP_SET, LOOKUP_SREG, LOOKUP_SET_ID = 1, 2, 4
IMMEDIATE_DREG, IMMEDIATE_DATA = 1, 2
CT_DREG, CT_KEY = 1, 2
CT_STATE = 0
CT_ESTABLISHED, CT_RELATED, CT_NEW = 1 << 1, 1 << 2, 1 << 3
BITWISE_SREG, BITWISE_DREG, BITWISE_LEN, BITWISE_MASK, BITWISE_XOR = 1, 2, 3, 4, 5
REJECT_TYPE, REJECT_ICMP_CODE = 1, 2
REJECT_ICMP_UNREACH, ICMP_PORT_UNREACH = 0, 3
DYNSET_SET_NAME, DYNSET_SET_ID, DYNSET_OP, DYNSET_SREG_KEY, DYNSET_EXPR = 1, 2, 3, 4, 7
DYNSET_ADD = 0
CONNLIMIT_COUNT, CONNLIMIT_FLAGS = 1, 2
CONNLIMIT_OVER = 0x1  # NFT_CONNLIMIT_F_INV: match when the count is over


class NftablesError(OSError):
    """The kernel refused a message (its errno), or netfilter is not there."""


# -- attributes ----------------------------------------------------------------------


def attr(kind: int, payload: bytes = b"") -> bytes:
    size = 4 + len(payload)
    return struct.pack("=HH", size, kind) + payload + b"\0" * (-size % 4)


def nest(kind: int, *parts: bytes) -> bytes:
    return attr(kind | NLA_F_NESTED, b"".join(parts))


def u32(kind: int, value: int) -> bytes:
    return attr(kind, struct.pack(">i" if value < 0 else ">I", value))  # netfilter is big-endian


def text(kind: int, value: str) -> bytes:
    return attr(kind, value.encode() + b"\0")


def value(kind: int, data: bytes) -> bytes:
    return nest(kind, attr(DATA_VALUE, data))


# -- expressions (each one element of a rule's list) ----------------------------------


def expr(name: str, *data: bytes) -> bytes:
    inner = text(EXPR_NAME, name) + (nest(EXPR_DATA, *data) if data else b"")
    return nest(LIST_ELEM, inner)


def meta(key: int) -> bytes:
    return expr("meta", u32(META_DREG, REG_1), u32(META_KEY, key))


def cmp(data: bytes, op: int = CMP_EQ) -> bytes:
    return expr("cmp", u32(CMP_SREG, REG_1), u32(CMP_OP, op), value(CMP_DATA, data))


def payload(base: int, offset: int, length: int) -> bytes:
    return expr(
        "payload",
        u32(PAYLOAD_DREG, REG_1),
        u32(PAYLOAD_BASE, base),
        u32(PAYLOAD_OFFSET, offset),
        u32(PAYLOAD_LEN, length),
    )


def lookup(set_: Set) -> bytes:
    return expr(
        "lookup", text(LOOKUP_SET, set_.name), u32(LOOKUP_SREG, REG_1), u32(LOOKUP_SET_ID, set_.id)
    )


def verdict(code: int) -> bytes:
    data = nest(IMMEDIATE_DATA, nest(DATA_VERDICT, u32(VERDICT_CODE, code)))
    return expr("immediate", u32(IMMEDIATE_DREG, REG_VERDICT), data)


def reject() -> bytes:
    """ICMP port unreachable (what `nft` makes of a bare reject after an IPv4 match)."""
    return expr("reject", u32(REJECT_TYPE, REJECT_ICMP_UNREACH), attr(REJECT_ICMP_CODE, b"\3"))


def masquerade() -> bytes:
    return expr("masq")


def ct_state(bits: int) -> bytes:
    """ct state is any of ``bits`` (the state is a host-endian bit field)."""
    return b"".join(
        [
            expr("ct", u32(CT_DREG, REG_1), u32(CT_KEY, CT_STATE)),
            expr(
                "bitwise",
                u32(BITWISE_SREG, REG_1),
                u32(BITWISE_DREG, REG_1),
                u32(BITWISE_LEN, 4),
                value(BITWISE_MASK, struct.pack("=I", bits)),
                value(BITWISE_XOR, struct.pack("=I", 0)),
            ),
            cmp(struct.pack("=I", 0), CMP_NEQ),
        ]
    )


def count_over(set_: Set, flows: int) -> bytes:
    """Add the source address to ``set_`` with a connection count; match when that
    address has more than ``flows`` tracked connections (``ct count over``)."""
    limit = text(EXPR_NAME, "connlimit") + nest(
        EXPR_DATA, u32(CONNLIMIT_COUNT, flows), u32(CONNLIMIT_FLAGS, CONNLIMIT_OVER)
    )
    return expr(
        "dynset",
        text(DYNSET_SET_NAME, set_.name),
        u32(DYNSET_SET_ID, set_.id),
        u32(DYNSET_OP, DYNSET_ADD),
        u32(DYNSET_SREG_KEY, REG_1),
        nest(DYNSET_EXPR, limit),
    )


def ifname(prefix: str, op: int = CMP_EQ, out: bool = False) -> bytes:
    """iifname/oifname starts with ``prefix`` (a compare on its first bytes: "wv*")."""
    return meta(META_OIFNAME if out else META_IIFNAME) + cmp(prefix.encode(), op)


def ipv4() -> bytes:
    return meta(META_NFPROTO) + cmp(bytes([NFPROTO_IPV4]))


def ipv6() -> bytes:
    return meta(META_NFPROTO) + cmp(bytes([NFPROTO_IPV6]))


def saddr() -> bytes:
    return ipv4() + payload(NETWORK_HEADER, 12, 4)


def daddr() -> bytes:
    return ipv4() + payload(NETWORK_HEADER, 16, 4)


def l4proto(number: int) -> bytes:
    return meta(META_L4PROTO) + cmp(bytes([number]))


def dport(port: int) -> bytes:
    return payload(TRANSPORT_HEADER, 2, 2) + cmp(struct.pack(">H", port))


# -- the objects of a batch -----------------------------------------------------------

_ids = itertools.count(1)


@dataclass
class Set:
    """A named set of IPv4 addresses (``interval``: of ranges)."""

    name: str
    interval: bool = False
    dynamic: bool = False
    size: int = 0
    id: int = field(default_factory=lambda: next(_ids))


def intervals(networks: Iterable[str]) -> list[tuple[int, int]]:
    """Merged [first, last] address ranges of ``networks``: the kernel's interval set
    refuses overlapping ranges."""
    spans = sorted(
        (int(n.network_address), int(n.broadcast_address))
        for n in (ipaddress.IPv4Network(x) for x in networks)
    )
    merged: list[tuple[int, int]] = []
    for first, last in spans:
        if merged and first <= merged[-1][1] + 1:
            merged[-1] = (merged[-1][0], max(merged[-1][1], last))
        else:
            merged.append((first, last))
    return merged


def elements(set_: Set, addresses: Sequence[str]) -> list[bytes]:
    """The elements that put ``addresses`` (addresses, or networks in an interval set)
    in ``set_``: an interval is its first address and, flagged as an end, the address
    after its last (none when it runs to 255.255.255.255)."""
    found = []
    if not set_.interval:
        for address in addresses:
            key = ipaddress.IPv4Address(address).packed
            found.append(nest(LIST_ELEM, value(ELEM_KEY, key)))
        return found
    for first, last in intervals(addresses):
        found.append(nest(LIST_ELEM, value(ELEM_KEY, struct.pack(">I", first))))
        if last < 0xFFFFFFFF:
            end = value(ELEM_KEY, struct.pack(">I", last + 1))
            found.append(nest(LIST_ELEM, end + u32(ELEM_FLAGS, ELEM_INTERVAL_END)))
    return found


class Batch:
    """Messages for one table, sent together: the kernel applies all or none."""

    def __init__(self, table: str) -> None:
        self.table = table
        self.messages: list[tuple[int, int, bytes]] = []  # (type, flags, attributes)

    def add_table(self) -> None:
        self.messages.append((NEWTABLE, NLM_F_CREATE, text(TABLE_NAME, self.table)))

    def delete_table(self) -> None:
        self.messages.append((DELTABLE, 0, text(TABLE_NAME, self.table)))

    def add_set(self, set_: Set) -> None:
        flags = (SET_INTERVAL if set_.interval else 0) | (SET_EVAL if set_.dynamic else 0)
        body = [
            text(SET_TABLE, self.table),
            text(SET_NAME, set_.name),
            u32(SET_FLAGS, flags),
            u32(SET_KEY_TYPE, TYPE_IPADDR),
            u32(SET_KEY_LEN, 4),
            u32(SET_ID, set_.id),
        ]
        if set_.size:
            body.append(nest(SET_DESC, u32(SET_DESC_SIZE, set_.size)))
        self.messages.append((NEWSET, NLM_F_CREATE, b"".join(body)))

    def add_elements(self, set_: Set, addresses: Sequence[str]) -> None:
        if not addresses:
            return
        body = text(ELEMS_TABLE, self.table) + text(ELEMS_SET, set_.name)
        body += nest(ELEMS_LIST, *elements(set_, addresses))
        self.messages.append((NEWSETELEM, NLM_F_CREATE, body))

    def add_chain(self, name: str, kind: str, priority: int) -> None:
        """A base chain on the hook of its name, policy accept."""
        hook = nest(CHAIN_HOOK, u32(HOOK_NUM, HOOKS[name]), u32(HOOK_PRIORITY, priority))
        body = text(CHAIN_TABLE, self.table) + text(CHAIN_NAME, name) + hook
        body += u32(CHAIN_POLICY, ACCEPT) + text(CHAIN_TYPE, kind)
        self.messages.append((NEWCHAIN, NLM_F_CREATE, body))

    def add_rule(self, chain: str, *expressions: bytes) -> None:
        body = text(RULE_TABLE, self.table) + text(RULE_CHAIN, chain)
        body += nest(RULE_EXPRESSIONS, *expressions)
        self.messages.append((NEWRULE, NLM_F_CREATE | NLM_F_APPEND, body))

    def commit(self) -> None:
        """Send the batch; NftablesError (with the kernel's errno) if any is refused."""
        with _socket() as sock:
            seq = 1
            parts = [_message(BATCH_BEGIN, NLM_F_REQUEST, seq, family=0, res=NFNL_SUBSYS_NFTABLES)]
            for kind, flags, body in self.messages:
                seq += 1
                msg_type = (NFNL_SUBSYS_NFTABLES << 8) | kind
                parts.append(_message(msg_type, NLM_F_REQUEST | NLM_F_ACK | flags, seq, body))
            end = _message(BATCH_END, NLM_F_REQUEST, seq + 1, family=0, res=NFNL_SUBSYS_NFTABLES)
            parts.append(end)
            sock.sendall(b"".join(parts))
            waiting = set(range(2, seq + 1))
            while waiting:
                for msg_type, number, data in _receive(sock):
                    if msg_type != NLMSG_ERROR:
                        continue
                    code = -struct.unpack_from("=i", data)[0]
                    if code:
                        index = number - 2  # the batch's own begin is number 1
                        kind = self.messages[index][0] if 0 <= index < len(self.messages) else -1
                        what = _NAMES.get(kind, "batch")
                        raise NftablesError(code, f"nf_tables {what}: {os.strerror(code)}")
                    waiting.discard(number)


_NAMES = {
    NEWTABLE: "new table",
    DELTABLE: "delete table",
    NEWCHAIN: "new chain",
    NEWRULE: "new rule",
    NEWSET: "new set",
    NEWSETELEM: "new set elements",
}


def tables() -> list[str]:
    """The names of the inet tables on this host."""
    names: list[str] = []
    with _socket() as sock:
        msg_type = (NFNL_SUBSYS_NFTABLES << 8) | GETTABLE
        sock.sendall(_message(msg_type, NLM_F_REQUEST | NLM_F_DUMP, 1))
        while True:
            for kind, _, data in _receive(sock):
                if kind == NLMSG_DONE:
                    return names
                if kind == NLMSG_ERROR:
                    code = -struct.unpack_from("=i", data)[0]
                    raise NftablesError(code, f"nf_tables list tables: {os.strerror(code)}")
                attrs = _attributes(data[4:])  # past struct nfgenmsg
                if TABLE_NAME in attrs:
                    names.append(attrs[TABLE_NAME].rstrip(b"\0").decode())


def delete_table(name: str) -> None:
    """Delete the inet table ``name`` with everything in it; absent is fine."""
    batch = Batch(name)
    batch.delete_table()
    try:
        batch.commit()
    except NftablesError as exc:
        if exc.errno != errno.ENOENT:
            raise


def available() -> bool:
    """Whether this kernel answers nf_tables requests (and we may make them)."""
    try:
        tables()
    except OSError:
        return False
    return True


# -- netlink --------------------------------------------------------------------------


@contextlib.contextmanager
def _socket() -> Iterator[socket.socket]:
    try:
        sock = socket.socket(socket.AF_NETLINK, socket.SOCK_RAW, NETLINK_NETFILTER)
    except OSError as exc:
        raise NftablesError(exc.errno, f"no netfilter netlink socket: {exc.strerror}") from None
    try:
        sock.settimeout(5)
        sock.bind((0, 0))
        yield sock
    finally:
        sock.close()


def _message(
    msg_type: int, flags: int, seq: int, body: bytes = b"", family: int = FAMILY_INET, res: int = 0
) -> bytes:
    nfgen = struct.pack("=BBH", family, 0, socket.htons(res))
    return struct.pack("=IHHII", 16 + 4 + len(body), msg_type, flags, seq, 0) + nfgen + body


def _receive(sock: socket.socket) -> list[tuple[int, int, bytes]]:
    """One read: its messages as (type, sequence number, payload)."""
    data = sock.recv(1 << 16)
    found = []
    offset = 0
    while offset + 16 <= len(data):
        length, msg_type, _, seq, _ = struct.unpack_from("=IHHII", data, offset)
        found.append((msg_type, seq, data[offset + 16 : offset + length]))
        offset += (length + 3) & ~3
    return found


def _attributes(data: bytes) -> dict[int, bytes]:
    found = {}
    offset = 0
    while offset + 4 <= len(data):
        length, kind = struct.unpack_from("=HH", data, offset)
        if length < 4:
            break
        found[kind & ~NLA_F_NESTED] = data[offset + 4 : offset + length]
        offset += (length + 3) & ~3
    return found
