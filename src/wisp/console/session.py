"""Console sessions: a signed, HTTP-only cookie naming the namespace and its key.

The cookie holds the namespace's uuid and a digest of its key hash, never the key:
each request checks them against the store, so a revoked or rotated key ends the
session. It is signed (HMAC-SHA256) with the console secret, expires after
``LIFETIME``, and carries the session's CSRF token, which every form posts back.
It is ``Secure`` (browsers keep such cookies for https and for localhost only),
``HttpOnly`` and ``SameSite=Strict``.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import secrets
import time
from dataclasses import dataclass
from pathlib import Path

from starlette.responses import Response

COOKIE = "wisp_session"
LOGIN_COOKIE = "wisp_login"  # the CSRF token of the sign-in form, before a session exists
PATH = "/ui"
LIFETIME = 12 * 3600  # seconds


@dataclass
class Session:
    namespace: str
    uuid: str
    key_digest: str
    csrf: str
    expires: int


def key_digest(key_hash: str) -> str:
    return hashlib.sha256(b"wisp-console:" + key_hash.encode()).hexdigest()[:32]


def load_secret(configured: str, data_dir: Path) -> bytes:
    """The signing secret: configured (several replicas share it), else kept in the data
    dir (sessions survive restarts), else random for this process."""
    if configured:
        return configured.encode()
    path = data_dir / "console.secret"
    if data_dir.is_dir():
        try:
            if not path.exists():
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
                with os.fdopen(fd, "w") as out:
                    out.write(secrets.token_hex(32))
            return path.read_text().strip().encode()
        except OSError:
            pass
    return secrets.token_bytes(32)


class Signer:
    def __init__(self, secret: bytes) -> None:
        self.secret = secret

    def _mac(self, payload: bytes) -> str:
        return hmac.new(self.secret, payload, hashlib.sha256).hexdigest()

    def dumps(self, session: Session) -> str:
        doc = {
            "ns": session.namespace,
            "uuid": session.uuid,
            "kd": session.key_digest,
            "csrf": session.csrf,
            "exp": session.expires,
        }
        payload = base64.urlsafe_b64encode(json.dumps(doc, separators=(",", ":")).encode())
        return payload.decode() + "." + self._mac(payload)

    def loads(self, value: str | None) -> Session | None:
        if not value or "." not in value:
            return None
        payload, _, mac = value.rpartition(".")
        if not payload.isascii() or not same_token(mac, self._mac(payload.encode())):
            return None
        try:
            doc = json.loads(base64.urlsafe_b64decode(payload.encode()))
            session = Session(doc["ns"], doc["uuid"], doc["kd"], doc["csrf"], int(doc["exp"]))
        except (ValueError, KeyError, TypeError):
            return None
        return session if session.expires > time.time() else None


def new_session(namespace: str, uuid: str, key_hash: str) -> Session:
    expires = int(time.time()) + LIFETIME
    return Session(namespace, uuid, key_digest(key_hash), secrets.token_urlsafe(24), expires)


def set_cookie(response: Response, name: str, value: str, max_age: int = LIFETIME) -> None:
    response.set_cookie(
        name, value, max_age=max_age, path=PATH, secure=True, httponly=True, samesite="strict"
    )


def clear_cookie(response: Response, name: str) -> None:
    response.delete_cookie(name, path=PATH, secure=True, httponly=True, samesite="strict")


def same_token(a: str | None, b: str | None) -> bool:
    # Compared as bytes: compare_digest raises on a str that is not ASCII, and a
    # cookie or form field is whatever the client sent.
    if not a or not b:
        return False
    return hmac.compare_digest(_raw(a), _raw(b))


def _raw(text: str) -> bytes:
    return text.encode("utf-8", "surrogatepass")
