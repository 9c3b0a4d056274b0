"""`wisp server` as a process: start-up, shutdown, and no orphaned sandboxes."""

from __future__ import annotations

import base64
import json
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.cli.conftest import Result, closed_port, wisp_executable
from tests.live import LiveServer, wait_gone, wisp_env
from wisp.sandbox.layers import landlock_abi


def run_server(tmp_path: Path, **env: str) -> Iterator[LiveServer]:
    with LiveServer(tmp_path, env=env) as live:
        yield live


@pytest.fixture
def server(tmp_path: Path) -> Iterator[LiveServer]:
    yield from run_server(tmp_path)


def deploy_and_invoke(server: LiveServer) -> None:
    server.deploy("f", "def main(args):\n    return {'ok': True}\n")
    status, body = server.call(
        "POST", "/api/v1/namespaces/_/actions/f?blocking=true&result=true", {}
    )
    assert (status, body) == (200, {"ok": True})


def test_first_start_creates_guest_key_and_credentials(server):
    assert server.key.count(":") == 1
    assert (server.data_dir / "guest.key").stat().st_mode & 0o077 == 0
    stored = json.loads(server.config.read_text())
    name = f"127.0.0.1:{server.port}"
    assert stored["current"] == name
    mine = stored["contexts"][name]
    assert mine["auth"] == server.key and mine["namespace"] == "guest"
    assert mine["apihost"] == f"http://127.0.0.1:{server.port}"
    assert f"cli:       created context {name} in {server.config}, current" in server.output()


def test_startup_states_isolation_level(server):
    assert server.stop(signal.SIGTERM) == 0
    assert "isolation:" in server.output()
    assert "Traceback" not in server.output()


def test_an_open_live_stream_does_not_hold_the_stop_up(server):
    """uvicorn waits for running responses for its graceful timeout (10 s) and then
    cancels them with a traceback: a live stream must end as soon as the stop begins."""
    user, key = server.auth
    token = base64.b64encode(f"{user}:{key}".encode()).decode()
    with socket.create_connection(("127.0.0.1", server.port), timeout=5) as sock:
        sock.sendall(
            b"GET /api/v1/namespaces/_/activations/stream HTTP/1.1\r\n"
            + f"host: x\r\nauthorization: Basic {token}\r\n\r\n".encode()
        )
        head = sock.recv(65536)
        assert head.startswith(b"HTTP/1.1 200") and b"stream open" in head, head
        started = time.monotonic()
        assert server.stop(signal.SIGTERM) == 0
        took = time.monotonic() - started
        rest = b""
        while chunk := sock.recv(65536):
            rest += chunk
    assert took < 5, f"the stop took {took:.1f}s"
    assert rest.endswith(b"0\r\n\r\n"), rest  # the response ended properly
    assert "Traceback" not in server.output() and "Cancel" not in server.output()


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_graceful_shutdown_leaves_no_sandbox_processes(server, signum):
    deploy_and_invoke(server)
    pids = server.sandbox_pids()
    assert len(pids) >= 2  # a zygote and at least the instance that ran
    assert server.stop(signum) == 0
    assert wait_gone(pids) == []


def test_killed_server_takes_its_sandboxes_with_it(server):
    deploy_and_invoke(server)
    pids = server.sandbox_pids()
    server.stop(signal.SIGKILL)  # no shutdown code runs; parent-death signals must
    assert wait_gone(pids) == []


def test_restart_keeps_data_and_key(server, tmp_path):
    deploy_and_invoke(server)
    key = server.key
    server.stop()
    with LiveServer(tmp_path, port=server.port, data_dir=server.data_dir) as again:
        status, body = again.call(
            "POST", "/api/v1/namespaces/_/actions/f?blocking=true&result=true", {}
        )
        assert (status, body) == (200, {"ok": True})
        assert again.key == key


def test_taken_port_is_a_one_line_error_and_keeps_credentials(server, tmp_path):
    before = server.config.read_text()
    other = subprocess.run(
        [
            wisp_executable(),
            "server",
            "--port",
            str(server.port),
            "--data-dir",
            str(tmp_path / "other"),
        ],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert other.returncode == 1
    assert other.stderr.strip().splitlines()[-1] == (
        f"Error: cannot listen on 127.0.0.1:{server.port}: Address already in use"
    )
    assert "Traceback" not in other.stderr
    assert server.config.read_text() == before


@pytest.fixture
def tight_server(tmp_path: Path) -> Iterator[LiveServer]:
    env = {"WISP_NAMESPACE_CONCURRENT": "1", "WISP_NAMESPACE_PER_MINUTE": "3"}
    with LiveServer(tmp_path, env=env) as live:
        yield live


def test_namespace_quotas_answer_429_and_run_nothing(tight_server):
    server = tight_server
    if time.time() % 60 > 45:  # keep the whole test inside one quota minute
        time.sleep(61 - time.time() % 60)
    code = "import time\ndef main(args):\n    time.sleep(float(args.get('t', 0)))\n    return {}\n"
    server.deploy("slow", code)
    status, _ = server.call("POST", "/api/v1/namespaces/_/actions/slow?blocking=false", {"t": 1.5})
    assert status == 202
    status, refused = server.call("POST", "/api/v1/namespaces/_/actions/slow?blocking=false", {})
    assert status == 429
    assert refused["error"] == "Too many concurrent requests in flight (count: 2, allowed: 1)."
    time.sleep(2)
    for _ in range(2):  # the refused call did not count: two more fit in the minute
        status, _ = server.call("POST", "/api/v1/namespaces/_/actions/slow?blocking=true", {})
        assert status == 200
    status, refused = server.call("POST", "/api/v1/namespaces/_/actions/slow?blocking=true", {})
    assert status == 429
    assert refused["error"] == "Too many requests in the last minute (count: 4, allowed: 3)."
    # Refused invocations left no activation records: only the three that ran.
    status, listed = server.call("GET", "/api/v1/namespaces/_/activations?name=slow")
    assert status == 200 and len(listed) == 3


def test_admin_namespace_limits(server):
    def admin(*args: str) -> Result:
        return server.run("admin", "namespace", "limits", *args, "--data-dir", str(server.data_dir))

    done = admin("guest", "--concurrent", "7", "--per-minute", "70", "--json")
    assert done.code == 0, done.err
    assert json.loads(done.out) == {"concurrentActions": 7, "invocationsPerMinute": 70}
    status, limits = server.call("GET", "/api/v1/namespaces/_/limits")
    assert status == 200 and limits["concurrentInvocations"] == 7
    assert json.loads(admin("guest", "--reset", "--json").out) == {}
    missing = admin("nobody")
    assert missing.code == 1 and missing.err.strip() == "Error: namespace 'nobody' does not exist"
    bad = admin("guest", "--concurrent", "0")
    assert bad.code == 2 and "Traceback" not in bad.err


def test_healthz_reports_isolation(server):
    status, body = server.call("GET", "/healthz")
    assert status == 200 and body["status"] == "ok"
    assert body["isolation"]["level"] in ("minimal", "userns", "standard", "strict")
    abi = landlock_abi()
    assert (f"landlock(abi {abi})" if abi else "no-landlock") in body["isolation"]["layers"]
    if os.geteuid() == 0:
        assert "seccomp" in body["isolation"]["layers"]
        assert "namespaces(pid,mount,ipc,uts,cgroup)" in body["isolation"]["layers"]
        if shutil.which("nft"):
            assert "egress-veth(10.203.0.0/16)" in body["isolation"]["layers"]


def test_isolation_requirement_refuses_to_start_below_it(tmp_path):
    # WISP_CGROUPS=off drops this host below strict
    env = wisp_env(tmp_path / "credentials.json", {"WISP_CGROUPS": "off"})
    done = subprocess.run(
        [
            wisp_executable(),
            "server",
            "--port",
            str(closed_port()),
            "--data-dir",
            str(tmp_path / "d"),
            "--isolation",
            "strict",
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: isolation 'strict' is required but this host achieves"), last
    assert "Traceback" not in done.stderr


def test_an_unreachable_database_is_a_one_line_error_naming_it(tmp_path):
    url = f"postgresql://wisp:hunter2@127.0.0.1:{closed_port()}/wisp"
    env = wisp_env(tmp_path / "credentials.json", {"WISP_DATABASE_URL": url})
    done = subprocess.run(
        [wisp_executable(), "server", "--port", str(closed_port()), "--data-dir", str(tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 1
    last = done.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: database postgresql+psycopg://wisp:***@127.0.0.1:"), last
    assert "is unavailable" in last and "hunter2" not in done.stderr
    assert "Traceback" not in done.stderr


def test_kill_9_during_a_burst_loses_no_accepted_activation(tmp_path):
    with LiveServer(tmp_path) as server:
        code = "import time\ndef main(args):\n    time.sleep(0.3)\n    return {'n': args['n']}\n"
        server.deploy("burst", code)
        accepted = []
        for n in range(60):
            status, body = server.call(
                "POST", "/api/v1/namespaces/_/actions/burst?blocking=false", {"n": n}
            )
            assert status == 202
            accepted.append(body["activationId"])
        time.sleep(0.4)  # some finished, some running, some queued
        pids = server.sandbox_pids()
        server.stop(signal.SIGKILL)
        assert wait_gone(pids) == []  # no sandbox outlives the server
    with LiveServer(tmp_path) as restarted:
        completed = failed = 0
        deadline = time.monotonic() + 60  # what never started runs again after the restart
        for aid in accepted:
            while True:
                status, record = restarted.call("GET", f"/api/v1/namespaces/_/activations/{aid}")
                if status == 200 or time.monotonic() > deadline:
                    break
                time.sleep(0.1)
            assert status == 200, (aid, record)
            if record["statusCode"] == 0:
                completed += 1
            else:
                assert record["statusCode"] == 3
                assert record["response"]["result"]["error"] == (
                    "interrupted: the platform stopped while this activation ran"
                )
                failed += 1
        assert completed + failed == len(accepted)
        assert failed > 0  # the kill really interrupted work
        print(f"after kill -9: {completed} completed, {failed} recorded as failed")


def test_a_second_replica_says_the_truth_about_the_guest_key(
    tmp_path: Path, empty_postgres_url: str
) -> None:
    env = {"WISP_DATABASE_URL": empty_postgres_url}
    with LiveServer(tmp_path, env=env, name="first") as first:
        assert f"guest key: {first.data_dir / 'guest.key'}" in first.output()
        with LiveServer(tmp_path, env=env, name="second") as second:
            assert not (second.data_dir / "guest.key").exists()
            banner = second.output()
            assert "guest was created by another server" in banner
            assert "wisp admin namespace key guest" in banner
            assert "guest.key" not in banner
            issued = second.run(
                "admin", "namespace", "key", "guest", "--data-dir", str(second.data_dir)
            )
            assert issued.code == 0, issued.err
            assert "previous key no longer works" in issued.err
            uuid, _, key = issued.out.strip().partition(":")
            ok = httpx.get(f"{second.url}/api/v1/namespaces", auth=(uuid, key))
            assert ok.status_code == 200 and ok.json() == ["guest"]
            old = httpx.get(f"{second.url}/api/v1/namespaces", auth=first.auth)
            assert old.status_code == 401
            missing = second.run(
                "admin", "namespace", "key", "nobody", "--data-dir", str(second.data_dir)
            )
            assert missing.code == 1 and "namespace 'nobody' does not exist" in missing.err
        # The first server's key file no longer works either: a restart says so.
        first.stop()
        first.start()
        assert "guest.key no longer works" in first.output()


def test_startup_lists_runtimes_and_the_package_for_each_missing_one(tmp_path: Path) -> None:
    # A PATH without go and php: every other command of the host is linked in.
    bare = tmp_path / "bin"
    bare.mkdir()
    for folder in ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"):
        for program in Path(folder).iterdir() if Path(folder).is_dir() else ():
            link = bare / program.name
            if program.name not in ("go", "php") and not link.exists():
                link.symlink_to(program)
    with LiveServer(tmp_path, env={"PATH": str(bare)}) as server:
        output = server.output()
        (runtimes,) = [line for line in output.splitlines() if line.startswith("  runtimes:")]
        assert "python:3." in runtimes and "go:" not in runtimes and "php:" not in runtimes
        (missing,) = [line for line in output.splitlines() if line.startswith("  missing:")]
        assert "Go (apt-get install golang-go)" in missing
        assert "PHP (apt-get install php-cli)" in missing
        assert "Node.js" not in missing or "nodejs:" not in runtimes
