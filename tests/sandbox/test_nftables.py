"""nf_tables over netlink: the encoding, and the kernel's answers (root)."""

from __future__ import annotations

import errno
import os
import struct
import subprocess

import pytest

from wisp.sandbox import nftables
from wisp.sandbox.nftables import Batch, NftablesError, Set

ROOT = os.geteuid() == 0


def test_attributes_are_padded_to_four_bytes() -> None:
    assert nftables.attr(1, b"abc") == struct.pack("=HH", 7, 1) + b"abc\0"
    assert nftables.u32(2, 53) == struct.pack("=HH", 8, 2) + b"\0\0\0\x35"  # big-endian
    nested = nftables.nest(3, nftables.attr(1))
    assert struct.unpack_from("=HH", nested) == (8, 3 | nftables.NLA_F_NESTED)


def test_ranges_are_merged_before_they_become_intervals() -> None:
    merged = nftables.intervals(["10.0.0.0/8", "10.1.0.0/16", "11.0.0.0/8", "224.0.0.0/4"])
    assert merged == [(0x0A000000, 0x0BFFFFFF), (0xE0000000, 0xEFFFFFFF)]
    # One that runs to 255.255.255.255 has a start and no end element.
    top = nftables.elements(Set("s", interval=True), ["240.0.0.0/4"])
    assert len(top) == 1
    both = nftables.elements(Set("s", interval=True), ["10.0.0.0/8"])
    assert len(both) == 2 and struct.pack(">I", 0x0B000000) in both[1]


@pytest.mark.skipif(not ROOT, reason="nf_tables needs root")
def test_a_refused_message_is_named_and_the_batch_applies_nothing() -> None:
    table = f"wisp_nl_test_{os.getpid()}"
    batch = Batch(table)
    batch.add_table()
    batch.add_rule("nochain", nftables.verdict(nftables.ACCEPT))
    with pytest.raises(NftablesError, match="nf_tables new rule: No such file") as refused:
        batch.commit()
    assert refused.value.errno == errno.ENOENT
    assert table not in nftables.tables()  # all or nothing: not even the table
    nftables.delete_table(table)  # absent: fine


@pytest.mark.skipif(not ROOT, reason="nf_tables needs root")
def test_tables_are_listed_and_deleted() -> None:
    table = f"wisp_nl_test_{os.getpid()}"
    batch = Batch(table)
    batch.add_table()
    batch.add_set(Set("mine", interval=True))
    batch.commit()
    try:
        assert table in nftables.tables()
        more = Batch(table)
        more.add_elements(Set("mine", interval=True), ["10.203.0.0/22"])
        more.commit()
        listed = subprocess.run(
            ["nft", "list", "set", "inet", table, "mine"], capture_output=True, text=True
        )
        assert "elements = { 10.203.0.0/22 }" in listed.stdout
    finally:
        nftables.delete_table(table)
    assert table not in nftables.tables()
