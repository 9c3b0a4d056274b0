"""What deploying needs from the server: a handful of OpenWhisk REST calls.

Paths are relative to ``/api/v1/namespaces/_/``. The CLI's ``WispClient`` is the
implementation; tests use it over ``wisp.cli.transport.MockTransport``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Protocol

Params = Mapping[str, str | int]
LIST_PAGE = 200  # the API's largest page


def action_path(item: dict[str, Any]) -> str:
    """'pkg/fn' (or 'fn') for an action list item, whose namespace is 'ns' or 'ns/pkg'."""
    _, _, package = str(item.get("namespace", "")).partition("/")
    name = str(item.get("name", ""))
    return f"{package}/{name}" if package else name


class Remote(Protocol):
    def api_info(self) -> dict[str, Any]:
        """``GET /api/v1`` (runtimes and limits)."""
        ...

    def get(self, path: str, params: Params | None = None) -> Any:
        """GET, raising on any error status."""
        ...

    def find(self, path: str, params: Params | None = None) -> Any | None:
        """GET, with ``None`` for 404."""
        ...

    def put(self, path: str, body: Any, params: Params | None = None) -> Any: ...

    def delete(self, path: str, params: Params | None = None) -> Any: ...
