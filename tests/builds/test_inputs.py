"""What a build reads from the function: requirements and .npmrc checks, the proxy's
allow list and address check."""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest

from wisp.builds.inputs import BuildInputRefused, npmrc, requirements
from wisp.builds.proxy import CONNECTIONS_MAX, RegistryProxy, allowed, outside


def folder(tmp_path: Path, files: dict[str, str]) -> Path:
    root = tmp_path / "fn"
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)
    return root


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("-r /etc/passwd\n", "line 1: '-r /etc/passwd': --requirement must name a file inside"),
        ("six\n--requirement=../x.txt\n", "line 2"),
        ("-c/etc/passwd\n", "line 1: '-c/etc/passwd': --constraint"),
        ("-r https://evil.example/r.txt\n", "line 1"),
        ("six\n\n--index-url http://evil\n", "line 3: --index-url is not allowed"),
        ("--index-url=http://evil\n", "line 1: --index-url"),
        ("-ihttp://evil\n", "line 1: --index-url"),
        ("--extra-index-url http://evil\n", "line 1: --extra-index-url"),
        ("-f http://evil/links\n", "line 1: --find-links"),
        ("--find-links=/opt\n", "line 1: --find-links"),
        ("--trusted-host evil\n", "line 1: --trusted-host"),
        ("--ind http://evil\n", "line 1: --index-url"),
        ("--extra=http://evil\n", "line 1: --extra-index-url"),
        ("--requ /etc/passwd\n", "line 1: '--requ /etc/passwd': --requirement"),
        ("--constr=/etc/passwd\n", "line 1: '--constr=/etc/passwd': --constraint"),
        ("six --index-url http://evil\n", "line 1: --index-url"),
        ("six \\\n  --index-url http://evil\n", "line 1: --index-url"),
        ("-e ../outside\n", "line 1: '-e ../outside' refers to a path outside"),
        ("pkg @ file:///etc/pkg\n", "line 1"),
        ("/opt/wheels/x.whl\n", "line 1"),
    ],
)
def test_requirements_that_reach_outside_are_refused(
    tmp_path: Path, text: str, message: str
) -> None:
    with pytest.raises(BuildInputRefused) as caught:
        requirements(folder(tmp_path, {"requirements.txt": text}))
    assert message in caught.value.message
    assert caught.value.message.startswith("requirements.txt line")
    assert caught.value.status == 400


def test_included_files_inside_decide_the_install_and_name_their_own_lines(tmp_path: Path) -> None:
    root = folder(
        tmp_path,
        {
            "requirements.txt": "# pinned\nsix==1.16.0  # comment\n-r sub/more.txt\n-r requirements.txt\n",
            "sub/more.txt": "-c constraints.txt\n",
            "sub/constraints.txt": "six<2\n",
        },
    )
    decided, local = requirements(root)
    assert b"six<2" in decided and not local
    (root / "sub" / "constraints.txt").write_text("six<2\n--index-url http://evil\n")
    with pytest.raises(BuildInputRefused, match=r"^sub/constraints.txt line 2: --index-url"):
        requirements(root)


def test_local_paths_inside_are_allowed_and_flagged(tmp_path: Path) -> None:
    root = folder(tmp_path, {"requirements.txt": "-e ./lib\n./other\n", "lib/setup.py": ""})
    assert requirements(root)[1] is True
    assert requirements(folder(tmp_path / "b", {"requirements.txt": "six\n"}))[1] is False


def test_npmrc_registry_overrides_are_refused(tmp_path: Path) -> None:
    for text, line in (("registry=http://evil/\n", 1), ("; c\n@corp:registry = http://evil/\n", 2)):
        root = folder(tmp_path / str(line), {".npmrc": text})
        with pytest.raises(BuildInputRefused, match=rf"^\.npmrc line {line}: .*registry"):
            npmrc(root)
    npmrc(folder(tmp_path / "fine", {".npmrc": "save-exact=true\n"}))  # other settings stay


def test_registry_allow_list() -> None:
    registries = ["pypi.org", "*.pythonhosted.org"]
    assert allowed("pypi.org", registries) and allowed("PyPI.org.", registries)
    assert allowed("files.pythonhosted.org", registries)
    assert not allowed("pythonhosted.org", registries)
    assert not allowed("evilpypi.org", registries) and not allowed("pypi.org.evil", registries)


@pytest.mark.parametrize(
    ("address", "out"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("169.254.169.254", False),
        ("192.168.1.1", False),
        ("::1", False),
        ("::ffff:127.0.0.1", False),
        ("fd00::1", False),
        ("151.101.0.223", True),
        ("2a04:4e42::223", True),
    ],
)
def test_registry_addresses_must_be_outside(address: str, out: bool) -> None:
    assert outside(address) is out


def test_the_proxy_refuses_what_is_not_a_registry_and_bounds_its_tunnels() -> None:
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(128)
    address = listener.getsockname()
    proxy = RegistryProxy(listener, ["pypi.org", "localhost"])
    clients = []
    try:
        for destination, status in (
            ("127.0.0.1:5432", b"403"),
            ("localhost:443", b"403"),  # allowed by name, but leads back to the host
            ("pypi.org:80", b"403"),
        ):
            with socket.create_connection(address, timeout=10) as client:
                client.sendall(f"CONNECT {destination} HTTP/1.1\r\n\r\n".encode())
                assert client.recv(100).split()[1] == status
        with socket.create_connection(address, timeout=10) as client:
            client.sendall(b"GET http://pypi.org/ HTTP/1.1\r\n\r\n")
            assert client.recv(100).split()[1] == b"405"
        assert proxy.refused == ["127.0.0.1:5432", "localhost:443", "pypi.org:80"]
        # Tunnels held open (idle clients) count: past the cap, a connection is closed.
        for _ in range(CONNECTIONS_MAX):
            clients.append(socket.create_connection(address, timeout=10))
        time.sleep(0.5)
        extra = socket.create_connection(address, timeout=10)
        assert extra.recv(10) == b""  # closed at once
        extra.close()
        clients[0].settimeout(0.3)
        with pytest.raises(TimeoutError):
            clients[0].recv(10)  # still waiting for its request
    finally:
        proxy.close()
        for client in clients:
            client.close()
