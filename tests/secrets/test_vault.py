"""Envelope encryption: binding, tamper detection, rotation, master key files."""

from __future__ import annotations

import base64
import stat
from pathlib import Path

import pytest

from wisp import secrets
from wisp.errors import BadRequest, NotFound, SecretUnreadable
from wisp.models import StoredSecret
from wisp.store.memory import MemoryStore


def vault() -> secrets.Vault:
    return secrets.Vault(MemoryStore(), base64.b64decode(secrets.new_key_text()))


def test_set_stores_only_ciphertext_and_reveals_plaintext() -> None:
    v = vault()
    stored = v.set("guest", "db", "hunter2-ünï", now=1)
    assert "hunter2" not in stored.ciphertext and stored.ciphertext.startswith("wisp:v1:")
    assert stored.size == len("hunter2-ünï".encode())
    assert v.reveal("guest", "db") == "hunter2-ünï"
    assert all("hunter2" not in w for w in v.store.data_keys().values())


def test_flipped_byte_fails_closed_naming_the_secret() -> None:
    v = vault()
    stored = v.set("guest", "db", "hunter2", now=1)
    raw = bytearray(base64.b64decode(stored.ciphertext[len("wisp:v1:") :]))
    raw[-3] ^= 0x01
    bad = "wisp:v1:" + base64.b64encode(bytes(raw)).decode()
    v.store.put_secret(StoredSecret("guest", "db", bad, 7, 2))
    with pytest.raises(SecretUnreadable, match="'db'"):
        v.reveal("guest", "db")


def test_ciphertext_copied_to_another_name_or_namespace_does_not_decrypt() -> None:
    v = vault()
    stored = v.set("guest", "db", "hunter2", now=1)
    v.store.put_secret(StoredSecret("guest", "other", stored.ciphertext, 7, 2))
    with pytest.raises(SecretUnreadable, match="'other'"):
        v.reveal("guest", "other")
    # Another namespace has another data key, and the namespace is bound too.
    v.set("team", "x", "y", now=1)
    v.store.put_secret(StoredSecret("team", "db", stored.ciphertext, 7, 2))
    with pytest.raises(SecretUnreadable):
        v.reveal("team", "db")


def test_rotation_rewraps_keys_and_keeps_every_secret_readable() -> None:
    v = vault()
    for ns in ("guest", "team"):
        for i in range(3):
            v.set(ns, f"s{i}", f"{ns}-value-{i}", now=1)
    before_values = {(s.namespace, s.name): s.ciphertext for s in v.store.list_secrets("guest")}
    before_keys = v.store.data_keys()
    new = base64.b64decode(secrets.new_key_text())
    assert v.rotate(new) == 2
    assert v.store.data_keys().keys() == before_keys.keys()
    assert all(v.store.data_keys()[ns] != before_keys[ns] for ns in before_keys)
    after_values = {(s.namespace, s.name): s.ciphertext for s in v.store.list_secrets("guest")}
    assert after_values == before_values  # values were not re-encrypted
    fresh = secrets.Vault(v.store, new)  # a restarted server with only the new key
    for ns in ("guest", "team"):
        for i in range(3):
            assert fresh.reveal(ns, f"s{i}") == f"{ns}-value-{i}"
    old = secrets.Vault(v.store, base64.b64decode(secrets.new_key_text()))
    with pytest.raises(SecretUnreadable, match="master key"):
        old.reveal("guest", "s0")


def test_missing_and_bad_names() -> None:
    v = vault()
    with pytest.raises(NotFound, match="'nope'"):
        v.reveal("guest", "nope")
    with pytest.raises(BadRequest, match="secret name"):
        v.set("guest", "a b", "x", now=1)
    v.set("guest", "here", "x", now=1)
    assert v.missing("guest", ["here", "gone", "gone"]) == ["gone"]


def test_master_key_file_created_0600_once(tmp_path: Path) -> None:
    key = secrets.load_master_key(tmp_path)
    path = tmp_path / "master.key"
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert secrets.load_master_key(tmp_path) == key and len(key) == 32


def test_master_key_from_env_or_named_file(tmp_path: Path) -> None:
    text = secrets.new_key_text()
    assert secrets.load_master_key(tmp_path, key_text=text) == base64.b64decode(text)
    assert not (tmp_path / "master.key").exists()
    with pytest.raises(ValueError, match="WISP_MASTER_KEY_FILE"):
        secrets.load_master_key(tmp_path, key_file=str(tmp_path / "missing"))
    with pytest.raises(ValueError, match="32 bytes"):
        secrets.load_master_key(tmp_path, key_text=base64.b64encode(b"short").decode())


def test_mask_replaces_exact_values_longest_first() -> None:
    values = ["abc", "abcdef"]
    assert secrets.mask("x abcdef y abc", values) == "x *** y ***"
    assert secrets.mask_json({"k": ["abc!", 3]}, values) == {"k": ["***!", 3]}
