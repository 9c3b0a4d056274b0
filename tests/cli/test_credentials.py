from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from wisp.cli.credentials import load_credentials, save_credentials
from wisp.cli.errors import CliError


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "nested" / "credentials.json"
    monkeypatch.setenv("WISP_CONFIG", str(path))
    monkeypatch.delenv("WISP_APIHOST", raising=False)
    monkeypatch.delenv("WISP_AUTH", raising=False)
    return path


def test_save_writes_owner_only_json(config: Path) -> None:
    assert save_credentials("http://127.0.0.1:3233/", "u:k", "guest") == config
    assert json.loads(config.read_text()) == {
        "apihost": "http://127.0.0.1:3233",
        "auth": "u:k",
        "namespace": "guest",
    }
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    config.chmod(0o644)
    save_credentials("http://h", "u:k2", "guest")  # rewriting tightens the mode again
    assert stat.S_IMODE(config.stat().st_mode) == 0o600
    assert list(config.parent.iterdir()) == [config]  # no temp file left behind


def test_load_reads_the_file(config: Path) -> None:
    save_credentials("http://h:1", "u:k", "guest")
    creds = load_credentials()
    assert (creds.apihost, creds.auth, creds.namespace) == ("http://h:1", "u:k", "guest")


def test_environment_overrides_the_file(config: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    save_credentials("http://h:1", "u:k", "guest")
    monkeypatch.setenv("WISP_APIHOST", "http://other:2/")
    creds = load_credentials()
    assert (creds.apihost, creds.auth, creds.namespace) == ("http://other:2", "u:k", "guest")
    monkeypatch.setenv("WISP_AUTH", "x:y")
    creds = load_credentials()
    assert (creds.auth, creds.namespace) == ("x:y", "")  # the stored namespace was u:k's


def test_environment_alone_is_enough(config: Path) -> None:
    creds = load_credentials(
        {"WISP_CONFIG": str(config), "WISP_APIHOST": "http://h", "WISP_AUTH": "a:b"}
    )
    assert (creds.apihost, creds.auth) == ("http://h", "a:b")


def test_missing_credentials(config: Path) -> None:
    with pytest.raises(CliError, match="not logged in"):
        load_credentials()


def test_corrupt_file(config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text("{not json")
    with pytest.raises(CliError, match="cannot read credentials"):
        load_credentials()


def test_default_location(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.delenv("WISP_CONFIG", raising=False)
    monkeypatch.setenv("HOME", str(tmp_path))
    path = save_credentials("http://h", "u:k", "guest")
    assert path == tmp_path / ".config" / "wisp" / "credentials.json"
