"""Real sandboxes under the local invoker (the invoker tests' fixtures), and a live server."""

from __future__ import annotations

import pytest

from tests.invoker.conftest import invoke, platform
from tests.observability.live import Live, start_live


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory):
    yield from start_live(tmp_path_factory.mktemp("live"))


__all__ = ["Live", "invoke", "live", "platform"]
