"""Action and package CRUD over HTTP, on every store."""

from __future__ import annotations

import base64
import io
import zipfile
from typing import Any

import pytest

from tests.api.conftest import ACTIONS, CODE_MAX, KIND, PACKAGES, Tenant, hello
from wisp.runtimes import DOCUMENTED


@pytest.fixture(params=["memory", "sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_kind(request: pytest.FixtureRequest) -> str:
    kind: str = request.param
    return kind


def zip_b64() -> str:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("__main__.py", "def main(args):\n    return {'zipped': True}\n")
    return base64.b64encode(buffer.getvalue()).decode()


def annotations_of(doc: dict[str, Any]) -> dict[str, Any]:
    return {a["key"]: a["value"] for a in doc["annotations"]}


async def test_create_get_delete_action(guest: Tenant) -> None:
    c = guest.client
    r = await c.put(f"{ACTIONS}/hello", json=hello(parameters=[{"key": "name", "value": "Ada"}]))
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["namespace"] == guest.name and doc["name"] == "hello"
    assert doc["version"] == "0.0.1" and doc["publish"] is False
    assert doc["exec"] == {
        "kind": KIND,
        "main": "main",
        "binary": False,
        "code": hello()["exec"]["code"],
    }
    assert doc["limits"] == {"timeout": 3000, "memory": 256, "logs": 1024, "concurrency": 1}
    assert annotations_of(doc) == {"exec": KIND}
    assert doc["parameters"] == [{"key": "name", "value": "Ada"}]
    assert doc["updated"] > 0

    got = await c.get(f"{ACTIONS}/hello")
    assert got.status_code == 200 and got.json() == doc
    nocode = (await c.get(f"{ACTIONS}/hello?code=false")).json()
    assert "code" not in nocode["exec"] and nocode["exec"]["kind"] == KIND

    deleted = await c.delete(f"{ACTIONS}/hello")
    assert deleted.status_code == 200 and deleted.json()["name"] == "hello"
    missing = await c.get(f"{ACTIONS}/hello")
    assert missing.status_code == 404 and missing.json()["code"] == "not_found"
    assert "hello" in missing.json()["error"]
    assert (await c.delete(f"{ACTIONS}/hello")).status_code == 404


async def test_default_package_path_is_the_plain_action(guest: Tenant) -> None:
    assert (await guest.client.put(f"{ACTIONS}/default/fn", json=hello())).status_code == 200
    r = await guest.client.get(f"{ACTIONS}/fn")
    assert r.status_code == 200 and r.json()["namespace"] == guest.name


async def test_put_existing_without_overwrite_conflicts(guest: Tenant) -> None:
    assert (await guest.client.put(f"{ACTIONS}/a", json=hello())).status_code == 200
    r = await guest.client.put(f"{ACTIONS}/a", json=hello("def main(a): return {}"))
    assert r.status_code == 409 and r.json()["code"] == "conflict"
    assert "overwrite" in r.json()["error"]


async def test_versions_bump_only_on_change(guest: Tenant, store_kind: str) -> None:
    c = guest.client
    body = hello(
        parameters=[{"key": "x", "value": 1}, {"key": "TOKEN", "value": "s", "init": True}],
        annotations=[{"key": "web-export", "value": True}],
        limits={"timeout": 5000},
    )
    assert (await c.put(f"{ACTIONS}/v?overwrite=true", json=body)).json()["version"] == "0.0.1"
    # A deployer echoes the server's exec annotation back: still no change.
    echoed = dict(body, annotations=[*body["annotations"], {"key": "exec", "value": KIND}])
    same = await c.put(f"{ACTIONS}/v?overwrite=true", json=echoed)
    assert same.json()["version"] == "0.0.1"
    assert annotations_of(same.json()) == {"web-export": True, "exec": KIND}
    changed = await c.put(f"{ACTIONS}/v?overwrite=true", json=hello("def main(a):\n  return {}\n"))
    assert changed.json()["version"] == "0.0.2"
    limits = await c.put(f"{ACTIONS}/v?overwrite=true", json={"limits": {"memory": 512}})
    assert limits.json()["version"] == "0.0.3"
    assert limits.json()["limits"]["timeout"] == 5000  # kept from the first PUT
    assert (await c.get(f"{ACTIONS}/v")).json()["version"] == "0.0.3"


async def test_partial_update_keeps_what_is_not_sent(guest: Tenant) -> None:
    c = guest.client
    body = hello(
        parameters=[{"key": "p", "value": "v"}],
        limits={"timeout": 1000, "memory": 128, "logs": 10},
    )
    created = (await c.put(f"{ACTIONS}/p", json=body)).json()
    r = await c.put(
        f"{ACTIONS}/p?overwrite=true", json={"annotations": [{"key": "web-export", "value": True}]}
    )
    assert r.status_code == 200
    updated = r.json()
    assert updated["exec"] == created["exec"]
    assert updated["limits"] == created["limits"]
    assert updated["parameters"] == created["parameters"]
    assert annotations_of(updated) == {"web-export": True, "exec": KIND}
    assert updated["version"] == "0.0.2"
    # An exec with only a kind keeps the code.
    r = await c.put(f"{ACTIONS}/p?overwrite=true", json={"exec": {"kind": KIND}})
    assert r.json()["exec"]["code"] == created["exec"]["code"]
    assert r.json()["version"] == "0.0.2"


async def test_python_default_resolves_and_unknown_kind_is_400(guest: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/k", json=hello())
    assert r.json()["exec"]["kind"] == KIND
    bad = await guest.client.put(f"{ACTIONS}/k2", json={"exec": {"kind": "cobol:85", "code": "x"}})
    assert bad.status_code == 400 and bad.json()["code"] == "unknown_kind"
    assert "cobol:85" in bad.json()["error"] and KIND in bad.json()["error"]


async def test_zip_is_detected_when_binary_is_omitted(guest: Tenant) -> None:
    r = await guest.client.put(
        f"{ACTIONS}/z", json={"exec": {"kind": "python:default", "code": zip_b64()}}
    )
    assert r.status_code == 200 and r.json()["exec"]["binary"] is True
    text = await guest.client.put(f"{ACTIONS}/t", json=hello("UEsDBxyz = 1\n"))
    assert text.json()["exec"]["binary"] is False


async def test_binary_code_must_be_base64(guest: Tenant) -> None:
    r = await guest.client.put(
        f"{ACTIONS}/b", json={"exec": {"kind": KIND, "code": "not base64!", "binary": True}}
    )
    assert r.status_code == 400 and "base64" in r.json()["error"]


async def test_oversize_code_is_413(guest: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/big", json=hello("#" * (CODE_MAX + 1)))
    assert r.status_code == 413 and r.json()["code"] == "payload_too_large"
    assert str(CODE_MAX + 1) in r.json()["error"] and str(CODE_MAX) in r.json()["error"]


@pytest.mark.parametrize(
    ("limits", "message"),
    [
        ({"memory": 2048}, "limits.memory must be between 128 and 1024 MB (got 2048)"),
        ({"memory": 64}, "limits.memory must be between 128 and 1024 MB (got 64)"),
        ({"timeout": 50}, "limits.timeout must be between 100 and 900000 ms (got 50)"),
        ({"timeout": 900001}, "limits.timeout must be between 100 and 900000 ms"),
        ({"logs": 10241}, "limits.logs must be between 0 and 10240 KB (got 10241)"),
        ({"logs": -1}, "limits.logs must be between 0 and 10240 KB (got -1)"),
        ({"memory": "256"}, "limits.memory must be an integer"),
        ({"timeout": 1.5}, "limits.timeout must be an integer"),
        ({"logs": True}, "limits.logs must be an integer"),
        ({"concurrency": 4}, "limits.concurrency must be 1"),
        ({"cpu": 2}, "limits.cpu"),
        ([], "limits must be an object"),
    ],
)
async def test_limits_out_of_range_are_400(guest: Tenant, limits: Any, message: str) -> None:
    r = await guest.client.put(f"{ACTIONS}/lim", json=hello(limits=limits))
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


async def test_limits_accept_integral_numbers(guest: Tenant) -> None:
    r = await guest.client.put(
        f"{ACTIONS}/lim", json=hello(limits={"memory": 512.0, "timeout": 100, "logs": 0})
    )
    assert r.json()["limits"] == {"timeout": 100, "memory": 512, "logs": 0, "concurrency": 1}


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({}, "exec is required"),
        ({"exec": "code"}, "exec must be an object"),
        ({"exec": {"code": "x"}}, "exec.kind is required"),
        ({"exec": {"kind": "python:default"}}, "exec.code is required"),
        ({"exec": {"kind": 3, "code": "x"}}, "exec.kind must be a string"),
        ({"exec": {"kind": "python:default", "code": "x", "binary": "no"}}, "exec.binary"),
        (hello(parameters={"a": 1}), "parameters must be a list"),
        (hello(parameters=[{"value": 1}]), "parameters[0] must be an object with a string 'key'"),
        (hello(parameters=[{"key": 1, "value": 1}]), "parameters[0]"),
        (hello(annotations=["x"]), "annotations[0]"),
        (hello(parameters=[{"key": "a", "init": "yes"}]), "parameters[0].init"),
        (hello(publish="yes"), "publish must be true or false"),
    ],
)
async def test_bad_action_bodies_are_400(guest: Tenant, body: Any, message: str) -> None:
    r = await guest.client.put(f"{ACTIONS}/bad", json=body)
    assert r.status_code == 400, r.text
    assert message in r.json()["error"]


@pytest.mark.parametrize("name", ["-dash", "x" * 257, "sp ace ", "ü", "a%20"])
async def test_bad_action_names_are_400(guest: Tenant, name: str) -> None:
    r = await guest.client.put(f"{ACTIONS}/{name}", json=hello())
    assert r.status_code == 400, r.text
    assert "invalid action name" in r.json()["error"]


async def test_list_actions_with_exec_annotation_count_and_paging(guest: Tenant) -> None:
    c = guest.client
    assert (await c.put(f"{PACKAGES}/pkg", json={})).status_code == 200
    for name in ("a", "b", "c"):
        assert (await c.put(f"{ACTIONS}/{name}", json=hello())).status_code == 200
    assert (await c.put(f"{ACTIONS}/pkg/d", json=hello())).status_code == 200

    items = (await c.get(ACTIONS)).json()
    assert [i["name"] for i in items] == ["a", "b", "c", "d"]
    for item in items:
        assert {"key": "exec", "value": KIND} in item["annotations"]
        assert "code" not in item["exec"]
    assert items[3]["namespace"] == f"{guest.name}/pkg"
    assert [i["name"] for i in (await c.get(f"{ACTIONS}?limit=2&skip=1")).json()] == ["b", "c"]
    assert len((await c.get(f"{ACTIONS}?limit=0")).json()) == 4  # 0 = the maximum
    assert (await c.get(f"{ACTIONS}?count=true")).json() == {"actions": 4}
    in_pkg = (await c.get(f"{ACTIONS}/pkg/")).json()
    assert [i["name"] for i in in_pkg] == ["d"]
    assert (await c.get(f"{ACTIONS}/pkg/?count=true")).json() == {"actions": 1}


@pytest.mark.parametrize(
    ("query", "name"),
    [
        ("limit=abc", "limit"),
        ("limit=201", "limit"),
        ("limit=-1", "limit"),
        ("skip=-5", "skip"),
        ("skip=x", "skip"),
        ("skip=9223372036854775808", "skip"),  # past SQL's 64-bit integers: was a 500
        ("count=maybe", "count"),
    ],
)
async def test_bad_list_queries_are_400(guest: Tenant, query: str, name: str) -> None:
    for base in (ACTIONS, PACKAGES, "/api/v1/namespaces/_/activations"):
        if name == "count" and base != ACTIONS:
            continue
        r = await guest.client.get(f"{base}?{query}")
        assert r.status_code == 400, (base, r.text)
        assert f"'{name}'" in r.json()["error"]


async def test_action_in_missing_package_is_404(guest: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/nopkg/fn", json=hello())
    assert r.status_code == 404 and "nopkg" in r.json()["error"]
    assert (await guest.client.get(f"{ACTIONS}/nopkg/fn")).status_code == 404


async def test_package_crud(guest: Tenant) -> None:
    c = guest.client
    body = {
        "parameters": [{"key": "a", "value": 1}, {"key": "ENV", "value": "x", "init": True}],
        "annotations": [{"key": "deployer", "value": "nim"}],
        "publish": False,
    }
    assert (await c.get(f"{PACKAGES}/pkg")).status_code == 404
    r = await c.put(f"{PACKAGES}/pkg?overwrite=true", json=body)
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["namespace"] == guest.name and doc["name"] == "pkg" and doc["version"] == "0.0.1"
    assert doc["binding"] == {} and doc["parameters"] == body["parameters"]
    assert doc["annotations"] == body["annotations"] and doc["updated"] > 0

    assert (await c.put(f"{PACKAGES}/pkg", json=body)).status_code == 409
    same = await c.put(f"{PACKAGES}/pkg?overwrite=true", json=body)
    assert same.json()["version"] == "0.0.1"
    changed = await c.put(f"{PACKAGES}/pkg?overwrite=true", json={"publish": True})
    assert changed.json()["version"] == "0.0.2"
    assert changed.json()["parameters"] == body["parameters"]  # kept

    assert (await c.put(f"{ACTIONS}/pkg/fn", json=hello())).status_code == 200
    got = (await c.get(f"{PACKAGES}/pkg")).json()
    assert [a["name"] for a in got["actions"]] == ["fn"]
    assert [p["name"] for p in (await c.get(PACKAGES)).json()] == ["pkg"]

    full = await c.delete(f"{PACKAGES}/pkg")
    assert full.status_code == 409 and full.json()["error"].startswith("Package not empty")
    assert (await c.delete(f"{ACTIONS}/pkg/fn")).status_code == 200
    deleted = await c.delete(f"{PACKAGES}/pkg")
    assert deleted.status_code == 200 and deleted.json()["name"] == "pkg"
    assert (await c.get(f"{PACKAGES}/pkg")).status_code == 404
    assert (await c.delete(f"{PACKAGES}/pkg")).status_code == 404


async def test_package_list_paging(guest: Tenant) -> None:
    for name in ("p1", "p2", "p3"):
        assert (await guest.client.put(f"{PACKAGES}/{name}", json={})).status_code == 200
    r = await guest.client.get(f"{PACKAGES}?limit=1&skip=1")
    assert [p["name"] for p in r.json()] == ["p2"]


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"binding": {"namespace": "x", "name": "y"}}, "bindings are not supported"),
        ({"binding": "x"}, "binding must be an object"),
        ({"parameters": "x"}, "parameters must be a list"),
    ],
)
async def test_bad_package_bodies_are_400(guest: Tenant, body: Any, message: str) -> None:
    r = await guest.client.put(f"{PACKAGES}/bad", json=body)
    assert r.status_code == 400 and message in r.json()["error"]


async def test_default_package_name_is_reserved(guest: Tenant) -> None:
    r = await guest.client.put(f"{PACKAGES}/default", json={})
    assert r.status_code == 400 and "reserved" in r.json()["error"]


async def test_a_documented_kind_of_another_version_runs_on_the_installed_one(
    guest: Tenant,
) -> None:
    # DigitalOcean documents python:3.9 and python:3.11; this host has one of them.
    asked = next(k for k in DOCUMENTED["python"] if k != KIND)
    r = await guest.client.put(
        f"{ACTIONS}/old", json={"exec": {"kind": asked, "code": "def main(a):\n  return a\n"}}
    )
    assert r.status_code == 200, r.text
    doc = r.json()
    assert doc["exec"]["kind"] == KIND
    assert annotations_of(doc)["runtime"] == {"requested": asked, "kind": KIND}
    # Clients echo annotations back: the server-owned one is not stored twice, and the
    # same deploy again changes nothing.
    again = await guest.client.put(
        f"{ACTIONS}/old",
        params={"overwrite": "true"},
        json={
            "exec": doc["exec"] | {"kind": asked, "code": "def main(a):\n  return a\n"},
            "annotations": doc["annotations"],
        },
    )
    assert again.status_code == 200 and again.json()["version"] == doc["version"]
    assert [a["key"] for a in again.json()["annotations"]].count("runtime") == 1
    # Asking for the installed kind itself is a change, and drops the annotation.
    exact = await guest.client.put(
        f"{ACTIONS}/old", params={"overwrite": "true"}, json={"exec": {"kind": KIND}}
    )
    assert exact.json()["version"] != doc["version"]
    assert "runtime" not in annotations_of(exact.json())


async def test_api_info_shows_the_runtime_mapping(guest: Tenant) -> None:
    doc = (await guest.client.get("/api/v1")).json()
    entries = {e["kind"]: e for e in doc["runtimes"]["python"]}
    for kind in DOCUMENTED["python"]:
        if kind != KIND:
            assert entries[kind]["alias"] == KIND and entries[kind]["version"]


async def test_exec_fields_wisp_does_not_act_on_are_a_400_naming_each(guest: Tenant) -> None:
    body = hello()
    body["exec"] |= {"image": "openwhisk/dockerskeleton", "components": ["/_/a"], "x": 1}
    r = await guest.client.put(f"{ACTIONS}/img", json=body)
    assert r.status_code == 400 and r.json()["code"] == "unsupported_field"
    for field in ("exec.image", "exec.components", "exec.x"):
        assert field in r.json()["error"]
    assert (await guest.client.get(f"{ACTIONS}/img")).status_code == 404


async def test_unknown_action_and_package_fields_are_a_400_naming_each(guest: Tenant) -> None:
    r = await guest.client.put(f"{ACTIONS}/x", json=hello(sequence=["a"], delAnnotations=["b"]))
    assert r.status_code == 400 and r.json()["code"] == "unsupported_field"
    assert "sequence, delAnnotations" in r.json()["error"]
    r = await guest.client.put(f"{PACKAGES}/p", json={"bindings": {}})
    assert r.status_code == 400 and "bindings" in r.json()["error"]
    # What a GET returns can be sent back as it is.
    created = await guest.client.put(f"{ACTIONS}/x", json=hello())
    again = await guest.client.put(
        f"{ACTIONS}/x", params={"overwrite": "true"}, json=created.json()
    )
    assert again.status_code == 200 and again.json()["version"] == created.json()["version"]
    package = (await guest.client.put(f"{PACKAGES}/p", json={})).json()
    got = (await guest.client.get(f"{PACKAGES}/p")).json()
    back = await guest.client.put(f"{PACKAGES}/p", params={"overwrite": "true"}, json=got)
    assert back.status_code == 200 and back.json()["version"] == package["version"]
