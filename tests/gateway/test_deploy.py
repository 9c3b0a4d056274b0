"""`routes:` in project.yml end to end: a real server, the real `wisp deploy`, calls via /gw."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from tests.live import LiveServer

pytestmark = pytest.mark.slow

PROJECT = """
packages:
  - name: shop
    functions:
      - name: get
routes:
  - base: /shop
    path: /items/{id}
    method: GET
    function: shop/get
    policy: {type: basic, users: {ada: lovelace-1815}}
    rateLimit: {requests: 100, per: 1}
  - base: /shop
    path: /open
    function: shop/get
"""
GET = (
    "def main(args):\n    return {'body': {'id': args.get('id'), 'user': args.get('__ow_user')}}\n"
)


def test_deploy_serves_routes_and_a_redeploy_changes_nothing(tmp_path: Path) -> None:
    root = tmp_path / "project"
    (root / "packages" / "shop").mkdir(parents=True)
    (root / "packages" / "shop" / "get.py").write_text(GET)
    (root / "project.yml").write_text(PROJECT)
    with LiveServer(tmp_path) as server:
        first = server.run("deploy", str(root), "--json")
        assert first.code == 0, first.err
        created = [c["name"] for c in json.loads(first.out)["changes"] if c["action"] == "create"]
        assert created == ["shop", "shop/get", "GET /shop/items/{id}", "GET /shop/open"]

        url = f"{server.url}/gw/guest/shop/items/42"
        assert httpx.get(url).status_code == 401
        r = httpx.get(url, auth=("ada", "lovelace-1815"))
        assert r.status_code == 200, r.text
        assert r.json() == {"id": "42", "user": "ada"}
        assert httpx.get(f"{server.url}/gw/guest/shop/open").status_code == 200

        again = server.run("deploy", str(root))
        assert again.code == 0, again.err
        assert "Nothing changed: 1 package, 1 function, 2 routes already up to date." in again.out

        # A changed policy is planned as an update, and --prune removes a dropped route.
        (root / "project.yml").write_text(PROJECT.replace("requests: 100", "requests: 7"))
        plan = server.run("plan", str(root))
        assert plan.code == 0, plan.err
        assert "~ route GET /shop/items/{id}: rateLimit changed" in plan.out
        (root / "project.yml").write_text(
            PROJECT[: PROJECT.index("  - base: /shop\n    path: /open")]
        )
        pruned = server.run("deploy", str(root), "--prune", "--json")
        assert pruned.code == 0, pruned.err
        deleted = [c["name"] for c in json.loads(pruned.out)["changes"] if c["action"] == "delete"]
        assert deleted == ["GET /shop/open"]
        assert httpx.get(f"{server.url}/gw/guest/shop/open").status_code == 404

        # The server's refusal at plan time names the route's place in project.yml.
        bad = PROJECT.replace("lovelace-1815", "short")
        (root / "project.yml").write_text(bad)
        failed = server.run("plan", str(root))
        assert failed.code != 0 and "Traceback" not in failed.err
        assert "project.yml: routes[0]: policy.users.ada: the password must be 8" in failed.err
