"""EntityService without HTTP: versions, digests, targets and their cache."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from tests.api.conftest import KIND, hello
from wisp.config import Limits
from wisp.entities import EntityService, next_version
from wisp.errors import Conflict, NotFound, VersionTaken
from wisp.models import DEFAULT_PACKAGE, Action
from wisp.runtimes import RuntimeTable, discover
from wisp.store.memory import MemoryStore


@pytest.fixture
def service() -> EntityService:
    return EntityService(MemoryStore(), RuntimeTable(discover()), Limits())


def test_next_version() -> None:
    assert next_version("0.0.1") == "0.0.2"
    assert next_version("1.2.9") == "1.2.10"
    assert next_version("garbage") == "0.0.1"


def test_digest_covers_kind_main_and_code(service: EntityService) -> None:
    action = service.put_action("ns", DEFAULT_PACKAGE, "a", hello("x = 1"))
    expected = hashlib.sha256(f"{KIND}\0main\0x = 1".encode()).hexdigest()
    assert action.exec.digest == expected
    other = service.put_action(
        "ns", DEFAULT_PACKAGE, "b", {"exec": {"kind": KIND, "code": "x = 1", "main": "handler"}}
    )
    assert other.exec.digest != expected and other.exec.main == "handler"


class RacedStore(MemoryStore):
    """Another PUT of the same action lands between this PUT's read and its write,
    ``races`` times."""

    def __init__(self, races: int) -> None:
        super().__init__()
        self.races = races

    def put_action(self, action: Action) -> None:
        if self.races > 0 and action.version != "0.0.1":
            self.races -= 1
            code = f"theirs {self.races}"
            theirs = replace(action, exec=replace(action.exec, code=code, digest=code))
            super().put_action(theirs)
        super().put_action(action)


def test_a_concurrent_put_takes_the_next_version_instead_of_overwriting() -> None:
    store = RacedStore(races=0)
    service = EntityService(store, RuntimeTable(discover()), Limits())
    service.put_action("ns", DEFAULT_PACKAGE, "a", hello("v = 1"))
    store.races = 2
    mine = service.put_action("ns", DEFAULT_PACKAGE, "a", hello("mine"), overwrite=True)
    assert mine.version == "0.0.4" and mine.exec.code == "mine"
    assert store.list_action_versions("ns", DEFAULT_PACKAGE, "a") == [
        "0.0.1",
        "0.0.2",
        "0.0.3",
        "0.0.4",
    ]
    codes = [
        store.get_action_version("ns", DEFAULT_PACKAGE, "a", v).exec.code  # type: ignore[union-attr]
        for v in ("0.0.2", "0.0.3", "0.0.4")
    ]
    assert codes == ["theirs 1", "theirs 0", "mine"]
    assert store.get_action("ns", DEFAULT_PACKAGE, "a") == mine


def test_endless_races_end_in_a_409() -> None:
    store = RacedStore(races=0)
    service = EntityService(store, RuntimeTable(discover()), Limits())
    service.put_action("ns", DEFAULT_PACKAGE, "a", hello("v = 1"))
    store.races = 10**6
    with pytest.raises(VersionTaken) as taken:
        service.put_action("ns", DEFAULT_PACKAGE, "a", hello("mine"), overwrite=True)
    assert taken.value.status == 409


def test_every_version_is_kept(service: EntityService) -> None:
    service.put_action("ns", DEFAULT_PACKAGE, "a", hello("v = 1"))
    service.put_action("ns", DEFAULT_PACKAGE, "a", hello("v = 2"), overwrite=True)
    service.put_action("ns", DEFAULT_PACKAGE, "a", hello("v = 2"), overwrite=True)
    assert service.store.list_action_versions("ns", DEFAULT_PACKAGE, "a") == ["0.0.1", "0.0.2"]
    old = service.store.get_action_version("ns", DEFAULT_PACKAGE, "a", "0.0.1")
    assert old is not None and old.exec.code == "v = 1"


def test_conflict_and_not_found(service: EntityService) -> None:
    service.put_package("ns", "p", {})
    with pytest.raises(Conflict):
        service.put_package("ns", "p", {})
    with pytest.raises(NotFound):
        service.get_action("ns", "p", "missing")
    with pytest.raises(NotFound):
        service.resolve_target("ns", DEFAULT_PACKAGE, "missing")
    with pytest.raises(NotFound):
        service.delete_package("ns", "nope")


def test_target_overlays_and_stringifies_env(service: EntityService) -> None:
    service.put_package(
        "ns",
        "p",
        {
            "parameters": [
                {"key": "a", "value": 1},
                {"key": "N", "value": 5, "init": True},
                {"key": "S", "value": "pkg", "init": True},
            ]
        },
    )
    service.put_action(
        "ns",
        "p",
        "f",
        hello(
            parameters=[
                {"key": "a", "value": 2},
                {"key": "S", "value": "act", "init": True},
                {"key": "L", "value": [1, "x"], "init": True},
                {"key": "Z", "value": None, "init": True},
            ]
        ),
    )
    target = service.resolve_target("ns", "p", "f")
    assert target.parameters == {"a": 2}
    assert target.env == {"N": "5", "S": "act", "L": '[1, "x"]', "Z": "null"}
    assert target.action.path == "p/f"


def test_target_cache_is_invalidated_by_action_and_package_changes(
    service: EntityService,
) -> None:
    service.put_package("ns", "p", {"parameters": [{"key": "k", "value": 1}]})
    service.put_action("ns", "p", "f", hello())
    assert service.cached_target("ns", "p", "f") is None
    first = service.resolve_target("ns", "p", "f")
    assert service.cached_target("ns", "p", "f") is first

    service.put_package("ns", "p", {"parameters": [{"key": "k", "value": 2}]}, overwrite=True)
    assert service.cached_target("ns", "p", "f") is None
    assert service.resolve_target("ns", "p", "f").parameters == {"k": 2}

    service.put_action("ns", "p", "f", hello("y = 2"), overwrite=True)
    assert service.cached_target("ns", "p", "f") is None
    assert service.resolve_target("ns", "p", "f").action.version == "0.0.2"

    service.delete_action("ns", "p", "f")
    assert service.cached_target("ns", "p", "f") is None


def test_identical_put_keeps_the_cache(service: EntityService) -> None:
    service.put_action("ns", DEFAULT_PACKAGE, "f", hello())
    target = service.resolve_target("ns", DEFAULT_PACKAGE, "f")
    service.put_action("ns", DEFAULT_PACKAGE, "f", hello(), overwrite=True)
    assert service.cached_target("ns", DEFAULT_PACKAGE, "f") is target


def test_resolve_racing_a_change_does_not_cache_stale_targets(service: EntityService) -> None:
    service.put_action("ns", DEFAULT_PACKAGE, "f", hello())
    store = service.store
    real_get = store.get_action

    def get_then_change(namespace: str, package: str, name: str) -> object:
        found = real_get(namespace, package, name)
        # Another thread updates the action after this read, before the cache write.
        store.get_action = real_get  # type: ignore[method-assign]
        service.put_action(namespace, package, name, hello("z = 3"), overwrite=True)
        return found

    store.get_action = get_then_change  # type: ignore[method-assign,assignment]
    stale = service.resolve_target("ns", DEFAULT_PACKAGE, "f")
    assert stale.action.version == "0.0.1"
    assert service.cached_target("ns", DEFAULT_PACKAGE, "f") is None
    assert service.resolve_target("ns", DEFAULT_PACKAGE, "f").action.version == "0.0.2"


def test_exec_annotation_is_never_stored(service: EntityService) -> None:
    action = service.put_action(
        "ns",
        DEFAULT_PACKAGE,
        "f",
        hello(
            annotations=[
                {"key": "exec", "value": "nodejs:20"},
                {"key": "web-export", "value": True},
            ]
        ),
    )
    assert action.annotations == [{"key": "web-export", "value": True}]


def test_new_code_without_main_or_binary_resets_them(service: EntityService) -> None:
    service.put_action(
        "ns", DEFAULT_PACKAGE, "f", {"exec": {"kind": KIND, "code": "x", "main": "h"}}
    )
    updated = service.put_action("ns", DEFAULT_PACKAGE, "f", hello("y"), overwrite=True)
    assert updated.exec.main == "main" and updated.exec.binary is False
