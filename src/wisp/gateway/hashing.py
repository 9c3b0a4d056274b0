"""Hashing the secrets routes hold: Basic passwords (slow, salted) and API keys.

Passwords are chosen by people, so they get PBKDF2 with a salt; API keys are long
random strings, for which one SHA-256 is enough (and lets a key be found by hash).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets

PBKDF2_ITERATIONS = 60_000
_SCHEME = "pbkdf2-sha256"


def hash_password(password: str, iterations: int = PBKDF2_ITERATIONS) -> str:
    salt = secrets.token_bytes(16)
    digest = hashlib.pbkdf2_hmac("sha256", password.encode(), salt, iterations)
    return "$".join((_SCHEME, str(iterations), _b64(salt), _b64(digest)))


def verify_password(password: str, stored: str) -> bool:
    try:
        scheme, rounds, salt, digest = stored.split("$")
        iterations = int(rounds)
        expected = base64.b64decode(digest)
        salt_bytes = base64.b64decode(salt)
    except ValueError:
        return False
    if scheme != _SCHEME:
        return False
    actual = hashlib.pbkdf2_hmac("sha256", password.encode(), salt_bytes, iterations)
    return hmac.compare_digest(actual, expected)


def hash_api_key(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def new_api_key() -> str:
    return secrets.token_urlsafe(32)


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode()
