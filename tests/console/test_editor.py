"""Create and edit a function in the console's code editor, in a real headless Chromium
against a real `wisp server`: the editor is served by the package, under the console's
strict CSP, and a deploy goes through the same core as the REST API."""

from __future__ import annotations

import re
from typing import Any

import pytest

from tests.console.test_browser import sign_in
from tests.observability.live import Live

pytestmark = pytest.mark.slow
FIRST = "def main(args):\n    return {'body': 'made in the browser by ' + args.get('name', '?')}\n"
SECOND = "def main(args):\n    return {'body': 'edited, ' + args.get('name', '?')}\n"


def replace_code(page: Any, code: str) -> None:
    page.click("#editor .ace_content")
    page.keyboard.press("Control+A")
    page.keyboard.press("Delete")
    page.keyboard.insert_text(code)


def test_create_then_edit_a_function_in_the_editor(page: Any, live: Live) -> None:
    problems: list[str] = []
    page.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    page.on("requestfailed", lambda r: problems.append(f"failed: {r.url}"))
    page.on("response", lambda r: problems.append(f"{r.status}: {r.url}") if r.status >= 400 else None)
    sign_in(page, live, live.key)
    page.wait_for_url(re.compile(r"/ui/functions$"))
    page.click("#new-function")
    page.wait_for_url(re.compile(r"/ui/new$"))
    # The editor replaced the textarea: Ace's own markup, highlighting Python.
    page.wait_for_selector("#editor .ace_content")
    assert page.locator("#code").is_hidden()
    assert page.locator("#editor .ace_keyword", has_text="def").count() >= 1  # the starter
    script = page.locator("script[src*='ace.js']").get_attribute("src")
    assert script == "/ui/static/editor/ace.js"  # from the package, no CDN

    page.fill("#name", "from-browser")
    replace_code(page, FIRST)
    page.click("#edit button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/functions/from-browser$"))
    assert "made in the browser by" in page.text_content("#code")
    reply = live.invoke("from-browser", {"name": "Ada"}).json()
    assert reply["response"]["result"] == {"body": "made in the browser by Ada"}

    page.click("#edit-link")
    page.wait_for_url(re.compile(r"/ui/edit/from-browser$"))
    page.wait_for_selector("#editor .ace_content")
    assert page.evaluate("window.wispEditor.getValue()") == FIRST
    assert page.locator("#name").get_attribute("readonly") is not None
    replace_code(page, SECOND)
    page.click("#edit button[type=submit]")
    page.wait_for_url(re.compile(r"/ui/functions/from-browser$"))
    assert "0.0.2" in page.text_content("h1")
    reply = live.invoke("from-browser", {"name": "Bob"}).json()
    assert reply["response"]["result"] == {"body": "edited, Bob"}
    assert problems == []  # no CSP refusal, no missing editor file


def test_a_refused_deploy_keeps_what_was_typed(page: Any, live: Live) -> None:
    sign_in(page, live, live.key)
    page.wait_for_url(re.compile(r"/ui/functions$"))
    page.goto(f"{live.url}/ui/new")
    page.wait_for_selector("#editor .ace_content")
    page.fill("#name", "no-such-package/fn")
    replace_code(page, "def main(args):\n    return {'kept': True}\n")
    page.click("#edit button[type=submit]")
    assert "package 'no-such-package' does not exist" in page.text_content("#error")
    page.wait_for_selector("#editor .ace_content")
    assert page.evaluate("window.wispEditor.getValue()") == (
        "def main(args):\n    return {'kept': True}\n"
    )
    assert page.input_value("#name") == "no-such-package/fn"
    with live.client() as http:
        listed = http.get("/api/v1/namespaces/_/actions").json()
    assert isinstance(listed, list) and all(a["name"] != "fn" for a in listed)  # nothing made
