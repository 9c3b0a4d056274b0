"""How the CLI's requests reach the server: one kept-alive HTTP connection, or a function.

The CLI talks to one host, one request at a time, so the standard library's
``http.client`` is all it needs; httpx (with httpcore, anyio and, where installed,
trio behind it) took ~200 ms of every command's start-up. :class:`MockTransport`
answers from a function, in memory, for tests.

Exceptions (:class:`TransportError` and below) say what failed at the connection
level; :class:`~wisp.cli.client.WispClient` turns them into one-line ``CliError`` s::

    TransportError
     ├── ConnectError   (nothing listening, unknown host, TLS handshake failed)
     └── Timeout        (no answer within the timeout)
"""

from __future__ import annotations

import base64
import json as jsonlib
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException, HTTPSConnection, responses
from typing import Any
from urllib.parse import parse_qsl, urlsplit


class TransportError(Exception):
    pass


class ConnectError(TransportError):
    pass


class Timeout(TransportError):
    pass


@dataclass(frozen=True)
class Request:
    method: str
    target: str  # path and query string, e.g. "/api/v1/namespaces?limit=1"
    headers: Mapping[str, str] = field(default_factory=dict)
    content: bytes = b""

    @property
    def path(self) -> str:
        return urlsplit(self.target).path

    @property
    def params(self) -> dict[str, str]:
        return dict(parse_qsl(urlsplit(self.target).query, keep_blank_values=True))

    def json(self) -> Any:
        return jsonlib.loads(self.content)


@dataclass
class Response:
    status_code: int
    content: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)
    request: Request = field(default_factory=lambda: Request("GET", "/"))

    @classmethod
    def of(cls, status_code: int, json: Any = None, text: str = "") -> Response:
        """A response with a JSON body (if ``json`` is given) or a text body."""
        if json is not None:
            body = jsonlib.dumps(json).encode()
            return cls(status_code, body, {"content-type": "application/json"})
        return cls(status_code, text.encode(), {"content-type": "text/plain; charset=utf-8"})

    @property
    def text(self) -> str:
        return self.content.decode("utf-8", errors="replace")

    @property
    def reason_phrase(self) -> str:
        return responses.get(self.status_code, "")

    def json(self) -> Any:
        """The body parsed as JSON; ``ValueError`` if it is not JSON."""
        return jsonlib.loads(self.content)


class Transport:
    """Sends one request and returns its response; the base of both implementations."""

    def handle(self, request: Request, timeout: float) -> Response:
        raise NotImplementedError

    def close(self) -> None:
        pass


class MockTransport(Transport):
    """Answers every request with ``handler(request)``: no network, for tests."""

    def __init__(self, handler: Callable[[Request], Response]) -> None:
        self.handler = handler

    def handle(self, request: Request, timeout: float) -> Response:
        response = self.handler(request)
        response.request = request
        return response


class HTTPTransport(Transport):
    """HTTP/1.1 to ``base_url``, connections kept alive and reused; safe across threads.

    Deploying plans and applies from a few threads at once; each request takes an
    idle connection (or opens one) and gives it back when its response is read.
    """

    def __init__(self, base_url: str, *, verify: bool = True) -> None:
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        self.prefix = parts.path.rstrip("/")
        self.verify = verify
        self._idle: list[HTTPConnection] = []
        self._lock = threading.Lock()

    def handle(self, request: Request, timeout: float) -> Response:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._exchange(connection, request, timeout)
            except (ConnectionResetError, BrokenPipeError):
                # The server may close an idle kept-alive connection just as we reuse it;
                # nothing was processed then, so sending once more on a new one is safe.
                connection.close()
            except (OSError, HTTPException) as exc:
                connection.close()
                raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        connection = self._connect(timeout)
        try:
            return self._exchange(connection, request, timeout)
        except (OSError, HTTPException) as exc:
            connection.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc

    def _connect(self, timeout: float) -> HTTPConnection:
        connection: HTTPConnection
        if self.https:
            import ssl  # only https needs it (and its certificate store)

            context = ssl.create_default_context()
            if not self.verify:
                context.check_hostname = False
                context.verify_mode = ssl.CERT_NONE
            connection = HTTPSConnection(self.host, self.port, timeout=timeout, context=context)
        else:
            connection = HTTPConnection(self.host, self.port, timeout=timeout)
        try:
            connection.connect()
        except TimeoutError as exc:
            connection.close()
            raise Timeout(f"connecting to {self.host}:{self.port} timed out") from exc
        except OSError as exc:
            connection.close()
            raise ConnectError(str(exc)) from exc
        return connection

    def _exchange(self, connection: HTTPConnection, request: Request, timeout: float) -> Response:
        if connection.sock is not None:
            connection.sock.settimeout(timeout)
        try:
            connection.request(
                request.method,
                self.prefix + request.target,
                body=request.content if request.content or request.method != "GET" else None,
                headers=dict(request.headers),
            )
            answer = connection.getresponse()
            content = answer.read()
        except TimeoutError as exc:
            connection.close()
            raise Timeout(f"{request.method} {request.target} timed out") from exc
        if answer.will_close:
            connection.close()
        else:
            with self._lock:
                self._idle.append(connection)
        headers = {name.lower(): value for name, value in answer.getheaders()}
        return Response(answer.status, content, headers, request)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
