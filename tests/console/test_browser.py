"""The console end to end in a real headless Chromium against a real `wisp server`."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest

from tests.observability.live import Live

pytestmark = pytest.mark.slow
SHOTS = os.environ.get("WISP_SCREENSHOTS")  # a directory: save the main pages there


def shot(page: Any, name: str) -> None:
    if SHOTS:
        page.screenshot(path=str(Path(SHOTS) / f"console-{name}.png"), full_page=True)


def sign_in(page: Any, live: Live, key: str) -> None:
    page.goto(f"{live.url}/ui/")
    assert page.url.endswith("/ui/login")
    page.fill("#key", key)
    page.click("button[type=submit]")


def test_sign_in_see_functions_invoke_and_see_the_activation(page: Any, live: Live) -> None:
    live.deploy(
        "demo/hello",
        annotations=[{"key": "web-export", "value": True}],
        parameters=[
            {"key": "greeting", "value": "hi"},
            {"key": "API_TOKEN", "value": "s3cr3t-value", "init": True},
        ],
    )
    live.deploy("demo/other")
    for name in ("Ada", "Bob", "Cy"):
        live.invoke("demo/hello", {"name": name})
    live.invoke("demo/hello", {"name": "Eve", "fail": True})

    sign_in(page, live, live.key)
    page.wait_for_url(re.compile(r"/ui/functions$"))
    assert page.text_content("#namespace") == "guest"
    rows = page.locator("#functions tbody tr")
    assert rows.count() == 2
    hello = page.locator("#functions tbody tr", has_text="demo/hello")
    assert "python:3.11" in hello.text_content()
    assert "0.0.1" in hello.text_content()
    assert "application error" in hello.text_content()  # its last activation failed
    # The namespace chart has the four activations as bars.
    invocations = page.locator("[data-chart=invocations] svg.chart")
    assert invocations.get_attribute("data-total") == "4"
    assert page.locator("[data-chart=invocations] rect.bar").count() >= 1
    shot(page, "functions")

    page.click("text=demo/hello")
    page.wait_for_url(re.compile(r"/ui/functions/demo/hello$"))
    assert "print('hello', name)" in page.text_content("#code")
    params = page.text_content("#parameters")
    assert "greeting" in params and '"hi"' in params
    assert "API_TOKEN" in params and "s3cr3t-value" not in page.content()  # redacted
    assert page.text_content("#web-url").endswith("/api/v1/web/guest/demo/hello")
    chart = page.locator("[data-chart=invocations] svg.chart")
    assert chart.get_attribute("data-total") == "4"
    assert page.locator("[data-chart=invocations] rect.bar.errors").count() == 1
    assert page.locator("[data-chart=duration] polyline.line.p50").count() == 1
    # Units, a legend telling the two duration lines apart, and a value under the pointer.
    duration = page.locator("[data-chart=duration]")
    assert duration.locator("g.legend text").all_text_contents() == ["p50", "p95"]
    assert duration.locator("text.unit").text_content() == "ms"
    assert page.locator("[data-chart=memory] text.unit").text_content() == "MB"
    hit = duration.locator("circle.hit.p95").first
    assert (hit.locator("title").text_content() or "").endswith(" ms")
    before = hit.evaluate("e => getComputedStyle(e).fill")
    hit.hover()
    assert hit.evaluate("e => getComputedStyle(e).fill") != before  # it reacts to the pointer

    page.fill("#params", '{"name": "Console"}')
    page.click("#invoke button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/activations/[0-9a-f]{32}$"))
    assert "Hello Console" in page.text_content("#result")
    assert "stdout: hello Console" in page.text_content("#logs")
    assert page.text_content("#start-type") in ("warm",)  # four invocations warmed it
    assert re.match(r"[\d.]+ ms", page.text_content("#cpu"))
    assert "MB" in page.text_content("#memory")
    shot(page, "activation")

    page.goto(f"{live.url}/ui/functions/demo/hello")
    shot(page, "function")
    page.goto(f"{live.url}/ui/activations?function=demo/hello&status=error")
    listed = page.locator("#activations tbody tr")
    assert listed.count() == 1 and "application error" in listed.text_content()
    page.goto(f"{live.url}/ui/activations")
    assert page.locator("#activations tbody tr").count() == 5
    shot(page, "activations")


def test_a_bad_key_is_refused(page: Any, live: Live) -> None:
    uuid = live.key.split(":")[0]
    sign_in(page, live, f"{uuid}:not-the-key")
    assert page.url.endswith("/ui/login")
    assert "not accepted" in page.text_content("[role=alert]")
    page.goto(f"{live.url}/ui/functions")
    assert page.url.endswith("/ui/login")  # no session was made


def test_one_namespace_never_sees_another(page: Any, live: Live) -> None:
    live.deploy("secret/fn")  # guest's
    guest_run = live.invoke("secret/fn").json()["activationId"]
    live.deploy("mine/fn", auth=live.other)
    live.invoke("mine/fn", {"name": "Other"}, auth=live.other)

    sign_in(page, live, live.other)
    page.wait_for_url(re.compile(r"/ui/functions$"))
    assert page.text_content("#namespace") == live.other_name
    text = page.text_content("#functions")
    assert "mine/fn" in text and "secret/fn" not in text and "demo/hello" not in text
    assert page.locator("[data-chart=invocations] svg.chart").get_attribute("data-total") == "1"
    page.goto(f"{live.url}/ui/activations")
    assert page.locator("#activations tbody tr").count() == 1
    page.goto(f"{live.url}/ui/activations/{guest_run}")
    assert "does not exist" in page.text_content("[role=alert]")
    response = page.goto(f"{live.url}/ui/functions/secret/fn")
    assert response.status == 404
    assert page.locator("#code").count() == 0
    assert "'secret/fn' does not exist" in page.text_content("[role=alert]")


def test_sign_out_ends_the_session(page: Any, live: Live) -> None:
    sign_in(page, live, live.key)
    page.wait_for_url(re.compile(r"/ui/functions$"))
    cookies = {c["name"]: c for c in page.context.cookies()}
    session = cookies["wisp_session"]
    assert session["httpOnly"] and session["secure"] and session["sameSite"] == "Strict"
    assert live.key.split(":")[1] not in session["value"]  # the key is never in the cookie
    page.click("text=Sign out")
    page.wait_for_url(re.compile(r"/ui/login$"))
    page.goto(f"{live.url}/ui/activations")
    assert page.url.endswith("/ui/login")
