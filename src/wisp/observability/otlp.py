"""A span per invocation, exported over OTLP/HTTP when an endpoint is configured.

The span is the activation itself: its ids are the ones the function saw in
``TRACEPARENT`` (annotations ``traceId``/``spanId``), its parent is the caller's span
(``parentSpanId``), so spans the function exports hang under it. Records are turned
into spans on the invocation path (a few microseconds) and queued; the SDK's batch
processor exports them from its own thread. Needs the ``otel`` extra, imported
only when an endpoint is set.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from wisp.errors import PlatformError
from wisp.models import STATUS_TEXT, SUCCESS, Activation

if TYPE_CHECKING:
    from opentelemetry.sdk.trace.export import BatchSpanProcessor

TRACES_PATH = "/v1/traces"
SERVICE = "wisp"
EXPORT_DELAY_MS = 1000  # how long a finished span may wait to be batched


def traces_url(endpoint: str) -> str:
    """OTLP's rule for a base endpoint: the signal's path is appended."""
    return endpoint if endpoint.endswith(TRACES_PATH) else endpoint.rstrip("/") + TRACES_PATH


class SpanExport:
    def __init__(self, endpoint: str, *, delay_ms: float = EXPORT_DELAY_MS) -> None:
        try:
            from opentelemetry import trace
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
            from opentelemetry.sdk.resources import Resource
            from opentelemetry.sdk.trace import ReadableSpan
            from opentelemetry.sdk.trace.export import BatchSpanProcessor
            from opentelemetry.sdk.util.instrumentation import InstrumentationScope
        except ImportError as exc:
            raise PlatformError(
                f"exporting spans to {endpoint} needs OpenTelemetry ({exc.name} is missing): "
                "pip install 'wisp[otel]'"
            ) from None
        self.url = traces_url(endpoint)
        self._trace = trace
        self._span = ReadableSpan
        self._resource = Resource.create({"service.name": SERVICE})
        self._scope = InstrumentationScope("wisp.invoker")
        self.processor: BatchSpanProcessor = BatchSpanProcessor(
            OTLPSpanExporter(endpoint=self.url), schedule_delay_millis=delay_ms
        )

    def observe(self, record: Activation) -> None:
        """Queue ``record``'s span; records without a sampled trace have none."""
        ids: dict[str, Any] = {}
        for annotation in record.annotations:
            key = annotation["key"]
            if key in _IDS:
                ids[key] = annotation["value"]
        if "traceId" not in ids or ids.get("sampled") is False:
            return
        trace = self._trace
        sampled = trace.TraceFlags(trace.TraceFlags.SAMPLED)
        trace_id = int(ids["traceId"], 16)
        context = trace.SpanContext(trace_id, int(ids["spanId"], 16), False, sampled)
        parent = None
        if "parentSpanId" in ids:
            parent = trace.SpanContext(trace_id, int(ids["parentSpanId"], 16), True, sampled)
        status = trace.Status(trace.StatusCode.UNSET)
        if record.status_code != SUCCESS:
            error = record.result.get("error") if isinstance(record.result, dict) else None
            status = trace.Status(trace.StatusCode.ERROR, str(error)[:256] if error else None)
        cold = "initTime" in ids
        name = f"{record.namespace}/{record.name}"
        attributes: dict[str, str | bool | int] = {
            "wisp.namespace": record.namespace,
            "wisp.function": record.name,
            "wisp.version": record.version,
            "wisp.activation_id": record.activation_id,
            "wisp.cold_start": cold,
            "wisp.status": STATUS_TEXT.get(record.status_code, "unknown"),
            "wisp.duration_ms": record.duration,
            # OpenTelemetry's FaaS conventions, for tools that know them.
            "faas.name": name,
            "faas.version": record.version,
            "faas.invocation_id": record.activation_id,
            "faas.coldstart": cold,
        }
        if "requestId" in ids:
            attributes["wisp.request_id"] = ids["requestId"]
        span = self._span(
            f"invoke {name}",
            context=context,
            parent=parent,
            resource=self._resource,
            attributes=attributes,
            kind=trace.SpanKind.SERVER,
            status=status,
            start_time=record.start * 1_000_000,
            end_time=record.end * 1_000_000,
            instrumentation_scope=self._scope,
        )
        self.processor.on_end(span)

    def shutdown(self) -> None:
        """Export what is queued, then stop (blocks: call it off the event loop)."""
        self.processor.shutdown()  # type: ignore[no-untyped-call]


_IDS = frozenset({"traceId", "spanId", "parentSpanId", "sampled", "initTime", "requestId"})
