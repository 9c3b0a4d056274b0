"""`wisp route` end to end: a real server, the real command, a real function."""

from __future__ import annotations

import json
from collections.abc import Iterator

import httpx
import pytest

from tests.cli.conftest import assert_one_line_error
from tests.live import LiveServer

pytestmark = pytest.mark.slow

HELLO = "def main(args):\n    return {'body': {'hello': args.get('who'), 'user': args.get('__ow_user')}}\n"


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with LiveServer(tmp_path_factory.mktemp("routes")) as live:
        with live.client() as client:
            body = {"exec": {"kind": "python:default", "code": HELLO}}
            assert client.put("/api/v1/namespaces/_/actions/hello", json=body).status_code == 200
        yield live


def test_create_call_list_delete(server: LiveServer) -> None:
    made = server.run(
        "route",
        "create",
        "/api",
        "/hello/{who}",
        "GET",
        "hello",
        "--policy",
        "api-key",
        "--rate",
        "100",
    )
    assert made.code == 0, made.err
    first, second = made.out.strip().splitlines()
    assert first == f"GET {server.url}/gw/guest/api/hello/{{who}}"
    key = second.removeprefix("API key (shown once): ")
    url = f"{server.url}/gw/guest/api/hello/ada"
    assert httpx.get(url).status_code == 401
    r = httpx.get(url, headers={"X-API-Key": key})
    assert r.status_code == 200 and r.json()["hello"] == "ada"
    assert r.json()["user"].startswith("key-")
    listed = json.loads(server.run("route", "list", "--json").out)
    assert [(i["method"], i["path"], i["policy"]["type"]) for i in listed] == [
        ("GET", "/hello/{who}", "api-key")
    ]
    assert key not in server.run("route", "list", "--json").out
    table = server.run("route", "list").out
    assert "/api/hello/{who}" in table and "100/1.0s" in table
    deleted = server.run("route", "delete", "/api")
    assert deleted.code == 0 and deleted.out.strip() == "Deleted 1 route"
    assert httpx.get(url, headers={"X-API-Key": key}).status_code == 404


def test_bad_input_is_one_line(server: LiveServer) -> None:
    assert_one_line_error(
        server.run("route", "create", "/api", "x", "GET", "hello"), "path must be a path"
    )
    assert_one_line_error(server.run("route", "create", "/api", "/x", "GET", "missing"), "missing")
    assert_one_line_error(server.run("route", "delete", "/nothing"), "no route matches")
    assert_one_line_error(
        server.run(
            "route",
            "create",
            "/api",
            "/x",
            "GET",
            "hello",
            "--policy",
            "basic",
            "--user",
            "nocolon",
        ),
        "NAME:PASSWORD",
    )
