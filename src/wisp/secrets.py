"""Secrets encrypted at rest: envelope encryption with AES-256-GCM.

A master key (a file in the data dir, ``WISP_MASTER_KEY_FILE``, or ``WISP_MASTER_KEY``)
wraps one data key per namespace; the data key encrypts values. Only wrapped data keys
and ciphertexts reach the store, so rotating the master key re-wraps the data keys
without touching a value. Each ciphertext is bound by AES-GCM associated data to its
namespace, entity and name: copied to another name it fails authentication instead of
decrypting.
"""

from __future__ import annotations

import base64
import binascii
import os
import re
import threading
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from wisp.errors import BadRequest, NotFound, SecretUnreadable
from wisp.models import Activation, StoredSecret
from wisp.store.base import Store

KEY_BYTES = 32  # AES-256
NONCE_BYTES = 12
VALUE_PREFIX = "wisp:v1:"  # the version lets a later format be told apart
WRAP_PREFIX = "wk:v1:"
MASK = "***"
SECRET_ENTITY = "secret"  # the entity of a namespace's named secrets
MASTER_KEY_FILE = "master.key"
NAME_RE = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.\-]{0,255}")


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


def _unb64(text: str, what: str) -> bytes:
    try:
        return base64.b64decode(text.encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise SecretUnreadable(f"{what}: not valid base64") from None


def parse_master_key(text: str, where: str) -> bytes:
    """A master key is 32 bytes written as base64 (44 characters)."""
    try:
        key = base64.b64decode(text.strip().encode("ascii"), validate=True)
    except (binascii.Error, UnicodeEncodeError):
        raise ValueError(f"{where}: the master key is not base64") from None
    if len(key) != KEY_BYTES:
        raise ValueError(f"{where}: the master key must be {KEY_BYTES} bytes, got {len(key)}")
    return key


def new_key_text() -> str:
    return _b64(AESGCM.generate_key(bit_length=256))


def load_master_key(data_dir: Path, key_file: str = "", key_text: str = "") -> bytes:
    """The master key from ``key_text`` (WISP_MASTER_KEY), else ``key_file``, else
    ``data_dir/master.key``, which is created (mode 0600) when missing."""
    if key_text:
        return parse_master_key(key_text, "WISP_MASTER_KEY")
    path = Path(key_file) if key_file else data_dir / MASTER_KEY_FILE
    if key_file and not path.exists():
        # An operator-named file that is missing is a mistake, not a first start.
        raise ValueError(f"WISP_MASTER_KEY_FILE={key_file}: no such file")
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:
            pass  # another process created it first: read theirs
        else:
            with os.fdopen(fd, "w") as out:
                out.write(new_key_text() + "\n")
    return parse_master_key(path.read_text(), str(path))


def write_master_key(path: Path, key: bytes) -> None:
    """Replace the key file atomically, 0600 from the start."""
    tmp = path.with_name(path.name + ".new")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(_b64(key) + "\n")
    os.replace(tmp, path)


def _wrap_aad(namespace: str) -> bytes:
    return b"wisp-data-key\0" + namespace.encode()


def wrap_data_key(master: bytes, namespace: str, data_key: bytes) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(master).encrypt(nonce, data_key, _wrap_aad(namespace))
    return WRAP_PREFIX + _b64(nonce + sealed)


def unwrap_data_key(master: bytes, namespace: str, wrapped: str) -> bytes:
    what = f"the data key of namespace {namespace}"
    if not wrapped.startswith(WRAP_PREFIX):
        raise SecretUnreadable(f"{what}: unknown format")
    raw = _unb64(wrapped[len(WRAP_PREFIX) :], what)
    try:
        return AESGCM(master).decrypt(raw[:NONCE_BYTES], raw[NONCE_BYTES:], _wrap_aad(namespace))
    except (InvalidTag, ValueError):
        raise SecretUnreadable(f"{what}: does not unwrap with this master key") from None


def new_data_key() -> bytes:
    return AESGCM.generate_key(bit_length=256)


def _value_aad(namespace: str, entity: str, name: str) -> bytes:
    return b"\0".join((b"wisp-secret", namespace.encode(), entity.encode(), name.encode()))


def encrypt_value(data_key: bytes, namespace: str, entity: str, name: str, value: str) -> str:
    nonce = os.urandom(NONCE_BYTES)
    sealed = AESGCM(data_key).encrypt(nonce, value.encode(), _value_aad(namespace, entity, name))
    return VALUE_PREFIX + _b64(nonce + sealed)


def decrypt_value(data_key: bytes, namespace: str, entity: str, name: str, text: str) -> str:
    what = f"secret {name!r}"
    if not text.startswith(VALUE_PREFIX):
        raise SecretUnreadable(f"{what}: unknown ciphertext format")
    raw = _unb64(text[len(VALUE_PREFIX) :], what)
    try:
        plain = AESGCM(data_key).decrypt(
            raw[:NONCE_BYTES], raw[NONCE_BYTES:], _value_aad(namespace, entity, name)
        )
    except (InvalidTag, ValueError):
        raise SecretUnreadable(
            f"{what}: the ciphertext fails authentication (tampered, or not written for "
            "this name); refusing to run with it"
        ) from None
    return plain.decode()


def secret_reference(value: Any) -> str | None:
    """The name in ``{"$secret": "name"}``, or None when ``value`` is not a reference."""
    if isinstance(value, dict) and set(value) == {"$secret"}:
        name = value["$secret"]
        if not isinstance(name, str) or not name:
            raise BadRequest('{"$secret": ...} must name a secret (a non-empty string)')
        return name
    return None


def references(pairs: Iterable[dict[str, Any]]) -> list[str]:
    """Secret names referenced by a key/value list (parameters or environment)."""
    names = []
    for pair in pairs:
        name = secret_reference(pair.get("value"))
        if name is not None:
            names.append(name)
    return names


def mask(text: str, values: Iterable[str]) -> str:
    """``text`` with every exact secret value replaced by ``***``; longest first, so a
    value containing another is masked whole."""
    for value in sorted({v for v in values if v}, key=len, reverse=True):
        text = text.replace(value, MASK)
    return text


def mask_json(data: Any, values: list[str]) -> Any:
    if isinstance(data, str):
        return mask(data, values)
    if isinstance(data, list):
        return [mask_json(item, values) for item in data]
    if isinstance(data, dict):
        return {mask(str(k), values): mask_json(v, values) for k, v in data.items()}
    return data


class Vault:
    """Named secrets of every namespace, over a store and the master key."""

    def __init__(self, store: Store, master: bytes) -> None:
        self.store = store
        self._master = master
        self._keys: dict[str, bytes] = {}  # unwrapped data keys, per namespace
        self._lock = threading.Lock()

    def _data_key(self, namespace: str) -> bytes:
        with self._lock:
            key = self._keys.get(namespace)
        if key is None:
            fresh = wrap_data_key(self._master, namespace, new_data_key())
            wrapped = self.store.ensure_data_key(namespace, fresh)
            key = unwrap_data_key(self._master, namespace, wrapped)
            with self._lock:
                self._keys[namespace] = key
        return key

    def set(self, namespace: str, name: str, value: str, now: int) -> StoredSecret:
        check_name(name)
        text = encrypt_value(self._data_key(namespace), namespace, SECRET_ENTITY, name, value)
        secret = StoredSecret(namespace, name, text, len(value.encode()), now)
        self.store.put_secret(secret)
        return secret

    def reveal(self, namespace: str, name: str) -> str:
        """The plaintext; NotFound when missing, SecretUnreadable when it fails
        authentication (never a wrong value)."""
        secret = self.store.get_secret(namespace, name)
        if secret is None:
            raise NotFound(f"secret {name!r} does not exist in namespace {namespace}")
        key = self._data_key(namespace)
        return decrypt_value(key, namespace, SECRET_ENTITY, name, secret.ciphertext)

    def missing(self, namespace: str, names: Iterable[str]) -> list[str]:
        return sorted({n for n in names if self.store.get_secret(namespace, n) is None})

    def rotate(self, new_master: bytes) -> int:
        """Re-wrap every data key with ``new_master`` (values stay as they are), in one
        store transaction; return how many keys were re-wrapped."""
        rewrapped = {
            namespace: wrap_data_key(
                new_master, namespace, unwrap_data_key(self._master, namespace, wrapped)
            )
            for namespace, wrapped in self.store.data_keys().items()
        }
        self.store.replace_data_keys(rewrapped)
        self._master = new_master
        with self._lock:
            self._keys.clear()
        return len(rewrapped)


def check_name(name: str) -> None:
    if not NAME_RE.fullmatch(name):
        raise BadRequest(
            f"secret name {name!r}: use 1 to 256 letters, digits, '_', '-' or '.', "
            "starting with a letter or digit"
        )


@dataclass
class Revealed:
    """One attempt's decrypted inputs: never journaled or stored, only handed to the
    instance; ``mask`` takes their values out of the attempt's record."""

    env: dict[str, str]
    args: dict[str, Any]
    values: list[str] = field(default_factory=list)

    def mask(self, record: Activation) -> Activation:
        if self.values:
            record.logs = [mask(line, self.values) for line in record.logs]
            record.result = mask_json(record.result, self.values)
        return record


def reveal(
    vault: Vault | None,
    namespace: str,
    parameters: dict[str, Any],
    env_secrets: dict[str, str],
    env: dict[str, str],
    args: dict[str, Any],
) -> Revealed:
    """Replace the secret references bound by the function or its package (never ones
    an invoker passed in its body: those stay as sent) with their plaintexts."""
    # The common case: no secret referenced, nothing to copy.
    refs = {
        key: name
        for key, value in parameters.items()
        if (name := secret_reference(value)) is not None and args.get(key) == value
    }
    if not refs and not env_secrets:
        return Revealed(env, args)
    if vault is None:
        raise SecretUnreadable("this function references secrets, but no vault is configured")
    values: list[str] = []
    out_args = dict(args)
    out_env = dict(env)
    for key, name in refs.items():
        out_args[key] = vault.reveal(namespace, name)
        values.append(out_args[key])
    for key, name in env_secrets.items():
        out_env[key] = vault.reveal(namespace, name)
        values.append(out_env[key])
    return Revealed(out_env, out_args, values)
