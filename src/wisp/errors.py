"""Wisp's exception hierarchy; the API maps it to HTTP statuses in one place.

    WispError
    ├── BadRequest            400  malformed body, bad field, value out of range
    │   ├── UnknownKind       400  exec.kind not served by this platform
    │   └── UnsupportedFields 400  fields Wisp would not act on (never dropped silently)
    ├── Unauthorized          401  missing or wrong credentials
    ├── Forbidden             403  authenticated, but not allowed
    ├── NotFound              404  entity or activation does not exist
    ├── Conflict              409  entity exists and overwrite was not asked for
    │   └── VersionTaken      409  a concurrent update stored that version first
    ├── PayloadTooLarge       413  parameters / code over the limit
    ├── Unprocessable         422  well-formed, but contradicts earlier state (an
    │                              Idempotency-Key reused with another body)
    ├── TooManyRequests       429  namespace quota exceeded
    ├── PlatformError         500  Wisp itself failed (never user code)
    │   ├── SecretUnreadable  500  a stored secret fails authentication (fails closed)
    │   └── StoreUnavailable  503  the database cannot be reached (the writer retries)
    └── Unavailable           503  Wisp cannot take work now (writer backlog full, journal
                                   unwritable)

User code failing is *not* an exception: it is data in an activation record.
"""

from __future__ import annotations


class WispError(Exception):
    status = 500
    code = "internal"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadRequest(WispError):
    status = 400
    code = "bad_request"


class UnknownKind(BadRequest):
    code = "unknown_kind"


class UnsupportedFields(BadRequest):
    """Fields a body may not carry because Wisp would not act on them; each is named."""

    code = "unsupported_field"

    def __init__(self, fields: list[str], hint: str) -> None:
        names = ", ".join(fields)
        verb = "is" if len(fields) == 1 else "are"
        super().__init__(f"{names} {verb} not supported by Wisp: {hint}")
        self.fields = fields


class Unauthorized(WispError):
    status = 401
    code = "unauthorized"


class Forbidden(WispError):
    status = 403
    code = "forbidden"


class NotFound(WispError):
    status = 404
    code = "not_found"


class Conflict(WispError):
    status = 409
    code = "conflict"


class VersionTaken(Conflict):
    """Versions are immutable: another write stored this version with other content."""

    code = "version_taken"


class PayloadTooLarge(WispError):
    status = 413
    code = "payload_too_large"


class Unprocessable(WispError):
    status = 422
    code = "unprocessable"


class TooManyRequests(WispError):
    status = 429
    code = "too_many_requests"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class PlatformError(WispError):
    status = 500
    code = "internal"


class SecretUnreadable(PlatformError):
    """A secret's ciphertext or its namespace's data key fails authentication
    (tampered, or the wrong master key): fail closed, never run with a wrong value."""

    code = "secret_unreadable"


class StoreUnavailable(PlatformError):
    """The database is down or unreachable: worth retrying, not a bug. Callers get a
    generic message; ``str(exc)`` has the driver's detail, for the log."""

    status = 503
    code = "unavailable"
    retry_after = 5

    def __init__(self, detail: str) -> None:
        super().__init__("The database is unavailable. Try again later.")
        self.args = (detail,)


class Unavailable(WispError):
    """Nothing was accepted; the same request may succeed after ``retry_after`` seconds."""

    status = 503
    code = "unavailable"

    def __init__(self, message: str, retry_after: int = 1) -> None:
        super().__init__(message)
        self.retry_after = retry_after


ACTIVATION_NOT_FOUND = (
    "The requested activation record does not exist. This either means that the invocation "
    "is still running and the record is not yet created or the activation's retention period "
    "has already expired."
)
