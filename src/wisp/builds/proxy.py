"""The only way out of a build sandbox: an HTTPS proxy to the allowed package registries.

A build has a network namespace of its own holding only a loopback; on it, the
sandbox's first process listens on 127.0.0.1:3128 and hands that socket to the
server, which serves it here. pip, npm, curl and git find it through
``HTTPS_PROXY``. Only ``CONNECT host:443`` to a host the operator allows
(``WISP_BUILD_REGISTRIES``: names, or ``*.suffix``) is tunnelled, and only when the
name resolves to public addresses: never to the host's own services, private
networks or cloud metadata. The proxy sees no plain text (TLS runs end to end) and
the build sees no DNS: names are resolved here.
"""

from __future__ import annotations

import contextlib
import ipaddress
import logging
import selectors
import socket
import threading
from collections.abc import Sequence

from wisp.sandbox.egress import DENIED_V4

log = logging.getLogger("wisp.builds")

DEFAULT_REGISTRIES = "pypi.org,files.pythonhosted.org,registry.npmjs.org"
PORT = 443
HEAD_MAX = 8192
CONNECT_TIMEOUT = 15.0
IDLE_TIMEOUT = 300.0
CONNECTIONS_MAX = 64  # tunnels one build may hold at once (each is a thread here)
REFUSED_MAX = 32  # distinct refused destinations remembered for the build log
DENIED = [ipaddress.IPv4Network(n) for n in DENIED_V4]


def allowed(host: str, registries: Sequence[str]) -> bool:
    host = host.lower().rstrip(".")
    for entry in registries:
        entry = entry.strip().lower()
        if entry.startswith("*.") and host.endswith(entry[1:]) and host != entry[2:]:
            return True
        if host == entry:
            return True
    return False


def outside(address: str) -> bool:
    """Not the host, nor a private network: the ranges functions' egress rejects."""
    ip = ipaddress.ip_address(address)
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is None:
            return ip.is_global
        ip = ip.ipv4_mapped
    return not any(ip in network for network in DENIED)


def public_addresses(host: str) -> list[str]:
    """The host's addresses, none of them the host's or private; [] when any is (a
    registry name must not lead back inside)."""
    try:
        infos = socket.getaddrinfo(host, PORT, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        return []
    found = [str(info[4][0]) for info in infos]
    if not found or not all(outside(a) for a in found):
        return []
    return found


def _connect(addresses: list[str]) -> socket.socket:
    """The first of the checked addresses that answers (never a fresh lookup: the name
    could resolve elsewhere the second time)."""
    error: OSError = OSError("no address")
    for address in addresses:
        try:
            return socket.create_connection((address, PORT), timeout=CONNECT_TIMEOUT)
        except OSError as exc:
            error = exc
    raise error


class RegistryProxy:
    """Serves one build's listening socket until ``close``."""

    def __init__(self, listener: socket.socket, registries: Sequence[str]) -> None:
        self.listener = listener
        self.registries = list(registries)
        self.refused: list[str] = []  # "host:port" the build asked for and did not get
        self._slots = threading.BoundedSemaphore(CONNECTIONS_MAX)
        self._sockets: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._closed = False
        self._thread = threading.Thread(target=self._accept, name="build-proxy", daemon=True)
        self._thread.start()

    def close(self) -> None:
        with self._lock:
            self._closed = True
            sockets = list(self._sockets)
            self._sockets.clear()
        with contextlib.suppress(OSError):
            self.listener.shutdown(socket.SHUT_RDWR)
        self.listener.close()
        for sock in sockets:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
            sock.close()
        self._thread.join(5)

    def _track(self, sock: socket.socket) -> bool:
        with self._lock:
            if self._closed:
                sock.close()
                return False
            self._sockets.add(sock)
            return True

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return  # closed
            if not self._slots.acquire(blocking=False):
                client.close()  # over its tunnels: the build sees a reset
                continue
            if not self._track(client):
                self._slots.release()
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _refuse(self, destination: str) -> None:
        if destination not in self.refused and len(self.refused) < REFUSED_MAX:
            self.refused.append(destination)

    def _serve(self, client: socket.socket) -> None:
        upstream = None
        try:
            client.settimeout(CONNECT_TIMEOUT)
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = client.recv(1024)
                if not chunk or len(head) > HEAD_MAX:
                    return
                head += chunk
            line = head.split(b"\r\n", 1)[0].decode("latin-1")
            parts = line.split()
            if len(parts) != 3 or parts[0] != "CONNECT":
                self._answer(client, 405, "only CONNECT (HTTPS) to a package registry is allowed")
                return
            host, _, port = parts[1].rpartition(":")
            host = host.strip("[]")
            if port != str(PORT) or not allowed(host, self.registries):
                self._refuse(parts[1])
                self._answer(
                    client,
                    403,
                    f"{parts[1]} is not an allowed package registry (WISP_BUILD_REGISTRIES)",
                )
                return
            addresses = public_addresses(host)
            if not addresses:
                self._refuse(parts[1])
                self._answer(client, 403, f"{host} does not resolve to public addresses only")
                return
            upstream = _connect(addresses)
            if not self._track(upstream):
                return
            client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
            self._splice(client, upstream, head.split(b"\r\n\r\n", 1)[1])
        except OSError as exc:
            log.debug("build proxy connection ended: %s", exc)
        finally:
            for sock in (client, upstream):
                if sock is not None:
                    with self._lock:
                        self._sockets.discard(sock)
                    sock.close()
            self._slots.release()

    @staticmethod
    def _answer(client: socket.socket, status: int, text: str) -> None:
        reason = {403: "Forbidden", 405: "Method Not Allowed"}[status]
        body = f"wisp build proxy: {text}\n".encode()
        client.sendall(
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: text/plain\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
            + body
        )

    @staticmethod
    def _splice(client: socket.socket, upstream: socket.socket, early: bytes) -> None:
        if early:
            upstream.sendall(early)
        client.settimeout(None)
        upstream.settimeout(None)
        with selectors.DefaultSelector() as selector:
            selector.register(client, selectors.EVENT_READ, upstream)
            selector.register(upstream, selectors.EVENT_READ, client)
            open_ends = 2
            while open_ends:
                events = selector.select(timeout=IDLE_TIMEOUT)
                if not events:
                    return  # idle: a stuck tunnel must not hold a thread for ever
                for key, _ in events:
                    source: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = source.recv(1 << 16)
                    if data:
                        key.data.sendall(data)
                        continue
                    selector.unregister(source)
                    with contextlib.suppress(OSError):
                        key.data.shutdown(socket.SHUT_WR)
                    open_ends -= 1
