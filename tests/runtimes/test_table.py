"""The runtimes table: every kind DigitalOcean documents is accepted the same way."""

from __future__ import annotations

import pytest

from wisp.errors import UnknownKind
from wisp.runtimes import DOCUMENTED, RuntimeTable, discover, python_runtime


def test_every_documented_kind_of_an_installed_language_is_accepted() -> None:
    table = RuntimeTable(discover())
    installed = {r.family: r for r in table.runtimes.values() if r.default}
    assert "python" in installed
    for family, kinds in DOCUMENTED.items():
        if family not in installed:
            continue
        runtime = installed[family]
        for kind in kinds:
            assert table.resolve(kind) is runtime, kind
            if kind == runtime.kind:
                assert table.substitute(kind) is None
            else:
                assert table.substitute(kind) is runtime
                assert table.mapping()[kind] == runtime.kind
                warning = table.alias_warning(kind)
                assert warning is not None and runtime.version in warning


def test_go_and_php_kinds_documented_by_digitalocean_are_in_the_table() -> None:
    # The walk-through's project.yml files: refused before, whatever was installed.
    table = RuntimeTable(discover())
    families = {r.family for r in table.runtimes.values()}
    for kind in ("go:1.20", "go:1.17", "python:3.9", "php:8.0", "nodejs:14", "nodejs:18"):
        if kind.partition(":")[0] in families:
            assert table.resolve(kind).family == kind.partition(":")[0]


@pytest.mark.parametrize(
    ("kind", "package"),
    [("php:8.0", "php-cli"), ("go:1.20", "golang-go"), ("nodejs:18", "nodejs")],
)
def test_a_kind_of_a_language_not_installed_names_its_package(kind: str, package: str) -> None:
    table = RuntimeTable([python_runtime()])
    with pytest.raises(
        UnknownKind, match=f"not installed on this server; the Debian package {package}"
    ):
        table.resolve(kind)


def test_an_unknown_version_is_still_refused() -> None:
    table = RuntimeTable([python_runtime()])
    with pytest.raises(
        UnknownKind, match=r"'python:2.7' is not supported; supported kinds: .*python:3.9"
    ):
        table.resolve("python:2.7")


def test_describe_shows_the_mapping_with_the_version_that_runs() -> None:
    python = python_runtime()
    table = RuntimeTable([python])
    entries = {e["kind"]: e for e in table.describe()["python"]}
    assert entries[python.kind]["version"] == python.version
    for kind in DOCUMENTED["python"]:
        if kind != python.kind:
            assert entries[kind]["alias"] == python.kind
            assert entries[kind]["version"] == python.version


def test_the_banner_names_what_runs_and_the_package_for_what_is_missing() -> None:
    table = RuntimeTable([python_runtime()])
    assert table.missing() == {"nodejs": "nodejs", "go": "golang-go", "php": "php-cli"}
    banner = table.banner()
    python = python_runtime()
    assert banner["runtimes"] == f"{python.kind} ({python.version})"
    assert banner["missing"] == (
        "Go (apt-get install golang-go); Node.js (apt-get install nodejs); "
        "PHP (apt-get install php-cli)"
    )
    everything = RuntimeTable(discover())
    if not everything.missing():  # a host with every language: no "missing" line at all
        assert set(everything.banner()) == {"runtimes"}
