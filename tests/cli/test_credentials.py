from __future__ import annotations

import json
import stat
from pathlib import Path

import pytest

from wisp.cli.credentials import (
    load_credentials,
    read_contexts,
    save_credentials,
    save_server_context,
)
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
        "current": "127.0.0.1:3233",
        "contexts": {
            "127.0.0.1:3233": {
                "apihost": "http://127.0.0.1:3233",
                "auth": "u:k",
                "namespace": "guest",
            }
        },
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


def test_login_adds_a_context_and_makes_it_current(config: Path) -> None:
    save_credentials("http://a:1", "u:ka", "guest")
    save_credentials("https://b.example", "u:kb", "team", "prod")
    contexts = read_contexts(config)
    assert contexts.current == "prod" and set(contexts.contexts) == {"a:1", "prod"}
    assert load_credentials().apihost == "https://b.example"


def test_a_server_does_not_take_the_current_context(config: Path) -> None:
    save_credentials("http://127.0.0.1:3233", "u:k1", "guest")
    done = save_server_context("http://127.0.0.1:42163", "u:k2", "guest")
    assert done.startswith("created context 127.0.0.1:42163 in ")
    assert "not current: 127.0.0.1:3233 is (`wisp context use 127.0.0.1:42163` switches)" in done
    creds = load_credentials()
    assert (creds.apihost, creds.auth) == ("http://127.0.0.1:3233", "u:k1")  # untouched
    # A restart of the current one updates its key and keeps it current.
    done = save_server_context("http://127.0.0.1:3233", "u:k3", "guest")
    assert done.startswith("updated context 127.0.0.1:3233") and done.endswith(", current")
    assert load_credentials().auth == "u:k3"
    assert read_contexts(config).contexts["127.0.0.1:42163"].auth == "u:k2"


def test_a_server_becomes_current_when_no_context_is(config: Path) -> None:
    assert save_server_context("http://127.0.0.1:5000", "u:k", "guest").endswith(", current")
    assert load_credentials().apihost == "http://127.0.0.1:5000"


def test_wisp_context_picks_one_for_a_command(
    config: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    save_credentials("http://a:1", "u:ka", "guest")
    save_credentials("http://b:2", "u:kb", "guest")
    monkeypatch.setenv("WISP_CONTEXT", "a:1")
    assert load_credentials().auth == "u:ka"
    monkeypatch.setenv("WISP_CONTEXT", "nope")
    with pytest.raises(CliError, match="WISP_CONTEXT=nope: no such context; contexts: a:1, b:2"):
        load_credentials()


def test_the_single_context_file_of_older_versions_is_read(config: Path) -> None:
    config.parent.mkdir(parents=True)
    config.write_text('{"apihost": "http://h:1", "auth": "u:k", "namespace": "guest"}')
    creds = load_credentials()
    assert (creds.apihost, creds.auth, creds.namespace) == ("http://h:1", "u:k", "guest")
    save_server_context("http://h:2", "u:k2", "guest")  # rewritten in the new shape
    contexts = read_contexts(config)
    assert contexts.current == "h:1" and set(contexts.contexts) == {"h:1", "h:2"}
