"""Access lines from a real `wisp server`: text and JSON, the off switch, and that a
clean stop writes every line still pending."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.cli.conftest import closed_port, wisp_executable
from tests.live import LiveServer, wisp_env

HELLO = "def main(args):\n    return {'body': 'hi'}\n"
WEB = [{"key": "web-export", "value": True}]
INVOKE = "/api/v1/namespaces/_/actions/hello"
# TextFormatter's shape: asctime name level message [request id].
TEXT_LINE = re.compile(
    r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} wisp\.access INFO "
    r"(?P<method>[A-Z]+) (?P<path>\S+) (?P<status>\d{3}) (?P<ms>\d+\.\d\d)ms \[(?P<id>\S+)\]"
)


def text_lines(server: LiveServer) -> list[dict[str, str]]:
    found = []
    for line in server.output().splitlines():
        if " wisp.access " in line:
            match = TEXT_LINE.fullmatch(line)
            assert match is not None, f"not an access line: {line!r}"
            found.append(match.groupdict())
    return found


def json_lines(server: LiveServer) -> list[dict[str, object]]:
    docs = [json.loads(line) for line in server.output().splitlines() if line.startswith("{")]
    return [doc for doc in docs if doc["logger"] == "wisp.access"]


def wait_for_lines(server: LiveServer, ids: list[str]) -> dict[str, dict[str, str]]:
    """The text access lines of the requests ``ids`` (they go out after the loop turns)."""
    deadline = time.monotonic() + 10
    while True:
        lines = {line["id"]: line for line in text_lines(server)}
        if set(ids) <= set(lines) or time.monotonic() > deadline:
            return lines


def test_text_logs_have_an_access_line_per_request(tmp_path: Path) -> None:
    with LiveServer(tmp_path) as server:
        server.deploy("hello", HELLO, annotations=WEB)
        with server.client() as http:
            answers = [
                http.post(INVOKE, json={}, headers={"X-Request-Id": "inv-1"}),  # invoke fast path
                http.post(f"{INVOKE}?blocking=true", json={}),  # a new id
                http.get("/api/v1/namespaces/_/actions"),  # the router
                http.get("/api/v1/namespaces/_/actions/nope"),
                http.get("/api/v1/web/guest/default/hello", headers={"X-Request-Id": "w-1"}),
                http.get("/api/v1/namespaces/_/actions/a%20b%0Afake"),  # one line even so
            ]
        ids = [answer.headers["x-request-id"] for answer in answers]
        found = wait_for_lines(server, ids)
    assert ids[0] == "inv-1" and ids[4] == "w-1"
    assert re.fullmatch(r"[0-9a-f]{20}", ids[1])
    lines = [found[i] for i in ids]
    assert [int(line["status"]) for line in lines] == [a.status_code for a in answers]
    assert [a.status_code for a in answers] == [202, 200, 200, 404, 200, 404]
    assert [(line["method"], line["path"]) for line in lines] == [
        ("POST", INVOKE),
        ("POST", INVOKE),
        ("GET", "/api/v1/namespaces/_/actions"),
        ("GET", "/api/v1/namespaces/_/actions/nope"),
        ("GET", "/api/v1/web/guest/default/hello"),
        ("GET", "/api/v1/namespaces/_/actions/a%20b%0Afake"),
    ]
    assert all(float(line["ms"]) > 0 for line in lines)


@pytest.mark.parametrize(
    ("env", "args"),
    [
        ({"WISP_ACCESS_LOG": "off"}, ()),
        ({"WISP_ACCESS_LOG": "on"}, ("--no-access-log",)),  # the flag wins
        ({}, ("--log-format", "json", "--no-access-log")),
    ],
    ids=["env", "flag", "json"],
)
def test_access_lines_can_be_turned_off(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...]
) -> None:
    with LiveServer(tmp_path, env=env, args=args) as server:
        server.deploy("hello", HELLO)
        with server.client() as http:
            for _ in range(5):
                assert http.post(f"{INVOKE}?blocking=true", json={}).status_code == 200
            assert http.get("/api/v1/namespaces/_/actions/nope").status_code == 404
        time.sleep(0.2)
        output = server.output()
    assert "wisp.access" not in output
    # The platform's other log lines are still there.
    if "--log-format" in args:
        loggers = {json.loads(line)["logger"] for line in output.splitlines()}
        assert {"wisp.server", "wisp.sandbox"} <= loggers
    else:
        assert re.search(r"^\S+ \S+ wisp\.sandbox INFO isolation: ", output, re.M)


def test_the_flag_turns_them_on_over_the_environment(tmp_path: Path) -> None:
    args = ("--access-log", "--log-format", "json")
    with LiveServer(tmp_path, env={"WISP_ACCESS_LOG": "off"}, args=args) as server:
        with server.client() as http:
            answer = http.get("/api/v1/namespaces/_/actions")
        wanted = answer.headers["x-request-id"]
        deadline = time.monotonic() + 10
        # The start-up polls of GET /api/v1 have lines too: wait for this request's.
        while time.monotonic() < deadline:
            mine = [doc for doc in json_lines(server) if doc["request_id"] == wanted]
            if mine:
                break
            time.sleep(0.02)
    assert [doc["path"] for doc in mine] == ["/api/v1/namespaces/_/actions"]


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT], ids=["TERM", "INT"])
@pytest.mark.parametrize("log_format", ["text", "json"])
def test_a_clean_stop_writes_every_pending_line(
    tmp_path: Path, signum: int, log_format: str
) -> None:
    count, callers = 240, 8
    server = LiveServer(tmp_path, args=("--log-format", log_format))
    with server:
        server.deploy("hello", HELLO)
        clients = [server.client() for _ in range(callers)]

        def call(i: int) -> str:
            http = clients[i % callers]
            path = f"{INVOKE}?blocking=true"
            answer = http.post(path, json={}, headers={"X-Request-Id": f"stop-{i}"})
            assert answer.status_code == 200, answer.text
            return answer.headers["x-request-id"]

        with ThreadPoolExecutor(callers) as pool:
            sent = set(pool.map(call, range(count)))
        assert server.proc is not None
        server.proc.send_signal(signum)  # as soon as the last answer is in
        assert server.stop() == 0
        for http in clients:
            http.close()
    if log_format == "json":
        logged = [str(doc["request_id"]) for doc in json_lines(server)]
    else:
        logged = [line["id"] for line in text_lines(server)]
    assert sent == {f"stop-{i}" for i in range(count)}
    assert sent <= set(logged), f"{len(sent - set(logged))} of {count} lines lost"


@pytest.mark.parametrize(
    ("env", "args", "message"),
    [
        ({"WISP_ACCESS_LOG": "yes"}, (), "Error: WISP_ACCESS_LOG='yes': must be one of on, off"),
        ({}, ("--access-log=off",), "Error: Option '--access-log' does not take a value."),
    ],
)
def test_bad_access_log_settings_are_named(
    tmp_path: Path, env: dict[str, str], args: tuple[str, ...], message: str
) -> None:
    done = subprocess.run(
        [wisp_executable(), "server", "--port", str(closed_port()), *args],
        env=wisp_env(tmp_path / "credentials.json", env),
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    assert done.stderr.strip().splitlines()[-1] == message
    assert not (tmp_path / ".wisp").exists()  # refused before anything was made
