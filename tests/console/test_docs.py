"""/docs in headless Chromium: it renders the operations and "Try it" calls the API."""

from __future__ import annotations

from typing import Any

import pytest

from tests.observability.live import Live

pytestmark = pytest.mark.slow


def test_try_it_lists_the_functions(page: Any, live: Live) -> None:
    live.deploy("docs/fn")
    page.goto(f"{live.url}/docs")
    page.fill("#auth", live.key)
    card = page.locator(
        "section.operation[data-method=get][data-path='/api/v1/namespaces/{ns}/actions']"
    )
    card.locator("button").click()
    response = card.locator("pre.response")
    response.wait_for(state="visible")
    page.wait_for_function(
        "s => !document.querySelector(s).textContent.startsWith('…')",
        arg="section.operation[data-method=get][data-path='/api/v1/namespaces/{ns}/actions'] pre.response",
    )
    text = response.text_content()
    assert text.startswith("200") and '"name": "fn"' in text
    assert page.locator("section.operation").count() >= 20
