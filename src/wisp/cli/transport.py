"""How the CLI's requests reach the server: kept-alive HTTP/1.1 connections, or a function.

The CLI talks to one server in short JSON exchanges, which a few dozen lines of
HTTP/1.1 over a socket handle; httpx (with httpcore, anyio and, where installed,
trio behind it) took ~200 ms of every command's start-up, and even the standard
library's ``http.client`` ~15 ms (it imports the email parser and ssl).
A :class:`Stream` is a response read as it arrives (the live stream's Server-Sent
Events). :class:`MockTransport` answers from a function, in memory, for tests.

Exceptions (:class:`TransportError` and below) say what failed at the connection
level; :class:`~wisp.cli.client.WispClient` turns them into one-line ``CliError`` s::

    TransportError
     ├── ConnectError   (nothing listening, unknown host)
     │    └── TLSError  (the TLS handshake failed, e.g. an untrusted certificate)
     └── Timeout        (no answer within the timeout)
"""

from __future__ import annotations

import base64
import codecs
import json as jsonlib
import re
import socket
import threading
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import TYPE_CHECKING, Any, Self
from urllib.parse import parse_qsl, urlsplit

if TYPE_CHECKING:
    import ssl
    from types import TracebackType


class Closing:
    """``with`` for an object with a ``close()``: closed when the block ends."""

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def close(self) -> None:
        raise NotImplementedError


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


class Stream(Closing):
    """A response whose body is read as it arrives; close it (or use ``with``) when done.

    Reading the body raises :class:`TransportError` s, as sending does.
    """

    def __init__(
        self,
        status_code: int,
        headers: Mapping[str, str],
        request: Request,
        chunks: Iterable[bytes],
        close: Callable[[], None] = lambda: None,
    ) -> None:
        self.status_code = status_code
        self.headers = headers
        self.request = request
        self._chunks = iter(chunks)
        self._close = close

    def close(self) -> None:
        self._close()

    def iter_bytes(self) -> Iterator[bytes]:
        """The body's bytes, in pieces as they arrive."""
        return self._chunks

    def iter_lines(self) -> Iterator[str]:
        """The body's lines as they arrive, without their ends (CRLF, LF or CR, as SSE allows)."""
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        pending, after_cr = "", False
        for chunk in self._chunks:
            text = decoder.decode(chunk)
            if not text:
                continue
            if after_cr and text[0] == "\n":
                text = text[1:]  # the LF of a CRLF that was split between two pieces
            after_cr = text.endswith("\r")
            *lines, pending = _LINE_END.split(pending + text)
            yield from lines
        pending += decoder.decode(b"", final=True)
        if pending:
            yield pending

    def read(self) -> Response:
        """The rest of the body, whole (e.g. an error status's JSON envelope)."""
        return Response(self.status_code, b"".join(self._chunks), self.headers, self.request)


_LINE_END = re.compile(r"\r\n|\r|\n")


class Transport:
    """Sends one request and returns its response; the base of both implementations."""

    def handle(self, request: Request, timeout: float) -> Response:
        raise NotImplementedError

    def stream(self, request: Request, timeout: float) -> Stream:
        """The response with its body still to read; ``timeout`` bounds each wait for bytes.

        By default the body is read whole first, which is all a :class:`MockTransport` has.
        """
        response = self.handle(request, timeout)
        return Stream(response.status_code, response.headers, request, [response.content])

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

    def stream(self, request: Request, timeout: float) -> Stream:
        # A connection of its own, never given back for reuse: the body may never end.
        connection = self._connect(timeout)
        try:
            connection.sock.settimeout(timeout)  # per wait for bytes: each one resets it
            connection.sock.sendall(self._head(request))
            status, headers, _ = connection.read_head()
        except (OSError, ValueError, TransportError) as exc:
            connection.close()
            raise _failure(exc, request) from exc
        except BaseException:  # e.g. Ctrl-C while waiting for the answer
            connection.close()
            raise
        body = _reading(connection.body(request.method, status, headers), request)
        return Stream(status, headers, request, body, connection.close)

    def _head(self, request: Request) -> bytes:
        head = [
            f"{request.method} {self.prefix}{request.target} HTTP/1.1",
            f"host: {self.host_header}",
        ]
        head += [f"{name}: {value}" for name, value in request.headers.items()]
        if request.content or request.method not in ("GET", "HEAD", "DELETE"):
            head.append(f"content-length: {len(request.content)}")
        return ("\r\n".join(head) + "\r\n\r\n").encode("latin-1") + request.content

    def _exchange(self, connection: Connection, request: Request, timeout: float) -> Response:
        connection.answered = False
        try:
            connection.sock.settimeout(timeout)
            connection.sock.sendall(self._head(request))
            status, headers, content, reusable = connection.read_response(request.method)
        except (OSError, ValueError, TransportError) as exc:
            connection.close()
            if connection.answered and isinstance(exc, Stale | ConnectionError):
                # Cut off mid-response: the server had the request, so it is not sent
                # again (an invoke would run twice).
                raise TransportError(f"the connection was cut mid-response: {exc}") from exc
            raise _failure(exc, request) from exc
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


def _failure(exc: Exception, request: Request) -> TransportError:
    """What a failed exchange raises: a :class:`TransportError` (Stale ones are retried)."""
    if isinstance(exc, TransportError):
        return exc
    if isinstance(exc, TimeoutError):
        return Timeout(f"{request.method} {request.target} timed out")
    if isinstance(exc, (ConnectionResetError, BrokenPipeError)):
        return Stale(str(exc))
    return TransportError(f"{type(exc).__name__}: {exc}")


def _reading(body: Iterator[bytes], request: Request) -> Iterator[bytes]:
    """A streamed body whose failures are :class:`TransportError` s, as the request's are."""
    try:
        yield from body
    except TimeoutError as exc:
        raise Timeout(f"no bytes of {request.method} {request.target} in time") from exc
    except (OSError, ValueError) as exc:
        raise TransportError(str(exc)) from exc


class Connection:
    """One socket and the HTTP/1.1 responses read from it (Content-Length, chunked or close)."""

    MAX_LINE = 65536
    MAX_HEADERS = 200
    PIECE = 65536  # the most one read of a streamed body returns

    def __init__(self, sock: socket.socket) -> None:
        self.sock = sock
        self.reader = sock.makefile("rb")
        self.answered = False  # a status line of the current response has arrived

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
        status, headers, keep = self.read_head()
        content = b"".join(self.body(method, status, headers))
        if not _delimited(method, status, headers):
            keep = False  # the body ended when the server closed
        return status, headers, content, keep

    def read_head(self) -> tuple[int, dict[str, str], bool]:
        """(status, headers with lower-case names, whether the server keeps the connection)."""
        while True:
            line = self._line()
            if not line:
                raise Stale("the server closed the connection")
            self.answered = True
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
        return status, headers, keep

    def body(self, method: str, status: int, headers: Mapping[str, str]) -> Iterator[bytes]:
        """The body in pieces as they arrive: chunked, by length, or until the server closes."""
        if method == "HEAD" or status in (204, 304) or status < 200:
            return
        if "chunked" in headers.get("transfer-encoding", "").lower():
            yield from self._chunks()
        elif "content-length" in headers:
            left = int(headers["content-length"])
            while left:
                piece = self.reader.read1(min(left, self.PIECE))
                if not piece:
                    raise ValueError("the server closed the connection mid-response")
                left -= len(piece)
                yield piece
        else:
            while piece := self.reader.read1(self.PIECE):
                yield piece

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

    def _chunks(self) -> Iterator[bytes]:
        while True:
            line = self._line()
            if not line:
                raise ValueError("the server closed the connection mid-response")
            size = int(line.split(b";")[0].strip() or b"x", 16)
            if size == 0:
                self._headers()  # trailers, up to the blank line
                return
            part = self.reader.read(size)
            if len(part) != size:
                raise ValueError("the server closed the connection mid-response")
            yield part  # before its CRLF: a streamed event is handed on as soon as it is whole
            self._line()


def _delimited(method: str, status: int, headers: Mapping[str, str]) -> bool:
    """Whether the body's end is marked (no body, chunked, a length), not the connection's end."""
    if method == "HEAD" or status in (204, 304) or status < 200:
        return True
    return "chunked" in headers.get("transfer-encoding", "").lower() or "content-length" in headers


def basic_auth(user: str, password: str) -> str:
    token = base64.b64encode(f"{user}:{password}".encode()).decode("ascii")
    return f"Basic {token}"
