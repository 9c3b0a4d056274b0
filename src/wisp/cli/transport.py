"""How the CLI's requests reach the server: kept-alive HTTP/1.1 connections, or a function.

The CLI talks to one server in short JSON exchanges, which a few dozen lines of
HTTP/1.1 over a socket handle; httpx (with httpcore, anyio and, where installed,
trio behind it) took ~200 ms of every command's start-up, and even the standard
library's ``http.client`` ~15 ms (it imports the email parser and ssl).
:class:`MockTransport` answers from a function, in memory, for tests.

Exceptions (:class:`TransportError` and below) say what failed at the connection
level; :class:`~wisp.cli.client.WispClient` turns them into one-line ``CliError`` s::

    TransportError
     ├── ConnectError   (nothing listening, unknown host)
     │    └── TLSError  (the TLS handshake failed, e.g. an untrusted certificate)
     └── Timeout        (no answer within the timeout)
"""

from __future__ import annotations

import base64
import json as jsonlib
import socket
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import ssl


class TransportError(Exception):
    pass


class ConnectError(TransportError):
    pass


class TLSError(ConnectError):
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
        try:
            return HTTPStatus(self.status_code).phrase
        except ValueError:
            return ""

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

    def __init__(self, base_url: str, *, tls: ssl.SSLContext | None = None) -> None:
        """``tls``: the context for https (default: verify against the system's CAs)."""
        parts = urlsplit(base_url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"{base_url!r} is not an http:// or https:// URL")
        self.https = parts.scheme == "https"
        self.host = parts.hostname
        self.port = parts.port or (443 if self.https else 80)
        default_port = self.port == (443 if self.https else 80)
        host = f"[{self.host}]" if ":" in self.host else self.host
        self.host_header = host if default_port else f"{host}:{self.port}"
        self.prefix = parts.path.rstrip("/")
        self.tls = tls
        self._idle: list[Connection] = []
        self._lock = threading.Lock()

    def handle(self, request: Request, timeout: float) -> Response:
        with self._lock:
            connection = self._idle.pop() if self._idle else None
        if connection is not None:
            try:
                return self._exchange(connection, request, timeout)
            except Stale:
                # The server may close an idle kept-alive connection just as we reuse it;
                # nothing was processed then, so sending once more on a new one is safe.
                connection.close()
        connection = self._connect(timeout)
        try:
            return self._exchange(connection, request, timeout)
        except Stale as exc:
            raise TransportError("the server closed the connection without answering") from exc

    def _connect(self, timeout: float) -> Connection:
        try:
            sock = socket.create_connection((self.host, self.port), timeout=timeout)
        except TimeoutError as exc:
            raise Timeout(f"connecting to {self.host}:{self.port} timed out") from exc
        except OSError as exc:
            raise ConnectError(str(exc)) from exc
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        if self.https:
            import ssl  # only https needs it (and the system's certificate store)

            context = self.tls or ssl.create_default_context()
            try:
                sock = context.wrap_socket(sock, server_hostname=self.host)
            except (OSError, ssl.SSLError) as exc:
                sock.close()
                raise TLSError(str(exc)) from exc
        return Connection(sock)

    def _exchange(self, connection: Connection, request: Request, timeout: float) -> Response:
        head = [
            f"{request.method} {self.prefix}{request.target} HTTP/1.1",
            f"host: {self.host_header}",
        ]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        if request.content or request.method not in ("GET", "HEAD", "DELETE"):
            head.append(f"content-length: {len(request.content)}")
        data = ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.content
        try:
            connection.sock.settimeout(timeout)
            connection.sock.sendall(data)
            status, headers, content, reusable = connection.read_response(request.method)
        except (Stale, Timeout):
            connection.close()
            raise
        except TimeoutError as exc:
            connection.close()
            raise Timeout(f"{request.method} {request.target} timed out") from exc
        except (ConnectionResetError, BrokenPipeError) as exc:
            connection.close()
            raise Stale(str(exc)) from exc
        except (OSError, ValueError) as exc:
            connection.close()
            raise TransportError(f"{type(exc).__name__}: {exc}") from exc
        if reusable:
            with self._lock:
                self._idle.append(connection)
        else:
            connection.close()
        return Response(status, content, headers, request)

    def close(self) -> None:
        with self._lock:
            idle, self._idle = self._idle, []
        for connection in idle:
            connection.close()


class Stale(TransportError):
    """The connection was closed before any of the response arrived."""


class Connection:
    """One socket and the HTTP/1.1 responses read from it (Content-Length, chunked or close)."""

    MAX_LINE = 65536
    MAX_HEADERS = 200

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")

    def close(self) -> None:
        self.reader.close()
        self.sock.close()

    def _line(self) -> bytes:
        line = self.reader.readline(self.MAX_LINE + 1)
        if len(line) > self.MAX_LINE:
            raise ValueError("a line of the response is too long")
        return line

    def read_response(self, method: str) -> tuple[int, dict[str, str], bytes, bool]:
        """(status, headers with lower-case names, body, whether the connection can be reused)."""
        while True:
            line = self._line()
            if not line:
                raise Stale("the server closed the connection")
            version, _, rest = line.decode("latin-1").rstrip("\r\n").partition(" ")
            code = rest[:3]
            if not version.startswith("HTTP/1.") or not code.isdigit():
                raise ValueError(f"not an HTTP/1.x status line: {line[:80]!r}")
            status = int(code)
            headers = self._headers()
            if status >= 200 or status == 101:
                break  # 1xx interim answers (e.g. 100 Continue) come before the real one
        keep = version == "HTTP/1.1"
        connection = headers.get("connection", "").lower()
        if "close" in connection:
            keep = False
        elif "keep-alive" in connection:
            keep = True
        if method == "HEAD" or status in (204, 304) or status < 200:
            return status, headers, b"", keep
        if "chunked" in headers.get("transfer-encoding", "").lower():
            return status, headers, self._chunked(), keep
        if "content-length" in headers:
            length = int(headers["content-length"])
            content = self.reader.read(length)
            if len(content) != length:
                raise ValueError("the server closed the connection mid-response")
            return status, headers, content, keep
        return status, headers, self.reader.read(), False  # the body ends when the server closes

    def _headers(self) -> dict[str, str]:
        headers: dict[str, str] = {}
        for _ in range(self.MAX_HEADERS):
            line = self._line()
            if line in (b"\r\n", b"\n", b""):
                return headers
            name, sep, value = line.decode("latin-1").partition(":")
            if sep:
                key = name.strip().lower()
                value = value.strip()
                headers[key] = f"{headers[key]}, {value}" if key in headers else value
        raise ValueError("the response has too many header lines")

    def _chunked(self) -> bytes:
        parts: list[bytes] = []
        while True:
            size = int(self._line().split(b";")[0].strip() or b"x", 16)
            if size == 0:
                self._headers()  # trailers, up to the blank line
                return b"".join(parts)
            part = self.reader.read(size)
            if len(part) != size:
                raise ValueError("the server closed the connection mid-response")
            parts.append(part)
            self._line()  # the CRLF after each chunk


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
