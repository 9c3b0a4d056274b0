"""Spans exported over OTLP/HTTP to a real (tiny) collector on loopback."""

from __future__ import annotations

import json
import sys
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from opentelemetry.proto.collector.trace.v1 import trace_service_pb2
from opentelemetry.proto.trace.v1 import trace_pb2

from tests.observability.live import start_live
from wisp.errors import PlatformError
from wisp.models import APPLICATION_ERROR, SUCCESS, Activation
from wisp.observability.otlp import SpanExport, traces_url

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT = "00f067aa0ba902b7"
CODE = "import os\ndef main(args):\n    return {'traceparent': os.environ.get('TRACEPARENT')}\n"


class Collector:
    """Accepts ``POST /v1/traces`` (protobuf) and keeps the spans it decodes."""

    def __init__(self) -> None:
        self.spans: list[tuple[trace_pb2.Span, dict[str, Any]]] = []  # span, resource attrs
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                request = trace_service_pb2.ExportTraceServiceRequest()
                request.ParseFromString(body)
                received.paths.append(self.path)
                for resource_spans in request.resource_spans:
                    resource = attributes(resource_spans.resource.attributes)
                    for scope_spans in resource_spans.scope_spans:
                        for span in scope_spans.spans:
                            received.spans.append((span, resource))
                reply = trace_service_pb2.ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def wait_for(self, count: int, timeout: float = 30.0) -> list[trace_pb2.Span]:
        deadline = time.monotonic() + timeout
        while len(self.spans) < count and time.monotonic() < deadline:
            time.sleep(0.05)
        assert len(self.spans) >= count, f"{len(self.spans)} spans after {timeout}s"
        return [span for span, _ in self.spans]

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def attributes(pairs: Any) -> dict[str, Any]:
    found: dict[str, Any] = {}
    for pair in pairs:
        kind = pair.value.WhichOneof("value")
        found[pair.key] = getattr(pair.value, kind)
    return found


@pytest.fixture
def collector() -> Iterator[Collector]:
    c = Collector()
    yield c
    c.close()


def record(status: int = SUCCESS, **ids: Any) -> Activation:
    annotations = [{"key": "path", "value": "guest/pkg/fn"}, {"key": "initTime", "value": 12}]
    annotations += [{"key": key, "value": value} for key, value in ids.items()]
    result = {"error": "it broke"} if status != SUCCESS else {"ok": True}
    return Activation(
        "a" * 32,
        "guest",
        "pkg/fn",
        "0.0.3",
        "guest",
        1_000,
        1_250,
        status,
        result,
        annotations=annotations,
    )


def test_traces_url_follows_otlp_rules() -> None:
    assert traces_url("http://c:4318") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/") == "http://c:4318/v1/traces"
    assert traces_url("http://c:4318/v1/traces") == "http://c:4318/v1/traces"


def test_a_record_becomes_a_span_under_its_callers_span(collector: Collector) -> None:
    spans = SpanExport(collector.url, delay_ms=10)
    spans.observe(
        record(traceId=TRACE_ID, spanId="1111111111111111", parentSpanId=PARENT, requestId="r-1")
    )
    spans.observe(record(APPLICATION_ERROR, traceId=TRACE_ID, spanId="2222222222222222"))
    spans.observe(record())  # no trace: no span
    spans.observe(record(traceId=TRACE_ID, spanId="3333333333333333", sampled=False))
    spans.shutdown()
    (ok, resource), (failed, _) = collector.spans
    assert collector.paths == ["/v1/traces"]
    assert resource["service.name"] == "wisp"
    assert ok.name == "invoke guest/pkg/fn"
    assert ok.trace_id.hex() == TRACE_ID
    assert ok.span_id.hex() == "1111111111111111"
    assert ok.parent_span_id.hex() == PARENT
    assert ok.kind == trace_pb2.Span.SPAN_KIND_SERVER
    assert (ok.start_time_unix_nano, ok.end_time_unix_nano) == (1_000_000_000, 1_250_000_000)
    assert attributes(ok.attributes) == {
        "wisp.namespace": "guest",
        "wisp.function": "pkg/fn",
        "wisp.version": "0.0.3",
        "wisp.activation_id": "a" * 32,
        "wisp.cold_start": True,
        "wisp.status": "success",
        "wisp.duration_ms": 250,
        "wisp.request_id": "r-1",
        "faas.name": "guest/pkg/fn",
        "faas.version": "0.0.3",
        "faas.invocation_id": "a" * 32,
        "faas.coldstart": True,
    }
    assert ok.status.code == trace_pb2.Status.STATUS_CODE_UNSET
    assert failed.parent_span_id == b""  # a trace Wisp started
    assert failed.status.code == trace_pb2.Status.STATUS_CODE_ERROR
    assert failed.status.message == "it broke"
    assert attributes(failed.attributes)["wisp.status"] == "application error"


def test_without_the_extra_the_error_names_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "opentelemetry.exporter.otlp.proto.http.trace_exporter", None)
    with pytest.raises(PlatformError) as caught:
        SpanExport("http://127.0.0.1:4318")
    assert "pip install 'wisp[otel]'" in caught.value.message


@pytest.fixture(scope="module")
def traced_live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Any, Collector]]:
    collector = Collector()
    tmp = tmp_path_factory.mktemp("otlp")
    try:
        for live in start_live(tmp, ("--log-format", "json", "--otlp-endpoint", collector.url)):
            yield live, collector
    finally:
        collector.close()


def test_a_live_server_exports_the_activation_span(traced_live) -> None:
    live, collector = traced_live
    live.deploy("traced", CODE)
    with live.client() as http:
        r = http.post(
            "/api/v1/namespaces/_/actions/traced?blocking=true",
            json={},
            headers={"traceparent": f"00-{TRACE_ID}-{PARENT}-01", "X-Request-Id": "otlp-1"},
        )
    assert r.status_code == 200, r.text
    record = r.json()
    (span,) = [s for s in collector.wait_for(1) if s.trace_id.hex() == TRACE_ID]
    assert span.parent_span_id.hex() == PARENT
    # The function's TRACEPARENT names the exported span as the parent of its own.
    assert record["response"]["result"]["traceparent"] == f"00-{TRACE_ID}-{span.span_id.hex()}-01"
    found = attributes(span.attributes)
    assert found["wisp.activation_id"] == record["activationId"]
    assert found["wisp.request_id"] == "otlp-1"
    assert found["wisp.cold_start"] is True
    assert span.name == "invoke guest/traced"


def test_a_live_server_logs_json_lines_with_request_ids(traced_live) -> None:
    live, _ = traced_live
    with live.client() as http:
        r = http.get("/api/v1/namespaces/_/actions", headers={"X-Request-Id": "list-42"})
        assert r.status_code == 200 and r.headers["x-request-id"] == "list-42"
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        lines = [json.loads(line) for line in Path(live.log).read_text().splitlines() if line]
        if any(line.get("request_id") == "list-42" for line in lines):
            break
        time.sleep(0.05)
    # Every line on stderr is a JSON object (the banner too).
    assert lines[0]["message"].startswith("Wisp listening on") and lines[0]["otlp"]
    (access,) = [line for line in lines if line.get("request_id") == "list-42"]
    assert access["logger"] == "wisp.access" and access["status"] == 200
    assert access["path"] == "/api/v1/namespaces/_/actions" and access["level"] == "info"
    assert {"ts", "level", "logger", "message"} <= set(lines[-1])
    assert httpx.get(f"{live.url}/healthz").headers["x-request-id"]
