"""Web functions end to end: a real `wisp server`, real sandboxes, real Python functions."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

ACTIONS = "/api/v1/namespaces/_/actions"
DO_HANDLER = """
def main(event, context):
    http = event["http"]
    return {"body": {"method": http["method"], "path": http["path"],
                     "query": http["queryString"], "agent": http["headers"].get("x-agent"),
                     "name": event.get("name"), "fn": context.function_name}}
"""
ECHO_BINARY = """
def main(args):
    return {"headers": {"content-type": args["__ow_headers"]["content-type"]},
            "body": args["__ow_body"]}
"""
BOOM = "def main(args):\n    raise RuntimeError('secret internals')\n"


def web(code: str, web_value: bool | str = True) -> dict[str, object]:
    return {
        "exec": {"kind": "python:default", "code": code},
        "annotations": [
            {"key": "web-export", "value": web_value is not False},
            {"key": "raw-http", "value": web_value == "raw"},
        ],
    }


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("web")) as live:
        with live.client() as client:
            for name, body in (
                ("do", web(DO_HANDLER)),
                ("binary", web(ECHO_BINARY, "raw")),
                ("boom", web(BOOM)),
                ("hidden", web(DO_HANDLER, False)),
            ):
                r = client.put(f"{ACTIONS}/{name}", json=body)
                assert r.status_code == 200, r.text
        yield live


def test_digitalocean_handlers_see_event_http(server: LiveServer) -> None:
    with server.client() as client:
        r = client.get(
            "/api/v1/web/guest/default/do/a/b?name=Ada", headers={"X-Agent": "tests"}, auth=None
        )
        assert r.status_code == 200, r.text
        assert r.json() == {
            "method": "GET",
            "path": "/a/b",
            "query": "name=Ada",
            "agent": "tests",
            "name": "Ada",
            "fn": "do",
        }
        record = client.get(
            f"/api/v1/namespaces/_/activations/{r.headers['x-openwhisk-activation-id']}"
        )
        assert record.status_code == 200 and record.json()["response"]["success"] is True


def test_binary_bodies_round_trip(server: LiveServer) -> None:
    payload = bytes(range(256)) * 64
    with server.client() as client:
        r = client.post(
            "/api/v1/web/guest/default/binary",
            content=payload,
            headers={"content-type": "application/octet-stream"},
            auth=None,
        )
    assert r.status_code == 200, r.text
    assert r.content == payload and r.headers["content-type"] == "application/octet-stream"


def test_failures_are_502_without_internals(server: LiveServer) -> None:
    with server.client() as client:
        r = client.get("/api/v1/web/guest/default/boom", auth=None)
    assert r.status_code == 502
    assert "Traceback" not in r.text and r.json()["activationId"]


def test_not_web_is_404(server: LiveServer) -> None:
    with server.client() as client:
        assert client.get("/api/v1/web/guest/default/hidden", auth=None).status_code == 404
        assert client.get("/api/v1/web/guest/default/hidden").status_code == 404


def test_fn_get_url_prints_the_web_url(server: LiveServer) -> None:
    result = server.run("fn", "get", "do", "--url")
    assert result.code == 0, result.err
    url = result.out.strip()
    assert url == f"{server.url}/api/v1/web/guest/default/do"
    with server.client() as client:
        assert client.get(url, auth=None).status_code == 200
    hidden = server.run("fn", "get", "hidden", "--url")
    assert hidden.code == 1 and "Traceback" not in hidden.err
    assert hidden.err.strip() == (
        "Error: function hidden is not a web function (deploy it with web: true)"
    )
