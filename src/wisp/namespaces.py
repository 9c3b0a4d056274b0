"""Namespaces (tenants): creation with fresh credentials, and authentication.

A namespace's API key is ``uuid:key``. Only the sha256 of the key is stored, so a
leaked database does not leak working credentials.
"""

from __future__ import annotations

import hmac
import re
import time

from wisp.errors import BadRequest, NotFound
from wisp.ids import hash_key, new_credentials
from wisp.models import Namespace
from wisp.store.base import Store

_NAME = re.compile(r"[A-Za-z0-9_.@-]{1,256}")


def validate_namespace_name(name: str) -> str:
    """Return ``name`` or raise BadRequest saying what a name may hold."""
    # "_" is how every path spells "the caller's namespace", so it cannot be a real one.
    if not _NAME.fullmatch(name) or name == "_":
        raise BadRequest(
            f"invalid namespace name {name!r}: use 1-256 letters, digits, '_', '-', '.' or '@'"
            " (and not '_' alone)"
        )
    return name


def create_namespace(store: Store, name: str) -> tuple[Namespace, str]:
    """Create ``name`` with new credentials; return it and its auth string ``uuid:key``.

    Raises BadRequest for an invalid name and Conflict when it exists.
    """
    validate_namespace_name(name)
    uuid, key = new_credentials()
    namespace = Namespace(
        name=name, uuid=uuid, key_hash=hash_key(key), created=time.time_ns() // 1_000_000
    )
    store.create_namespace(namespace)
    return namespace, f"{uuid}:{key}"


def issue_key(store: Store, name: str) -> str:
    """A new key for namespace ``name``, replacing its old one (only hashes are stored,
    so a lost key cannot be read back); returns the auth string ``uuid:key``."""
    namespace = store.get_namespace(name)
    if namespace is None:
        raise NotFound(f"namespace {name!r} does not exist")
    _, key = new_credentials()
    store.set_namespace_key(name, hash_key(key))
    return f"{namespace.uuid}:{key}"


def authenticate(store: Store, auth: str) -> Namespace | None:
    """The namespace whose credentials are ``auth`` (``uuid:key``), or None."""
    uuid, sep, key = auth.partition(":")
    if not sep or not uuid or not key:
        return None
    namespace = store.namespace_by_uuid(uuid)
    if namespace is None:
        return None
    # Constant-time, so response timing does not reveal how much of a guess was right.
    if not hmac.compare_digest(hash_key(key), namespace.key_hash):
        return None
    return namespace
