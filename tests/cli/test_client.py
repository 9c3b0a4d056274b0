from __future__ import annotations

import pytest

from tests.cli.conftest import closed_port
from wisp.cli.client import WispClient, entity_path
from wisp.cli.errors import ApiError, CliError
from wisp.cli.transport import MockTransport, Request, Response


def client_answering(status: int, body: object = None, text: str = "") -> WispClient:
    def handle(request: Request) -> Response:
        assert request.headers["authorization"].startswith("Basic ")
        if body is not None:
            return Response.of(status, json=body)
        return Response.of(status, text=text)

    return WispClient("http://wisp.test", "u:k", transport=MockTransport(handle))


def test_error_envelope_becomes_the_message() -> None:
    client = client_answering(400, {"error": "limits.memory must be 128-1024", "code": "bad"})
    with pytest.raises(ApiError) as info:
        client.get("actions/x")
    assert (info.value.status, info.value.message, info.value.code) == (
        400,
        "limits.memory must be 128-1024",
        "bad",
    )


def test_non_json_error_uses_the_text() -> None:
    with pytest.raises(ApiError, match="upstream exploded"):
        client_answering(500, text="upstream exploded").get("actions")


def test_unauthorized_suggests_login() -> None:
    with pytest.raises(ApiError, match="wisp login"):
        client_answering(401, {"error": "The supplied authentication is invalid"}).get("actions")


def test_find_maps_404_to_none() -> None:
    assert client_answering(404, {"error": "nope"}).find("actions/x") is None


def test_invoke_accepts_function_failures() -> None:
    status, body = client_answering(502, {"activationId": "a"}).invoke("p/f", {}, blocking=True)
    assert (status, body) == (502, {"activationId": "a"})


def test_connection_refused_is_explained() -> None:
    url = f"http://127.0.0.1:{closed_port()}"
    with pytest.raises(CliError) as info, WispClient(url, "u:k") as client:
        client.get("actions")
    assert info.value.message == f"cannot reach Wisp at {url} — is `wisp server` running?"


def test_entity_path_quotes_and_validates() -> None:
    assert entity_path("actions", "pkg/fn") == "actions/pkg/fn"
    assert entity_path("actions", "fn") == "actions/fn"
    assert entity_path("actions", "a b") == "actions/a%20b"
    with pytest.raises(CliError):
        entity_path("actions", "a/b/c")


def test_a_mock_transport_streams_its_whole_answer() -> None:
    with client_answering(200, text="event: log\ndata: {}\n\n").stream("s", timeout=1) as stream:
        assert stream.request.path == "/api/v1/namespaces/_/s"
        assert stream.request.headers["accept"] == "text/event-stream"
        assert list(stream.iter_lines()) == ["event: log", "data: {}", ""]
    with pytest.raises(ApiError, match="no such stream"):
        client_answering(404, {"error": "no such stream"}).stream("s", timeout=1)
