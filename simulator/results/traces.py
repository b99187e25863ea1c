"""Simulated requests as OpenTelemetry traces (``fansim run --traces FILE.json``).

``span_rows`` turns what the engine recorded (``engine.spans``) into plain rows with ids, so
they cross process boundaries; ``otlp_json`` writes them as OTLP JSON, the format of the
OpenTelemetry Collector's file exporter, which Jaeger and other OTel tools open.

Each sampled request is one trace: a root span for the request, kind CLIENT, in the service
``users`` (the load generator), and one span per call, kind SERVER, in the callee's service,
its parent the caller's span. Times are simulated milliseconds from the run's start, placed
after ``EPOCH_S`` (2026-01-01T00:00:00Z). Attributes (all ``fansim.*`` but ``error.type``):

* every call: ``fansim.attempt`` (first, retry, hedge), ``fansim.queue_ms``, ``fansim.step``
  (the scenario step that sent it), ``fansim.outcome`` (ok, error, rejected, cancelled),
  ``fansim.instance`` (contended services);
* a call its caller gave up on: ``fansim.given_up_after_ms`` and, for a timeout,
  ``fansim.timed_out`` true;
* failures as the caller saw them (error, rejected, timed out): status ERROR and
  ``error.type`` (``error``, ``rejected``, ``timeout``);
* the root span: ``fansim.outcome`` (ok, partial, failed, rejected) and
  ``fansim.sampling_ratio``: sampled requests ÷ the window's requests, so that an importer
  can scale the arrival rate back up.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

from .files import write_atomic
from .provenance import fansim_version

if TYPE_CHECKING:
    from ..engine.spans import SpanRecorder

EPOCH_S = 1_767_225_600  # 2026-01-01T00:00:00Z: where simulated time 0 is put
ROOT_SERVICE = "users"  # the service of a request's root span (the load generator)
SPAN_KIND_SERVER, SPAN_KIND_CLIENT = 2, 3
STATUS_ERROR = 2


def span_rows(recorder: SpanRecorder, seed: int) -> list[dict[str, Any]]:
    """The recorded spans as rows (dicts of plain values): trace and span ids (hex), the parent
    span id ("" for a root), service (None for a root), times (ms) and attributes."""
    ids: dict[int, str] = {}
    trace_of: dict[int, str] = {}

    def new_id(trace: str, n: int) -> str:
        return hashlib.blake2b(f"{trace}:{n}".encode(), digest_size=8).hexdigest()

    rows: list[dict[str, Any]] = []
    for root in recorder.roots:
        trace = hashlib.blake2b(f"{seed}:{root.request}".encode(), digest_size=16).hexdigest()
        trace_of[root.request] = trace
        ids[id(root)] = new_id(trace, 0)
    for n, span in enumerate(recorder.spans, start=1):
        ids[id(span.key)] = new_id(trace_of[span.request], n)
    ratio = len(recorder.roots) / max(recorder.window_requests, 1)
    roots = {root.request: root for root in recorder.roots}
    for root in recorder.roots:
        rows.append(
            {
                "trace_id": trace_of[root.request],
                "span_id": ids[id(root)],
                "parent_id": "",
                "service": None,
                "start_ms": root.start_ms,
                "end_ms": root.end_ms,
                "queue_ms": 0.0,
                "outcome": root.outcome,
                "sampling_ratio": ratio,
            }
        )
    for span in recorder.spans:
        parent = roots[span.request] if span.parent is None else span.parent
        if id(parent) not in ids:  # (every caller ends, so records its span: not expected)
            parent = roots[span.request]
        rows.append(
            {
                "trace_id": trace_of[span.request],
                "span_id": ids[id(span.key)],
                "parent_id": ids[id(parent)],
                "service": span.service,
                "instance": span.instance,
                "step": span.step,
                "start_ms": span.start_ms,
                "end_ms": span.end_ms,
                "queue_ms": span.served_ms - span.start_ms,
                "outcome": span.outcome,
                "attempt": span.attempt,
                "given_up_ms": span.given_up_ms,
                "timed_out": span.timed_out,
            }
        )
    return rows


def _attr(key: str, value: Any) -> dict[str, Any]:
    if isinstance(value, bool):
        return {"key": key, "value": {"boolValue": value}}
    if isinstance(value, int):
        return {"key": key, "value": {"intValue": str(value)}}
    if isinstance(value, float):
        return {"key": key, "value": {"doubleValue": round(value, 6)}}
    return {"key": key, "value": {"stringValue": str(value)}}


def _nanos(ms: float) -> str:
    return str(EPOCH_S * 1_000_000_000 + round(ms * 1_000_000))


def _otlp_span(row: dict[str, Any]) -> dict[str, Any]:
    span: dict[str, Any] = {
        "traceId": row["trace_id"],
        "spanId": row["span_id"],
        "parentSpanId": row["parent_id"],
        "startTimeUnixNano": _nanos(row["start_ms"]),
        "endTimeUnixNano": _nanos(row["end_ms"]),
    }
    if row["service"] is None:  # the request
        span |= {"name": "request", "kind": SPAN_KIND_CLIENT}
        attrs = [
            _attr("fansim.outcome", row["outcome"]),
            _attr("fansim.sampling_ratio", float(row["sampling_ratio"])),
        ]
        failed = row["outcome"] in ("failed", "rejected")
        span["attributes"] = attrs
        span["status"] = {"code": STATUS_ERROR, "message": row["outcome"]} if failed else {}
        return span
    span |= {"name": row["step"] or row["service"], "kind": SPAN_KIND_SERVER}
    attrs = [
        _attr("fansim.attempt", row["attempt"]),
        _attr("fansim.queue_ms", float(row["queue_ms"])),
        _attr("fansim.step", row["step"]),
        _attr("fansim.outcome", row["outcome"]),
    ]
    if row["instance"] >= 0:
        attrs.append(_attr("fansim.instance", int(row["instance"])))
    error = None
    if row["given_up_ms"] is not None:
        attrs.append(_attr("fansim.given_up_after_ms", row["given_up_ms"] - row["start_ms"]))
    if row["timed_out"]:
        attrs.append(_attr("fansim.timed_out", True))
        error = "timeout"
    elif row["outcome"] in ("error", "rejected"):
        error = row["outcome"]
    if error is not None:
        attrs.append(_attr("error.type", error))
        span["status"] = {"code": STATUS_ERROR, "message": error}
    span["attributes"] = attrs
    return span


def otlp_json(rows: list[dict[str, Any]], version: str) -> str:
    """Span rows as one OTLP JSON document (``resourceSpans``, one resource per service)."""
    by_service: dict[str, list[dict[str, Any]]] = {}
    services = {row["service"] for row in rows if row["service"] is not None}
    root_name = ROOT_SERVICE
    while root_name in services:  # a scenario's own service named "users"
        root_name += "-"
    for row in rows:
        by_service.setdefault(row["service"] or root_name, []).append(_otlp_span(row))
    doc = {
        "resourceSpans": [
            {
                "resource": {"attributes": [_attr("service.name", name)]},
                "scopeSpans": [{"scope": {"name": "fansim", "version": version}, "spans": spans}],
            }
            for name, spans in by_service.items()
        ]
    }
    return json.dumps(doc, separators=(",", ":")) + "\n"


def write_traces(path: Path, rows: list[dict[str, Any]]) -> tuple[int, int]:
    """Write span rows to ``path`` as OTLP JSON (atomically); return (requests, call spans)."""
    write_atomic(path, otlp_json(rows, fansim_version()))
    requests = sum(1 for row in rows if row["service"] is None)
    return requests, len(rows) - requests
