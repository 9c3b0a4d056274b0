"""W3C trace context (``traceparent``/``tracestate``) for invocations.

An invocation is one span: its trace id comes from the caller's ``traceparent``
(or is new), its parent is the caller's span, and its own span id is what the
function sees in ``TRACEPARENT``, so spans the function starts are children of
the activation. A malformed header is ignored (W3C: start a new trace), never an
error. See https://www.w3.org/TR/trace-context/.
"""

from __future__ import annotations

import re
from contextvars import ContextVar
from random import getrandbits
from typing import NamedTuple

from starlette.datastructures import Headers

# The (traceparent, tracestate) headers of the HTTP request being handled, set by the
# API's request tracking only when a traceparent came in; parsed when it invokes.
INCOMING: ContextVar[tuple[str, str | None] | None] = ContextVar("wisp_trace", default=None)

# version-traceid-parentid-flags; later versions may append "-..." fields.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_ZERO_TRACE = "0" * 32
_ZERO_SPAN = "0" * 16
TRACESTATE_MAX = 512  # characters kept; W3C lets a vendor drop a longer one
_TRACESTATE = re.compile(r"[\x20-\x7e]*")
SAMPLED = "01"


class Trace(NamedTuple):  # a tuple: made per invocation, several times cheaper than a dataclass
    trace_id: str  # 32 hex
    span_id: str  # 16 hex: the activation's own span
    parent_id: str | None = None  # 16 hex: the caller's span; None for a trace we started
    flags: str = SAMPLED
    state: str = ""  # the caller's tracestate, passed on unchanged

    @property
    def traceparent(self) -> str:
        """The header a function passes on: its activation is the parent."""
        return f"00-{self.trace_id}-{self.span_id}-{self.flags}"


# Ids need to be unique and uniform, not secret: the module's Mersenne Twister (seeded
# from the OS, reseeded after fork) costs ~1 us where os.urandom costs several here.
def new_span_id() -> str:
    return f"{getrandbits(64) or 1:016x}"


def new_trace() -> Trace:
    return Trace(f"{getrandbits(128) or 1:032x}", new_span_id())


def parse(traceparent: str | None, tracestate: str | None = None) -> Trace | None:
    """The activation's span under ``traceparent``; None when it is absent or malformed."""
    if not traceparent:
        return None
    match = _TRACEPARENT.fullmatch(traceparent.strip())
    if match is None:
        return None
    version, trace_id, parent_id, flags, rest = match.groups()
    if version == "ff" or (version == "00" and rest is not None):
        return None
    if trace_id == _ZERO_TRACE or parent_id == _ZERO_SPAN:
        return None
    state = ""
    if tracestate and len(tracestate) <= TRACESTATE_MAX and _TRACESTATE.fullmatch(tracestate):
        state = tracestate.strip()
    # Only the sampled bit is defined; others are not passed on (W3C, version 00).
    flags = SAMPLED if int(flags, 16) & 1 else "00"
    return Trace(trace_id, new_span_id(), parent_id, flags, state)


def from_headers(headers: Headers) -> Trace | None:
    return parse(headers.get("traceparent"), headers.get("tracestate"))


def incoming() -> Trace | None:
    """The activation's span under the current request's traceparent, if it has one."""
    headers = INCOMING.get()
    return parse(*headers) if headers is not None else None
