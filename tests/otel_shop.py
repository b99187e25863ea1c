"""A tiny shop's service chain, instrumented with the OpenTelemetry SDK: the source of
``scenarios/shop-traces.json``, the trace file ``fansim import`` ships with.

The services run in-process on simulated time (each span gets explicit start and end
timestamps drawn from latency distributions), so the file is the same on every machine; the
spans are made, batched and encoded by the OpenTelemetry SDK and its OTLP encoder, as a real
service's would be. The chain:

* ``frontend`` (SERVER ``GET /product/{id}``) works ~1.5 ms, then calls ``catalog`` and
  ``pricing`` in parallel over HTTP (CLIENT spans, 0.1-0.3 ms of network each way), then
  ``recommendations``, retrying it (``http.request.resend_count``) up to twice, 5 ms apart,
  when it fails; then renders (an INTERNAL span);
* ``catalog`` works ~2 ms, then runs two queries in a row on PostgreSQL (CLIENT spans with
  ``db.system``: the database is not instrumented);
* ``pricing`` works ~0.8 ms, then reads three keys from Redis in parallel;
* ``recommendations`` works ~8 ms (a long tail), and fails 4% of the time.

Regenerate with ``python tests/otel_shop.py scenarios/shop-traces.json``. The file is written
as the OpenTelemetry Collector's file exporter writes: one OTLP JSON request per line (a batch
of 50 traces), hex ids.
"""

from __future__ import annotations

import base64
import json
import random
import sys
from pathlib import Path

import numpy as np
from google.protobuf.json_format import MessageToDict
from opentelemetry import trace
from opentelemetry.exporter.otlp.proto.common.trace_encoder import encode_spans
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from opentelemetry.sdk.trace.id_generator import IdGenerator
from opentelemetry.trace import SpanKind, Status, StatusCode

START_NS = 1_767_261_600 * 10**9  # 2026-01-01T10:00:00Z
TRACES = 300
RPS = 40.0


class SeededIds(IdGenerator):
    """Span and trace ids from a seeded generator, so the file is reproducible."""

    def __init__(self, seed: int) -> None:
        self.random = random.Random(seed)

    def generate_span_id(self) -> int:
        return self.random.getrandbits(64) or 1

    def generate_trace_id(self) -> int:
        return self.random.getrandbits(128) or 1


class Shop:
    """The chain: one tracer (and TracerProvider, with its own ``service.name``) per service."""

    def __init__(self, seed: int = 7) -> None:
        self.rng = np.random.default_rng(seed)
        self.exporter = InMemorySpanExporter()
        ids = SeededIds(seed)
        self.tracers = {}
        for name in ("frontend", "catalog", "pricing", "recommendations"):
            provider = TracerProvider(
                resource=Resource.create(
                    {
                        "service.name": name,
                        "service.version": "1.4.2",
                        "service.instance.id": f"{name}-0",
                    }  # fixed: the SDK would draw one
                ),  # fmt: skip
                id_generator=ids,
            )
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))
            self.tracers[name] = provider.get_tracer("shop", "1.4.2")

    def ms(self, p50: float, sigma: float) -> int:
        """A lognormal latency (ns) with median ``p50`` ms."""
        return int(p50 * np.exp(sigma * self.rng.standard_normal()) * 1e6)

    def net(self) -> int:
        return int(self.rng.uniform(0.1, 0.3) * 1e6)

    def span(self, service, name, kind, parent, start, **attributes):
        ctx = trace.set_span_in_context(parent) if parent is not None else None
        return self.tracers[service].start_span(
            name, context=ctx, kind=kind, start_time=start, attributes=attributes
        )

    def http(self, caller, parent, callee, route, start, serve, **attributes) -> tuple[int, bool]:
        """An HTTP call: the caller's CLIENT span around the callee's SERVER span; ``serve``
        does the callee's work and returns (end, ok). Returns (end, ok) as the caller sees."""
        client = self.span(caller, f"GET {route}", SpanKind.CLIENT, parent, start,
                           **{"http.request.method": "GET", "server.address": callee,
                              **attributes})  # fmt: skip
        arrive = start + self.net()
        server = self.span(callee, f"GET {route}", SpanKind.SERVER, client, arrive,
                           **{"http.request.method": "GET", "http.route": route})  # fmt: skip
        end, ok = serve(server, arrive)
        if not ok:
            server.set_status(Status(StatusCode.ERROR, "upstream failure"))
            server.set_attribute("http.response.status_code", 500)
        server.end(end_time=end)
        back = end + self.net()
        if not ok:
            client.set_status(Status(StatusCode.ERROR))
            client.set_attribute("error.type", "500")
        client.end(end_time=back)
        return back, ok

    def query(self, caller, parent, system, statement, start, p50) -> int:
        """A database call: a CLIENT span only (the database is not instrumented)."""
        span = self.span(caller, statement.split()[0], SpanKind.CLIENT, parent, start,
                         **{"db.system": system, "db.query.text": statement})  # fmt: skip
        end = start + self.ms(p50, 0.6)
        span.end(end_time=end)
        return end

    def catalog(self, server, t) -> tuple[int, bool]:
        t += self.ms(2.0, 0.5)
        t = self.query("catalog", server, "postgresql", "SELECT * FROM product", t, 1.2)
        t = self.query("catalog", server, "postgresql", "SELECT * FROM stock", t, 1.2)
        return t, True

    def pricing(self, server, t) -> tuple[int, bool]:
        t += self.ms(0.8, 0.4)
        ends = [self.query("pricing", server, "redis", f"GET price:{i}", t, 0.3) for i in range(3)]
        return max(ends), True

    def recommendations(self, server, t) -> tuple[int, bool]:
        return t + self.ms(8.0, 0.7), self.rng.random() >= 0.04

    def request(self, t0: int) -> None:
        route = "/product/{id}"
        root = self.span("frontend", f"GET {route}", SpanKind.SERVER, None, t0,
                         **{"http.request.method": "GET", "http.route": route})  # fmt: skip
        t = t0 + self.ms(1.5, 0.5)
        a, _ = self.http("frontend", root, "catalog", "/items/{id}", t, self.catalog)
        b, _ = self.http("frontend", root, "pricing", "/price/{id}", t + 20_000, self.pricing)
        t = max(a, b)
        for attempt in range(3):  # the first try and up to two retries
            extra = {"http.request.resend_count": attempt} if attempt else {}
            t, ok = self.http("frontend", root, "recommendations", "/recs/{id}", t,
                              self.recommendations, **extra)  # fmt: skip
            if ok:
                break
            t += 5_000_000  # 5 ms backoff
        render = self.span("frontend", "render", SpanKind.INTERNAL, root, t)
        t += self.ms(0.5, 0.3)
        render.end(end_time=t)
        if not ok:
            root.set_status(Status(StatusCode.ERROR))
        root.end(end_time=t)

    def run(self, traces: int = TRACES) -> None:
        t = START_NS
        for _ in range(traces):
            t += int(self.rng.exponential(1e9 / RPS))
            self.request(t)


def _hex(value: str) -> str:
    return base64.b64decode(value).hex()


def collector_lines(spans, batch: int = 50) -> str:
    """The spans as the Collector's file exporter writes them: one OTLP JSON request a line,
    ``batch`` traces each, hex ids and numeric kinds (protobuf's own JSON has base64 ids)."""
    by_trace: dict[int, list] = {}
    for span in spans:
        by_trace.setdefault(span.context.trace_id, []).append(span)
    traces = list(by_trace.values())
    lines = []
    for i in range(0, len(traces), batch):
        chunk = [s for t in traces[i : i + batch] for s in t]
        doc = MessageToDict(encode_spans(chunk), use_integers_for_enums=True)
        for resource in doc["resourceSpans"]:
            for scope in resource["scopeSpans"]:
                for s in scope["spans"]:
                    for key in ("traceId", "spanId", "parentSpanId"):
                        if key in s:
                            s[key] = _hex(s[key])
        lines.append(json.dumps(doc, separators=(",", ":")))
    return "\n".join(lines) + "\n"


def protobuf_json(spans) -> str:
    """The spans as protobuf's JSON mapping writes them: one document, base64 ids."""
    return json.dumps(MessageToDict(encode_spans(spans)))


def shop_spans(traces: int = TRACES, seed: int = 7):
    shop = Shop(seed)
    shop.run(traces)
    return shop.exporter.get_finished_spans()


if __name__ == "__main__":
    Path(sys.argv[1]).write_text(collector_lines(shop_spans()))
