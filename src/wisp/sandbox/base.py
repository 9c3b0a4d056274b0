"""The sandbox seam: where instances come from and how they are confined.

An instance is one sandboxed process that runs one activation at a time:
``init`` once with the code, then ``run`` any number of times.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Code:
    """What ``init`` loads into an instance."""

    source: str = ""  # source text for single-file functions
    bundle: str = ""  # path of an unpacked zip for multi-file functions
    main: str = "main"
    env: dict[str, str] = field(default_factory=dict)
    memory_mb: int = 256


@dataclass
class Outcome:
    """What happened in one ``init`` or ``run``; never an exception for user failures."""

    ok: bool
    result: Any = None  # the function's dict result, when ok
    error: str = ""  # what went wrong, for the activation's {"error": ...}
    kind: str = ""  # "", "exception", "invalid", "init", "timeout", "oom", "crash", "platform"
    size: int = 0  # bytes of the serialized result
    logs: list[str] = field(default_factory=list)
    cpu_ms: float | None = None  # CPU time of a run, when the host could measure it
    peak_memory: int | None = None  # bytes, likewise


class Instance(ABC):
    kind: str
    memory_mb: int
    pid: int

    @property
    @abstractmethod
    def alive(self) -> bool: ...

    @abstractmethod
    async def init(self, code: Code, timeout: float, log_limit: int) -> Outcome: ...

    @abstractmethod
    async def run(
        self, args: dict[str, Any], meta: dict[str, Any], timeout: float, log_limit: int
    ) -> Outcome: ...

    @abstractmethod
    async def kill(self) -> None: ...


class Sandbox(ABC):
    """Creates instances for runtime kinds."""

    isolation: str = "none"  # what confinement this host achieved, for `wisp server` and /healthz

    @property
    def level(self) -> str:
        """minimal < standard < strict."""
        return "minimal"

    @property
    def egress_mode(self) -> str:
        """What an ``egress`` function's network is: filtered, none or unfiltered."""
        return "none"

    def egress_note(self) -> str:
        """One line for the start-up banner: what ``egress`` functions get."""
        return self.egress_mode

    def prepare_isolation(self) -> None:  # noqa: B027
        """Host-wide layers, and refuse below the operator's minimum level (before serving)."""

    def ready(self) -> dict[tuple[str, str], int]:
        """Stem cells ready per (kind, network mode)."""
        return {}

    async def start(self) -> None:  # noqa: B027
        """Prepare zygotes and stem cells."""

    async def stop(self) -> None:  # noqa: B027
        """Kill every instance and zygote."""

    @abstractmethod
    async def spawn(self, kind: str, network: str = "egress") -> Instance:
        """A fresh, confined, code-less instance (from a ready stem cell when there is one).

        ``network``: "egress" (the internet, filtered; loopback only where there is no
        filter, see ``egress_mode``) or "none" (loopback only).
        """
