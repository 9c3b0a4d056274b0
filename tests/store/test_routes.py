"""The Store's gateway-route methods, on every backend (memory, SQLite, PostgreSQL)."""

from __future__ import annotations

import dataclasses

from wisp.models import GatewayRoute
from wisp.store.base import Store


def route(
    path: str = "/items/{id}",
    method: str = "GET",
    ns: str = "guest",
    base: str = "/shop",
    **kw: object,
) -> GatewayRoute:
    r = GatewayRoute(
        namespace=ns,
        base_path=base,
        path=path,
        method=method,
        action="shop/get",
        config={"policy": {"type": "api-key", "keys": [{"id": "k1", "hash": "ab" * 32}]}, "ü": "✓"},
        created=1_700_000_000_000,
        updated=1_700_000_000_001,
    )
    return dataclasses.replace(r, **kw)  # type: ignore[arg-type]


def test_put_list_round_trip(store: Store) -> None:
    a = route()
    b = route("/items", "POST", host="api.example.com")
    c = route("/", "GET", ns="other")
    for r in (b, c, a):
        store.put_route(r)
    assert store.list_routes("guest") == [b, a]  # by base path, path, method
    assert store.list_routes() == [b, a, c]
    assert store.list_routes(host="api.example.com") == [b]
    assert store.list_routes("other", host="api.example.com") == []
    assert store.list_routes("nobody") == []
    store.put_route(route("/more", host="api.example.com"))
    assert store.route_owners() == [("guest", ""), ("guest", "api.example.com"), ("other", "")]


def test_put_replaces_the_same_key(store: Store) -> None:
    store.put_route(route())
    changed = route(action="shop/v2", config={"policy": {"type": "none"}}, updated=5)
    store.put_route(changed)
    assert store.list_routes("guest") == [changed]


def test_delete_by_base_path_path_and_method(store: Store) -> None:
    for r in (route(), route(method="PUT"), route("/items"), route(base="/other"), route(ns="x")):
        store.put_route(r)
    assert store.delete_routes("guest", "/shop", "/items/{id}", "PUT") == 1
    assert store.delete_routes("guest", "/shop", "/items/{id}", "PUT") == 0
    assert store.delete_routes("guest", "/shop", "/items/{id}", None) == 1
    assert [(r.base_path, r.path) for r in store.list_routes("guest")] == [
        ("/other", "/items/{id}"),
        ("/shop", "/items"),
    ]
    assert store.delete_routes("guest", "/shop", None, None) == 1
    assert [(r.namespace, r.base_path) for r in store.list_routes()] == [
        ("guest", "/other"),
        ("x", "/shop"),
    ]
