"""The CLI's HTTP transport against a real (standard library) HTTP server."""

from __future__ import annotations

import datetime
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from tests.cli.conftest import closed_port
from wisp.cli.client import WispClient
from wisp.cli.errors import ApiError, CliError
from wisp.cli.transport import (
    ConnectError,
    HTTPTransport,
    Request,
    Stream,
    Timeout,
    TransportError,
)


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as uvicorn does
    server: Server

    def log_message(self, format: str, *args: object) -> None:
        pass

    def do_GET(self) -> None:
        self.server.record(self)
        if self.path.startswith("/slow"):
            time.sleep(0.5)
        if self.path.startswith("/until-close"):  # no length: the body ends at EOF
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            self.wfile.write(b'{"whole": true}')
            self.close_connection = True
            return
        if self.path.startswith("/empty"):
            self.send_response(204)
            self.end_headers()
            return
        if self.path.startswith("/chunked"):
            self.send_response(200)
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for part in (b'{"parts": ', b"[1, 2]}"):
                self.wfile.write(b"%x\r\n%s\r\n" % (len(part), part))
            self.wfile.write(b"0\r\n\r\n")
            return
        if self.path.startswith("/stream/"):
            self.stream(self.path.removeprefix("/stream/"))
            return
        self.reply({"path": self.path, "auth": self.headers.get("Authorization")})

    def stream(self, how: str) -> None:
        """Server-Sent Events as the live stream sends them: chunked, one write per event."""
        if how == "denied":
            self.send_response(401)
            self.reply_body({"error": "The supplied authentication is invalid"})
            return
        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        self.server.accept_header = self.headers.get("Accept", "")
        if how == "held":  # one event, then the next only once the test has seen the first
            self.chunk(b"data: one\n\n")
            released = self.server.release.wait(5)  # not if the client waits for the end
            self.chunk(b"data: two\n\n" if released else b"data: too late\n\n")
            self.wfile.write(b"0\r\n\r\n")
        elif how == "ticking":  # a keep-alive every 0.1 s for 0.8 s, then silence
            for _ in range(8):
                self.chunk(b": keep-alive\n\n")
                time.sleep(0.1)
            self.server.release.wait(10)
        elif how == "cut":  # an event, then half a chunk and the connection is gone
            self.chunk(b"data: one\n\n")
            self.wfile.write(b"40\r\ndata: t")
            self.connection.shutdown(socket.SHUT_RDWR)
        self.close_connection = True

    def chunk(self, data: bytes) -> None:
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def do_PUT(self) -> None:
        self.server.record(self)
        length = int(self.headers.get("Content-Length", 0))
        body = json.loads(self.rfile.read(length))
        self.reply({"got": body, "type": self.headers.get("Content-Type")})

    def reply(self, doc: object) -> None:
        self.send_response(200)
        self.reply_body(doc)

    def reply_body(self, doc: object) -> None:
        data = json.dumps(doc).encode()
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


class Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), Handler)
        self.peers: list[tuple[str, int]] = []  # client address per request
        self.handlers: list[BaseHTTPRequestHandler] = []
        self.lock = threading.Lock()
        self.release = threading.Event()  # lets a held stream go on
        self.accept_header = ""

    def record(self, handler: BaseHTTPRequestHandler) -> None:
        with self.lock:
            self.peers.append(handler.client_address)
            self.handlers.append(handler)

    def handle_error(self, request: object, client_address: object) -> None:
        pass  # the timeout tests hang up before the answer: its write fails, as it should

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def server() -> Iterator[Server]:
    httpd = Server()
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.release.set()
    httpd.shutdown()
    httpd.server_close()
    thread.join()


def test_requests_reuse_one_kept_alive_connection(server: Server) -> None:
    with WispClient(server.url, "u:k") as client:
        first = client.get("/api/v1/a", params={"limit": 2, "name": "a b"})
        client.get("/api/v1/b")
        client.get("/api/v1/c")
    assert first["path"] == "/api/v1/a?limit=2&name=a+b"
    assert first["auth"] == "Basic dTpr"  # base64("u:k")
    assert len(set(server.peers)) == 1


def test_json_bodies_go_out_as_json(server: Server) -> None:
    with WispClient(server.url, "u:k") as client:
        answer = client.put("/x", {"exec": {"code": "é"}})
    assert answer == {"got": {"exec": {"code": "é"}}, "type": "application/json"}


def test_chunked_responses_are_read_whole(server: Server) -> None:
    with WispClient(server.url, "u:k") as client:
        assert client.get("/chunked") == {"parts": [1, 2]}


def test_a_body_that_ends_when_the_server_closes(server: Server) -> None:
    with WispClient(server.url, "u:k") as client:
        assert client.get("/until-close") == {"whole": True}
        assert client.get("/after")["path"] == "/after"  # on a new connection
        assert client.request("GET", "/empty", expect=(204,)).content == b""
        assert client.get("/again")["path"] == "/again"
    assert len(set(server.peers)) == 2


def test_an_answer_that_is_not_http_is_a_transport_error() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()

        def answer_nonsense() -> None:
            peer, _ = listener.accept()
            with peer:
                peer.recv(65536)
                peer.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")

        thread = threading.Thread(target=answer_nonsense)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with (
            pytest.raises(CliError, match=r"not an HTTP/1\.x status line"),
            WispClient(url, "u:k") as client,
        ):
            client.get("/")
        thread.join()


def test_a_response_cut_off_by_a_reset_is_not_sent_again() -> None:
    """A reset after the status line means the server had the request: retrying it
    on a new connection (as for a stale idle one) would run an invoke twice."""
    requests: list[bytes] = []
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        listener.settimeout(5)

        def serve() -> None:
            peer, _ = listener.accept()
            with peer:
                requests.append(peer.recv(65536))
                peer.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}")
                requests.append(peer.recv(65536))
                peer.sendall(b"HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{\"par")
                time.sleep(0.1)
                linger = (1).to_bytes(4, "little") + (0).to_bytes(4, "little")
                peer.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, linger)  # RST
            listener.settimeout(1)
            try:
                again, _ = listener.accept()  # a retry would come here
                with again:
                    requests.append(again.recv(65536))
            except TimeoutError:
                pass

        thread = threading.Thread(target=serve)
        thread.start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        with WispClient(url, "u:k") as client:
            client.invoke("f", {}, blocking=True)
            with pytest.raises(CliError, match="cut mid-response"):
                client.invoke("f", {}, blocking=True)
        thread.join()
    assert len(requests) == 2, requests


def test_threads_share_the_client_safely(server: Server) -> None:
    with WispClient(server.url, "u:k") as client, ThreadPoolExecutor(8) as pool:
        paths = list(pool.map(lambda i: client.get(f"/n{i}")["path"], range(64)))
    assert paths == [f"/n{i}" for i in range(64)]
    assert 1 <= len(set(server.peers)) <= 8  # connections reused, at most one per thread


def test_a_connection_the_server_closed_while_idle_is_replaced(server: Server) -> None:
    with WispClient(server.url, "u:k") as client:
        client.get("/one")
        # The server drops the idle connection, as uvicorn does after its keep-alive time.
        server.handlers[0].connection.shutdown(socket.SHUT_RDWR)
        time.sleep(0.1)
        assert client.get("/two")["path"] == "/two"
    assert len(set(server.peers)) == 2


def test_base_url_path_prefixes_every_request(server: Server) -> None:
    transport = HTTPTransport(server.url + "/prefix/")
    try:
        answer = transport.handle(Request("GET", "/api/v1?x=1"), timeout=5).json()
    finally:
        transport.close()
    assert answer["path"] == "/prefix/api/v1?x=1"


def test_no_answer_in_time_is_a_timeout(server: Server) -> None:
    transport = HTTPTransport(server.url)
    with pytest.raises(Timeout):
        transport.handle(Request("GET", "/slow"), timeout=0.1)
    transport.close()
    with (
        pytest.raises(CliError, match="did not answer in time"),
        WispClient(server.url, "u:k", timeout=0.1) as client,
    ):
        client.get("/slow")


def test_nothing_listening_is_a_connect_error() -> None:
    transport = HTTPTransport(f"http://127.0.0.1:{closed_port()}")
    with pytest.raises(ConnectError):
        transport.handle(Request("GET", "/"), timeout=5)


def test_an_api_host_that_is_not_a_url_is_a_cli_error() -> None:
    with pytest.raises(CliError, match="http:// or https://"):
        WispClient("ftp://somewhere", "u:k")


def test_a_stream_is_read_as_it_arrives(server: Server) -> None:
    with WispClient(server.url, "u:k") as client, client.stream("/stream/held", timeout=5) as sse:
        lines = sse.iter_lines()
        assert next(lines) == "data: one"  # while the server still holds the rest back
        assert next(lines) == ""
        server.release.set()
        assert list(lines) == ["data: two", ""]  # and then the body ends
    assert server.accept_header == "text/event-stream"


def test_each_keep_alive_restarts_a_streams_timeout(server: Server) -> None:
    transport = HTTPTransport(server.url)
    stream = transport.stream(Request("GET", "/stream/ticking"), timeout=0.4)
    started = time.monotonic()
    seen = []
    with pytest.raises(Timeout), stream:
        for line in stream.iter_lines():
            seen.append(line)
    waited = time.monotonic() - started
    # 0.8 s of keep-alives 0.1 s apart outlast a 0.4 s timeout; the silence after does not.
    assert seen == [": keep-alive", ""] * 8
    assert 1.1 < waited < 5, waited


def test_a_stream_cut_off_mid_event_is_a_transport_error(server: Server) -> None:
    transport = HTTPTransport(server.url)
    seen = []
    with (
        pytest.raises(TransportError, match="closed the connection mid-response"),
        transport.stream(Request("GET", "/stream/cut"), timeout=5) as stream,
    ):
        for line in stream.iter_lines():
            seen.append(line)
    assert seen == ["data: one", ""]


def test_a_stream_refused_is_the_servers_error(server: Server) -> None:
    with pytest.raises(ApiError) as info, WispClient(server.url, "u:k") as client:
        client.stream("/stream/denied", timeout=5)
    assert info.value.status == 401
    assert info.value.message == (
        "The supplied authentication is invalid (run `wisp login` with a valid key)"
    )


def test_a_stream_from_nothing_listening_is_a_cli_error() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(CliError) as info, WispClient(url, "u:k") as client:
        client.stream("/stream/held", timeout=5)
    assert info.value.message == f"cannot reach Wisp at {url} — is `wisp server` running?"


@pytest.mark.parametrize(
    "pieces",
    [
        [b"a\r\nb\n\nc"],
        [b"a\r", b"\nb\n", b"\nc"],  # a CRLF split between two pieces is one line end
        [b"a\r", b"", b"\nb\r\r", b"c"],  # CR alone ends a line, as SSE allows
        [b"a", b"\r\n", b"b", b"\n", b"\n", b"c"],
    ],
)
def test_stream_lines_end_with_crlf_lf_or_cr(pieces: list[bytes]) -> None:
    stream = Stream(200, {}, Request("GET", "/"), pieces)
    assert list(stream.iter_lines()) == ["a", "b", "", "c"]


def test_stream_lines_are_utf8_even_split_mid_character() -> None:
    text = "é€\n".encode()
    pieces = [text[i : i + 1] for i in range(len(text))]
    assert list(Stream(200, {}, Request("GET", "/"), pieces).iter_lines()) == ["é€"]


def self_signed(folder: Path) -> tuple[Path, Path]:
    """A certificate for 127.0.0.1 signed by its own key: (cert.pem, key.pem)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wisp test")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=1))
        .add_extension(
            x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
        .sign(key, hashes.SHA256())
    )
    cert_path, key_path = folder / "cert.pem", folder / "key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    return cert_path, key_path


@pytest.fixture
def tls_server(server: Server, tmp_path: Path) -> tuple[str, Path]:
    cert, key = self_signed(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return f"https://127.0.0.1:{server.server_address[1]}", cert


def test_https_is_verified_against_the_systems_authorities(tls_server: tuple[str, Path]) -> None:
    url, _ = tls_server
    with pytest.raises(CliError) as info, WispClient(url, "u:k") as client:
        client.get("/api/v1")
    assert info.value.message.startswith(f"TLS with {url} failed: ")
    assert "CERTIFICATE_VERIFY_FAILED" in info.value.message


def test_https_with_a_trusted_certificate(tls_server: tuple[str, Path]) -> None:
    url, cert = tls_server
    transport = HTTPTransport(url, tls=ssl.create_default_context(cafile=str(cert)))
    with WispClient(url, "u:k", transport=transport) as client:
        assert client.get("/api/v1")["path"] == "/api/v1"
        assert client.get("/again")["path"] == "/again"
