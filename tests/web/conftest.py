"""Web tests use the API's in-process fixtures (in-memory store, FakeInvoker)."""

from __future__ import annotations

from typing import Any

from tests.api.conftest import (  # noqa: F401  (fixtures)
    anonymous,
    app,
    entities,
    guest,
    invoker,
    other,
    platform,
    settings,
    store,
    store_kind,
)

WEB = "/api/v1/web"


def web_action(
    web: bool | str = True,
    secure: bool | str | None = None,
    custom_options: bool = False,
    parameters: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An action PUT body with the annotations a deploy of ``web:``/``webSecure:`` sends."""
    annotations: list[dict[str, Any]] = [
        {"key": "web-export", "value": web is not False},
        {"key": "raw-http", "value": web == "raw"},
        {"key": "final", "value": True},
    ]
    if secure is not None:
        annotations.append({"key": "require-whisk-auth", "value": secure})
    if custom_options:
        annotations.append({"key": "web-custom-options", "value": True})
    return {
        "exec": {"kind": "python:default", "code": "def main(args):\n    return args\n"},
        "annotations": annotations,
        "parameters": [{"key": k, "value": v} for k, v in (parameters or {}).items()],
    }
