"""Real sandboxes under the local invoker (the invoker tests' fixtures)."""

from tests.invoker.conftest import invoke, platform  # noqa: F401
