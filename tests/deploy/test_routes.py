"""Gateway routes in project.yml: reading, their errors, and plan/apply against a fake server."""

from __future__ import annotations

import pytest

from tests.deploy.conftest import MakeProject
from tests.deploy.fake_server import FakeServer
from tests.deploy.test_plan import deploy, plan_for, summary
from tests.deploy.test_project import HELLO, error_of
from wisp.deploy.apply import apply_plan
from wisp.deploy.errors import ProjectError
from wisp.deploy.project import load_project

ROUTES = """
packages:
  - name: hello
    functions:
      - name: hello
routes:
  - base: /shop/
    path: /items/{id}
    method: get
    function: hello/hello
    policy: {type: api-key, header: X-Key}
    rateLimit: {requests: 5, per: 1}
  - basePath: /shop
    path: /items
    method: POST
    function: hello/hello
    cors: {origins: ["https://a.example"]}
    host: api.example.com
"""


def test_routes_are_read_as_the_rest_api_documents(make_project: MakeProject) -> None:
    first, second = load_project(make_project(ROUTES, HELLO), environ={}).routes
    assert first.key == ("/shop", "/items/{id}", "GET")
    assert first.label == "route GET /shop/items/{id}"
    assert first.body == {
        "basePath": "/shop",
        "path": "/items/{id}",
        "method": "GET",
        "function": "hello/hello",
        "policy": {"type": "api-key", "header": "X-Key"},
        "rateLimit": {"requests": 5, "per": 1},
    }
    assert second.body["host"] == "api.example.com"
    assert second.body["cors"] == {"origins": ["https://a.example"]}
    assert "base" not in first.body


@pytest.mark.parametrize(
    ("routes", "message"),
    [
        ("routes: {a: 1}", "project.yml: routes: must be a list"),
        ("routes: [3]", "project.yml: routes[0]: must be a mapping"),
        (
            "routes: [{path: /a, function: f, verb: GET}]",
            "project.yml: routes[0].verb: unknown key; expected one of",
        ),
        ("routes: [{path: a, function: f}]", "routes[0].path: must be a path starting with '/'"),
        ("routes: [{function: f}]", "routes[0].path: must be a path starting with '/'"),
        (
            "routes: [{base: x, path: /a, function: f}]",
            "routes[0].base: must be a path starting with '/'",
        ),
        ("routes: [{path: /a, function: f, method: FETCH}]", "routes[0].method: must be one of"),
        ("routes: [{path: /a}]", "routes[0].function: must be FN or PKG/FN (got None)"),
        ("routes: [{path: /a, function: a/b/c}]", "routes[0].function: must be FN or PKG/FN"),
        ("routes: [{path: /a, function: f, policy: basic}]", "routes[0].policy: must be a mapping"),
        ("routes: [{path: /a, function: f, rateLimit: 5}]", "routes[0].rateLimit: must be a"),
        (
            "routes: [{path: /a, function: f, base: /x, basePath: /x}]",
            "routes[0]: use either base or basePath",
        ),
        (
            "routes: [{path: /a, function: f}, {path: /a/, function: g, method: get}]",
            "routes[1]: GET /a is also declared at routes[0]",
        ),
    ],
)
def test_bad_routes_name_the_key(make_project: MakeProject, routes: str, message: str) -> None:
    assert message in error_of(make_project(routes, HELLO))


def test_first_deploy_creates_routes_after_functions(make_project: MakeProject) -> None:
    server = FakeServer()
    root = make_project(ROUTES, HELLO)
    plan = plan_for(root, server)
    assert summary(plan)["create"] == [
        "package hello",
        "function hello/hello",
        "route GET /shop/items/{id}",
        "route POST /shop/items",
    ]
    assert server.writes() == []  # the function is new: no dry run, nothing written
    outcomes = apply_plan(plan, server.client())
    assert [o.change.label for o in outcomes][-2:] == [
        "route GET /shop/items/{id}",
        "route POST /shop/items",
    ]
    assert all(o.ok for o in outcomes)
    # The key the server generated is only in its answer: the outcome must carry it.
    assert outcomes[2].api_keys == ["generated-key-0123456789"]
    assert outcomes[2].to_json()["apiKeys"] == ["generated-key-0123456789"]
    assert set(server.routes) == {("/shop", "/items/{id}", "GET"), ("/shop", "/items", "POST")}


def test_second_deploy_asks_the_server_and_changes_nothing(make_project: MakeProject) -> None:
    server = FakeServer()
    root = make_project(ROUTES, HELLO)
    deploy(root, server)
    server.requests.clear()
    plan = plan_for(root, server)
    assert not plan.has_changes
    assert summary(plan)["unchanged"][-2:] == [
        "route GET /shop/items/{id}",
        "route POST /shop/items",
    ]
    dry_runs = [r for r in server.requests if r == ("PUT", "/api/v1/namespaces/_/routes")]
    assert len(dry_runs) == 2
    assert apply_plan(plan, server.client()) == []


def test_a_changed_route_is_an_update_with_the_servers_reasons(make_project: MakeProject) -> None:
    server = FakeServer()
    deploy(make_project(ROUTES, HELLO), server)
    plan = plan_for(make_project(ROUTES.replace("requests: 5", "requests: 6"), HELLO), server)
    [update] = plan.of("update")
    assert (update.label, update.reasons) == ("route GET /shop/items/{id}", ["policy changed"])
    deploy(make_project(ROUTES.replace("requests: 5", "requests: 6"), HELLO), server)
    assert server.routes[("/shop", "/items/{id}", "GET")]["rateLimit"]["requests"] == 6


def test_routes_are_deleted_only_with_prune(make_project: MakeProject) -> None:
    server = FakeServer()
    deploy(make_project(ROUTES, HELLO), server)
    only_one = ROUTES[: ROUTES.index("  - basePath: /shop")]
    assert plan_for(make_project(only_one, HELLO), server).of("delete") == []
    plan = deploy(make_project(only_one, HELLO), server, prune=True)
    [gone] = plan.of("delete")
    assert (gone.label, gone.params) == (
        "route POST /shop/items",
        {"basePath": "/shop", "path": "/items", "method": "POST"},
    )
    assert set(server.routes) == {("/shop", "/items/{id}", "GET")}
    assert ("DELETE", "/api/v1/namespaces/_/routes") in server.writes()


def test_server_refusals_at_plan_time_name_the_route(make_project: MakeProject) -> None:
    server = FakeServer()
    deploy(make_project(ROUTES, HELLO), server)
    bogus = ROUTES.replace("type: api-key", "type: bogus")
    with pytest.raises(ProjectError) as info:
        plan_for(make_project(bogus, HELLO), server)
    assert info.value.message.startswith("project.yml: routes[0]: policy.type must be one of")
    missing = ROUTES + "  - {path: /x, function: nowhere}\n"
    with pytest.raises(ProjectError) as info:
        plan_for(make_project(missing, HELLO), server)
    assert info.value.message == "project.yml: routes[2]: function nowhere does not exist"
