"""How `wisp activations logs --follow` words the ways a live stream ends, over real sockets.

A stand-in server answers as the live stream does (chunked Server-Sent Events) and then
goes silent, hangs up mid-event or ends the stream; the real server's side is in
tests/observability/test_stream.py.
"""

from __future__ import annotations

import socket
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from tests.cli.conftest import Wisp, assert_one_line_error, closed_port
from wisp.cli.errors import CliError
from wisp.cli.follow import events

HEAD = (
    b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream; charset=utf-8\r\n"
    b"transfer-encoding: chunked\r\n\r\n"
)
LOG = b'event: log\ndata: {"activationId": "a1", "line": "hello"}\n\n'

Answer = Callable[[socket.socket, bytes], None]  # the connection, the request's head


def chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


@pytest.fixture
def stand_in(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Callable[[Answer], str]]:
    """``serve(answer)``: a server whose one connection ``answer`` answers; its URL, which
    the CLI's credentials now point at."""
    listener = socket.create_server(("127.0.0.1", 0))
    threads: list[threading.Thread] = []
    release = threading.Event()  # the end of the test, for answers that wait

    def serve(answer: Answer) -> str:
        def run() -> None:
            peer, _ = listener.accept()
            with peer:
                answer(peer, peer.recv(65536))
                release.wait(10)

        threads.append(threading.Thread(target=run, daemon=True))
        threads[-1].start()
        url = f"http://127.0.0.1:{listener.getsockname()[1]}"
        monkeypatch.setenv("WISP_CONFIG", str(tmp_path / "credentials.json"))
        monkeypatch.setenv("WISP_APIHOST", url)
        monkeypatch.setenv("WISP_AUTH", "u:k")
        return url

    yield serve
    release.set()
    for thread in threads:
        thread.join(10)
    listener.close()


def read_until_error(stream: Iterator[tuple[str, dict[str, object]]]) -> tuple[list[str], str]:
    seen = []
    with pytest.raises(CliError) as info:
        for event, data in stream:
            seen.append(f"{event} {data['line']}")
    return seen, info.value.message


def test_a_silent_stream_is_an_error_after_the_read_timeout(
    stand_in: Callable[[Answer], str],
) -> None:
    url = stand_in(lambda peer, _: peer.sendall(HEAD + chunk(b": stream open\n\n") + chunk(LOG)))
    seen, message = read_until_error(events(None, True, read_timeout=0.3))
    assert seen == ["log hello"]
    assert message == f"the live stream from {url} went silent"


def test_a_server_gone_mid_event_is_a_broken_stream(stand_in: Callable[[Answer], str]) -> None:
    def cut(peer: socket.socket, head: bytes) -> None:
        peer.sendall(HEAD + chunk(LOG) + b"40\r\nevent: lo")
        peer.shutdown(socket.SHUT_RDWR)

    url = stand_in(cut)
    seen, message = read_until_error(events(None, True))
    assert seen == ["log hello"]
    assert message == (
        f"the live stream from {url} broke: the server closed the connection mid-response"
    )


def test_a_stream_the_server_ends_is_an_error(stand_in: Callable[[Answer], str]) -> None:
    url = stand_in(lambda peer, _: peer.sendall(HEAD + chunk(LOG) + b"0\r\n\r\n"))
    seen, message = read_until_error(events(None, True))
    assert seen == ["log hello"]
    assert message == f"{url} closed the live stream"


def test_the_request_names_the_function_and_the_key(stand_in: Callable[[Answer], str]) -> None:
    heads: list[bytes] = []

    def record(peer: socket.socket, head: bytes) -> None:
        heads.append(head)
        peer.sendall(HEAD + b"0\r\n\r\n")

    stand_in(record)
    with pytest.raises(CliError, match="closed the live stream"):
        list(events("/pkg/", False))
    lines = heads[0].decode().split("\r\n")
    assert lines[0] == (
        "GET /api/v1/namespaces/_/activations/stream?logs=false&name=pkg%2F HTTP/1.1"
    )
    assert "authorization: Basic dTpr" in lines  # base64("u:k")


def test_follow_from_nothing_listening_is_a_one_line_error(wisp: Wisp) -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    result = wisp("activations", "logs", "--follow", env={"WISP_APIHOST": url, "WISP_AUTH": "u:k"})
    assert_one_line_error(result, f"cannot reach Wisp at {url}", "is `wisp server` running?")
    assert result.code == 1
