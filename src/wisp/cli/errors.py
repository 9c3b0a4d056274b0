"""The one exception the CLI shows to users: a one-line ``Error: ...`` and exit 1."""

from __future__ import annotations


class CliError(Exception):
    exit_code = 1

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class ApiError(CliError):
    """The server answered with an error status; ``message`` is its ``error`` text."""

    def __init__(self, status: int, message: str, code: str = "") -> None:
        super().__init__(message)
        self.status = status
        self.code = code


def error_line(message: str) -> str:
    """Collapse a message to the one line the CLI promises on failure."""
    return " ".join(message.split()) or "unknown error"
