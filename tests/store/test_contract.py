"""The Store contract, run against every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses

import pytest

from wisp.errors import Conflict, VersionTaken
from wisp.ids import activation_id
from wisp.models import (
    APPLICATION_ERROR,
    DEFAULT_PACKAGE,
    SUCCESS,
    Action,
    ActionLimits,
    Activation,
    Alias,
    Exec,
    Namespace,
    Package,
    StoredSecret,
)
from wisp.store.base import Store


def namespace(name: str = "guest", uuid: str | None = None) -> Namespace:
    return Namespace(
        name=name,
        uuid=uuid or f"uuid-{name}",
        key_hash="ab" * 32,
        created=1_700_000_000_000,
        limits={"concurrent": 10, "perMinute": 600},
    )


def package(name: str, ns: str = "guest", **changes: object) -> Package:
    pkg = Package(
        namespace=ns,
        name=name,
        parameters=[{"key": "region", "value": "fra1"}],
        annotations=[{"key": "description", "value": "ünïcode ✓"}],
        publish=True,
        version="0.0.1",
        updated=1_700_000_000_000,
    )
    return dataclasses.replace(pkg, **changes)


def action(
    name: str,
    pkg: str = DEFAULT_PACKAGE,
    ns: str = "guest",
    version: str = "0.0.1",
    updated: int = 1_700_000_000_000,
    code: str = "def main(args):\n    return args\n",
) -> Action:
    return Action(
        namespace=ns,
        package=pkg,
        name=name,
        exec=Exec(kind="python:3.11", code=code, main="main", digest=f"sha-{version}"),
        limits=ActionLimits(timeout=3000, memory=256, logs=1024),
        parameters=[{"key": "TOKEN", "value": "s3cret", "init": True}],
        annotations=[{"key": "web-export", "value": True}],
        version=version,
        updated=updated,
    )


def activation(
    name: str, start: int, ns: str = "guest", status: int = SUCCESS, aid: str | None = None
) -> Activation:
    return Activation(
        activation_id=aid or activation_id(),
        namespace=ns,
        name=name,
        version="0.0.1",
        subject=ns,
        start=start,
        end=start + 7,
        status_code=status,
        result={"body": "héllo", "nested": [1, 2.5, None, {"ok": True}]},
        logs=["2024-01-01T00:00:00Z stdout: hi"],
        annotations=[{"key": "kind", "value": "python:3.11"}],
        cause=None,
        publish=False,
        result_size=42,
    )


# -- namespaces --------------------------------------------------------------


def test_namespace_roundtrip(store: Store) -> None:
    ns = namespace()
    store.create_namespace(ns)
    assert store.get_namespace("guest") == ns
    assert store.namespace_by_uuid(ns.uuid) == ns
    assert store.get_namespace("nobody") is None
    assert store.namespace_by_uuid("no-such-uuid") is None


def test_set_namespace_limits(store: Store) -> None:
    store.create_namespace(namespace("guest"))
    assert store.set_namespace_limits("guest", {"concurrentActions": 5}) is True
    got = store.get_namespace("guest")
    assert got is not None and got.limits == {"concurrentActions": 5}
    assert store.set_namespace_limits("guest", {}) is True
    got = store.get_namespace("guest")
    assert got is not None and got.limits == {}
    assert store.set_namespace_limits("nobody", {"concurrentActions": 1}) is False


def test_set_namespace_key(store: Store) -> None:
    ns = namespace("guest")
    store.create_namespace(ns)
    assert store.set_namespace_key("guest", "f" * 64) is True
    got = store.namespace_by_uuid(ns.uuid)
    assert got is not None and got.key_hash == "f" * 64 and got.name == "guest"
    assert store.set_namespace_key("nobody", "f" * 64) is False


def test_list_namespaces_by_name(store: Store) -> None:
    for name in ["zeta", "alpha", "mid"]:
        store.create_namespace(namespace(name))
    assert [n.name for n in store.list_namespaces()] == ["alpha", "mid", "zeta"]


def test_duplicate_namespace_is_a_conflict(store: Store) -> None:
    store.create_namespace(namespace("guest", uuid="u1"))
    with pytest.raises(Conflict, match="guest"):
        store.create_namespace(namespace("guest", uuid="u2"))
    with pytest.raises(Conflict):
        store.create_namespace(namespace("other", uuid="u1"))
    assert [n.uuid for n in store.list_namespaces()] == ["u1"]


# -- packages ----------------------------------------------------------------


def test_package_put_get_replace(store: Store) -> None:
    store.put_package(package("utils"))
    assert store.get_package("guest", "utils") == package("utils")
    replaced = package("utils", parameters=[], publish=False, version="0.0.2", updated=5)
    store.put_package(replaced)
    assert store.get_package("guest", "utils") == replaced
    assert store.get_package("other", "utils") is None
    assert store.list_packages("guest", 10, 0) == [replaced]


def test_package_delete(store: Store) -> None:
    store.put_package(package("utils"))
    store.put_package(package("utils", ns="other"))
    assert store.delete_package("guest", "utils") is True
    assert store.get_package("guest", "utils") is None
    assert store.delete_package("guest", "utils") is False
    assert store.get_package("other", "utils") is not None


def test_list_packages_by_name_with_limit_and_skip(store: Store) -> None:
    for name in ["e", "b", "d", "a", "c"]:
        store.put_package(package(name))
    store.put_package(package("0", ns="other"))
    assert [p.name for p in store.list_packages("guest", 30, 0)] == ["a", "b", "c", "d", "e"]
    assert [p.name for p in store.list_packages("guest", 2, 0)] == ["a", "b"]
    assert [p.name for p in store.list_packages("guest", 2, 3)] == ["d", "e"]
    assert store.list_packages("guest", 2, 5) == []
    assert store.list_packages("nobody", 30, 0) == []


# -- actions -----------------------------------------------------------------


def test_action_put_get(store: Store) -> None:
    hello = action("hello", pkg="demo")
    store.put_action(hello)
    assert store.get_action("guest", "demo", "hello") == hello
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") is None
    assert store.get_action("other", "demo", "hello") is None


def test_put_action_keeps_every_version(store: Store) -> None:
    # ``updated`` going backwards must not reorder versions: oldest = first put.
    v1 = action("hello", version="0.0.1", updated=300, code="v1")
    v2 = action("hello", version="0.0.2", updated=200, code="v2")
    v3 = action("hello", version="0.0.3", updated=100, code="v3")
    for a in (v1, v2, v3):
        store.put_action(a)
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") == v3
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == [
        "0.0.1",
        "0.0.2",
        "0.0.3",
    ]
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1") == v1
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.2") == v2
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.9") is None
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "nothing") == []


def test_putting_a_version_again_keeps_its_place(store: Store) -> None:
    first = action("hello", version="0.0.1", updated=100)
    store.put_action(first)
    store.put_action(action("hello", version="0.0.2", code="v2"))
    rollback = action("hello", version="0.0.1", updated=9_999_999_999_999)
    store.put_action(rollback)
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") == rollback
    # The version row is immutable: the rollback only points the action at it.
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1") == first
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == ["0.0.1", "0.0.2"]


def test_a_version_is_never_rewritten_with_other_content(store: Store) -> None:
    v1 = action("hello", version="0.0.1", code="v1")
    v2 = action("hello", version="0.0.2", code="mine")
    store.put_action(v1)
    store.put_action(v2)
    theirs = action("hello", version="0.0.2", code="theirs")  # computed from 0.0.1 as well
    with pytest.raises(VersionTaken, match=r"version 0\.0\.2 of action"):
        store.put_action(theirs)
    # Nothing changed: neither the version nor the current action.
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.2") == v2
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") == v2
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == ["0.0.1", "0.0.2"]


def test_a_version_keeps_who_made_it(store: Store) -> None:
    made = dataclasses.replace(action("hello", version="0.0.1"), subject="alice")
    store.put_action(made)
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1") == made
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") == made
    # Put again by someone else with the same content: the version is not rewritten.
    store.put_action(dataclasses.replace(made, subject="bob"))
    kept = store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1")
    assert kept is not None and kept.subject == "alice"


def test_prune_action_versions_keeps_the_newest_the_pinned_and_the_current(store: Store) -> None:
    for i in range(1, 8):
        store.put_action(action("hello", version=f"0.0.{i}", code=f"v{i}"))
    store.put_action(action("hello", pkg="demo", version="0.0.1"))
    # The action runs 0.0.2 again (an old-style rollback that only points at it).
    store.put_action(action("hello", version="0.0.2", code="v2"))
    pruned = store.prune_action_versions("guest", DEFAULT_PACKAGE, "hello", 3, pinned={"0.0.4"})
    assert pruned == ["0.0.1", "0.0.3"]
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == [
        "0.0.2",
        "0.0.4",
        "0.0.5",
        "0.0.6",
        "0.0.7",
    ]
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1") is None
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.5") is not None
    assert store.prune_action_versions("guest", DEFAULT_PACKAGE, "hello", 3) == ["0.0.4"]
    # Nothing else pruned: other packages, an action with few versions, a missing action.
    assert store.list_action_versions("guest", "demo", "hello") == ["0.0.1"]
    assert store.prune_action_versions("guest", "demo", "hello", 3) == []
    assert store.prune_action_versions("guest", DEFAULT_PACKAGE, "nothing", 3) == []


def test_aliases_of_an_action(store: Store) -> None:
    store.put_action(action("hello", version="0.0.1"))
    store.put_action(action("hello", pkg="demo", version="0.0.1"))
    live = Alias("guest", DEFAULT_PACKAGE, "hello", "live", "0.0.1", updated=5, subject="alice")
    store.put_alias(live)
    store.put_alias(Alias("guest", DEFAULT_PACKAGE, "hello", "beta", "0.0.1", updated=6))
    store.put_alias(Alias("guest", "demo", "hello", "live", "0.0.1"))
    assert store.get_alias("guest", DEFAULT_PACKAGE, "hello", "live") == live
    assert store.get_alias("guest", DEFAULT_PACKAGE, "hello", "nope") is None
    assert [a.alias for a in store.list_aliases("guest", DEFAULT_PACKAGE, "hello")] == [
        "beta",
        "live",
    ]
    repointed = dataclasses.replace(live, version="0.0.2", updated=7, subject="bob")
    store.put_alias(repointed)
    assert store.get_alias("guest", DEFAULT_PACKAGE, "hello", "live") == repointed
    assert store.delete_alias("guest", DEFAULT_PACKAGE, "hello", "beta") is True
    assert store.delete_alias("guest", DEFAULT_PACKAGE, "hello", "beta") is False
    assert store.list_aliases("guest", DEFAULT_PACKAGE, "hello") == [repointed]
    # Deleting the action deletes its aliases, and only its own.
    store.delete_action("guest", DEFAULT_PACKAGE, "hello")
    assert store.list_aliases("guest", DEFAULT_PACKAGE, "hello") == []
    assert len(store.list_aliases("guest", "demo", "hello")) == 1


def test_delete_action_removes_its_versions(store: Store) -> None:
    store.put_action(action("hello", version="0.0.1"))
    store.put_action(action("hello", version="0.0.2"))
    store.put_action(action("hello", pkg="demo", version="0.0.1"))
    assert store.delete_action("guest", DEFAULT_PACKAGE, "hello") is True
    assert store.get_action("guest", DEFAULT_PACKAGE, "hello") is None
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == []
    assert store.get_action_version("guest", DEFAULT_PACKAGE, "hello", "0.0.1") is None
    assert store.delete_action("guest", DEFAULT_PACKAGE, "hello") is False
    # Same name, other package: untouched.
    assert store.list_action_versions("guest", "demo", "hello") == ["0.0.1"]
    # A deleted action can be created again from scratch.
    store.put_action(action("hello", version="0.0.5"))
    assert store.list_action_versions("guest", DEFAULT_PACKAGE, "hello") == ["0.0.5"]


def test_list_and_count_actions(store: Store) -> None:
    for pkg, name in [("demo", "b"), ("demo", "a"), (DEFAULT_PACKAGE, "z"), ("api", "m")]:
        store.put_action(action(name, pkg=pkg))
    store.put_action(action("x", pkg="demo", ns="other"))

    def paths(actions: list[Action]) -> list[str]:
        return [a.path for a in actions]

    assert paths(store.list_actions("guest", "demo", 30, 0)) == ["demo/a", "demo/b"]
    assert paths(store.list_actions("guest", DEFAULT_PACKAGE, 30, 0)) == ["z"]
    assert paths(store.list_actions("guest", None, 30, 0)) == ["api/m", "z", "demo/a", "demo/b"]
    assert paths(store.list_actions("guest", None, 2, 1)) == ["z", "demo/a"]
    assert paths(store.list_actions("guest", "demo", 1, 1)) == ["demo/b"]
    assert store.list_actions("guest", "nothing", 30, 0) == []
    assert store.count_actions("guest", None) == 4
    assert store.count_actions("guest", "demo") == 2
    assert store.count_actions("guest", "nothing") == 0
    assert store.count_actions("other", None) == 1


# -- activations -------------------------------------------------------------


def test_activation_insert_and_get(store: Store) -> None:
    records = [activation("demo/hello", 1000 + i) for i in range(50)]
    records[3] = dataclasses.replace(records[3], status_code=APPLICATION_ERROR, cause="abc")
    records[4] = dataclasses.replace(records[4], result=None, logs=[])
    store.insert_activations(records)
    for record in records:
        assert store.get_activation("guest", record.activation_id) == record
    assert store.get_activation("other", records[0].activation_id) is None
    assert store.get_activation("guest", "f" * 32) is None


def test_insert_activations_is_idempotent(store: Store) -> None:
    record = activation("hello", 1000)
    store.insert_activations([])
    store.insert_activations([record])
    store.insert_activations([record, activation("hello", 1001)])
    assert len(store.list_activations("guest")) == 2
    assert store.get_activation("guest", record.activation_id) == record


def test_list_activations_newest_first(store: Store) -> None:
    starts = [5000, 1000, 3000, 3000, 2000]
    records = [activation("hello", s, aid=f"{i:032x}") for i, s in enumerate(starts)]
    store.insert_activations(records)
    store.insert_activations([activation("hello", 9000, ns="other")])
    listed = store.list_activations("guest")
    # Same start: the greater id first (ids are time-ordered).
    assert [(a.start, a.activation_id[-1]) for a in listed] == [
        (5000, "0"),
        (3000, "3"),
        (3000, "2"),
        (2000, "4"),
        (1000, "1"),
    ]
    assert listed[0] == records[0]


def test_list_activations_by_name(store: Store) -> None:
    names = ["pkg/a", "pkg/b", "pkg/a", "pkgx/a", "a", "PKG/a", "p_g/a", "other/pkg/a"]
    store.insert_activations([activation(n, 1000 + i) for i, n in enumerate(names)])

    def names_of(name: str) -> list[str]:
        return [a.name for a in store.list_activations("guest", name=name)]

    assert names_of("pkg/a") == ["pkg/a", "pkg/a"]
    assert names_of("a") == ["a"]
    assert names_of("pkg/") == ["pkg/a", "pkg/b", "pkg/a"]
    assert names_of("p_g/") == ["p_g/a"]  # '_' is not a wildcard
    assert names_of("pkg") == []  # no trailing '/': exact match only
    assert names_of("nothing/") == []


def test_list_activations_since_upto(store: Store) -> None:
    store.insert_activations([activation("hello", s) for s in (100, 200, 300, 400)])

    def starts(**bounds: int) -> list[int]:
        return [a.start for a in store.list_activations("guest", **bounds)]  # type: ignore[arg-type]

    assert starts(since=200) == [400, 300, 200]
    assert starts(upto=300) == [300, 200, 100]
    assert starts(since=200, upto=300) == [300, 200]
    assert starts(since=401) == []


def test_list_activations_limit_and_skip(store: Store) -> None:
    store.insert_activations([activation("pkg/fn", 1000 + i) for i in range(100)])
    store.insert_activations([activation("pkg/other", 5000 + i) for i in range(10)])
    page = store.list_activations("guest", name="pkg/fn", limit=10, skip=20)
    assert [a.start for a in page] == list(range(1079, 1069, -1))
    assert len(store.list_activations("guest")) == 30  # the default limit
    assert len(store.list_activations("guest", limit=200)) == 110
    assert store.list_activations("guest", limit=10, skip=110) == []


def test_purge_activations(store: Store) -> None:
    store.insert_activations([activation("hello", s) for s in (100, 200, 300)])
    store.insert_activations([activation("hello", 150, ns="other")])
    assert store.purge_activations(200) == 2  # strictly older, every namespace
    assert [a.start for a in store.list_activations("guest")] == [300, 200]
    assert store.list_activations("other") == []
    assert store.purge_activations(200) == 0


def test_data_key_first_writer_wins_and_rotation_replaces(store: Store) -> None:
    assert store.ensure_data_key("guest", "wk:first") == "wk:first"
    assert store.ensure_data_key("guest", "wk:second") == "wk:first"
    store.ensure_data_key("other", "wk:other")
    assert store.data_keys() == {"guest": "wk:first", "other": "wk:other"}
    store.replace_data_keys({"guest": "wk:rotated", "other": "wk:rotated2"})
    assert store.data_keys() == {"guest": "wk:rotated", "other": "wk:rotated2"}


def test_secret_roundtrip_list_and_delete(store: Store) -> None:
    first = StoredSecret("guest", "db", "wisp:v1:AAAA", 4, 1_700_000_000_000)
    store.put_secret(first)
    store.put_secret(StoredSecret("guest", "api", "wisp:v1:BBBB", 9, 1_700_000_000_001))
    store.put_secret(StoredSecret("other", "db", "wisp:v1:CCCC", 2, 1_700_000_000_002))
    assert store.get_secret("guest", "db") == first
    assert [s.name for s in store.list_secrets("guest")] == ["api", "db"]
    store.put_secret(StoredSecret("guest", "db", "wisp:v1:DDDD", 7, 1_700_000_000_003))
    got = store.get_secret("guest", "db")
    assert got is not None and (got.ciphertext, got.size) == ("wisp:v1:DDDD", 7)
    assert store.delete_secret("guest", "db")
    assert not store.delete_secret("guest", "db")
    assert store.get_secret("guest", "db") is None
    assert store.get_secret("other", "db") is not None
