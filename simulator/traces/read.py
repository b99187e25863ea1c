"""Read trace files into one span table: OTLP JSON, Jaeger JSON and Zipkin v2 JSON.

* **OTLP JSON**: ``{"resourceSpans": [...]}``, one document or one per line (the
  OpenTelemetry Collector's file exporter writes a line per batch); ``scopeSpans`` or the older
  ``instrumentationLibrarySpans``; ids in hex (the OTLP/JSON rule) or base64 (protobuf's
  default JSON mapping); ``kind`` as a number or a ``SPAN_KIND_*`` name.
* **Jaeger JSON**: the UI's download and the query API's answer, ``{"data": [trace, ...]}``,
  each trace with ``spans`` (``references`` CHILD_OF, times in microseconds) and ``processes``
  (the service names).
* **Zipkin v2 JSON**: a list of spans, or a list of traces (lists of spans), times in
  microseconds. A client and a server span sharing one id (B3 "shared" spans) become two
  spans, the server span a child of the client span.

Everything becomes a :class:`Span` with times in milliseconds. A file that is not JSON, or not
one of these formats, is bad input (``TraceError``: one line naming the file).
"""

from __future__ import annotations

import base64
import binascii
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

FORMATS = ("otlp", "jaeger", "zipkin")
_KINDS = {1: "internal", 2: "server", 3: "client", 4: "producer", 5: "consumer"}


class TraceError(ValueError):
    """A trace file that cannot be read: its message is one line naming the file."""


@dataclass
class Span:
    """One span, whatever format it came in (times in ms since the earliest span read: as
    floats, times since 1970 would keep only a quarter-microsecond)."""

    trace_id: str
    span_id: str
    parent_id: str  # "" for a root
    service: str  # "" when the span names none
    name: str
    kind: str  # server | client | internal | producer | consumer | "" (unknown)
    start_ms: float
    end_ms: float
    error: bool = False
    attrs: dict[str, Any] = field(default_factory=dict)
    remote_service: str = ""  # a client span's callee, when the span names it


def read_traces(paths: list[Path], fmt: str | None = None) -> tuple[list[Span], list[str]]:
    """Every span in ``paths`` and the format each file was read as (detected unless ``fmt``)."""
    spans: list[Span] = []  # times in ns since the Unix epoch, until the end
    formats = []
    for path in paths:
        docs = _load_json(path)
        kind = fmt or _detect(docs, path)
        reader = {"otlp": _otlp, "jaeger": _jaeger, "zipkin": _zipkin}[kind]
        try:
            for doc in docs:
                spans += reader(doc)
        except (KeyError, TypeError, ValueError, AttributeError) as e:
            raise TraceError(f"{path}: not valid {kind} JSON ({_why(e)})") from None
        formats.append(kind)
    if spans:
        base = min(s.start_ms for s in spans)
        for s in spans:
            s.start_ms, s.end_ms = (s.start_ms - base) / 1e6, (s.end_ms - base) / 1e6
    return spans, formats


def _why(e: Exception) -> str:
    return f"missing key {e}" if isinstance(e, KeyError) else str(e) or type(e).__name__


def _load_json(path: Path) -> list[Any]:
    """The file's JSON documents: one, or one per line (JSON Lines)."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as e:
        raise TraceError(f"{path}: cannot read: {e.strerror}") from None
    except UnicodeDecodeError:
        raise TraceError(f"{path}: not a text file (JSON expected)") from None
    if not text.strip():
        raise TraceError(f"{path}: empty file")
    try:
        return [json.loads(text)]
    except RecursionError:
        raise TraceError(f"{path}: JSON nested too deeply to read") from None
    except json.JSONDecodeError as whole:
        lines = [line for line in text.splitlines() if line.strip()]
        try:
            return [json.loads(line) for line in lines]
        except (json.JSONDecodeError, RecursionError):
            raise TraceError(
                f"{path}:{whole.lineno}:{whole.colno}: not JSON: {whole.msg}"
            ) from None


def _detect(docs: list[Any], path: Path) -> str:
    first = docs[0]
    if isinstance(first, dict) and "resourceSpans" in first:
        return "otlp"
    if isinstance(first, dict) and isinstance(first.get("data"), list):
        return "jaeger"
    if isinstance(first, list):
        inner = first[0] if first and isinstance(first[0], list) else first
        if not inner or (isinstance(inner[0], dict) and "traceId" in inner[0]):
            return "zipkin"
    raise TraceError(
        f"{path}: not OTLP (resourceSpans), Jaeger (data) or Zipkin v2 (a list of spans) JSON;"
        " name the format with --format"
    )


def _hex_id(value: Any) -> str:
    """A trace or span id as lowercase hex: hex as is, base64 decoded ("" for none)."""
    if not value:
        return ""
    text = str(value)
    try:
        int(text, 16)
        if len(text) in (16, 32):
            return text.lower()
    except ValueError:
        pass
    try:
        return base64.b64decode(text, validate=True).hex()
    except (binascii.Error, ValueError):
        return text.lower()


def _otlp_value(value: dict[str, Any]) -> Any:
    for key in ("stringValue", "boolValue", "doubleValue"):
        if key in value:
            return value[key]
    if "intValue" in value:
        return int(value["intValue"])
    return None


def _otlp_attrs(items: list[dict[str, Any]] | None) -> dict[str, Any]:
    return {item["key"]: _otlp_value(item.get("value", {})) for item in items or []}


def _otlp_kind(kind: Any) -> str:
    if isinstance(kind, str):
        return kind.removeprefix("SPAN_KIND_").lower().replace("unspecified", "")
    return _KINDS.get(int(kind or 0), "")


def _otlp(doc: dict[str, Any]) -> list[Span]:
    out = []
    for resource_spans in doc["resourceSpans"]:
        resource = _otlp_attrs(resource_spans.get("resource", {}).get("attributes"))
        service = str(resource.get("service.name") or "")
        scopes = resource_spans.get("scopeSpans") or resource_spans.get(
            "instrumentationLibrarySpans", []
        )
        for scope in scopes:
            for s in scope.get("spans", []):
                attrs = _otlp_attrs(s.get("attributes"))
                status = s.get("status") or {}
                code = status.get("code", 0)
                error = code in (2, "STATUS_CODE_ERROR") or "error.type" in attrs
                out.append(
                    Span(
                        trace_id=_hex_id(s["traceId"]),
                        span_id=_hex_id(s["spanId"]),
                        parent_id=_hex_id(s.get("parentSpanId")),
                        service=service,
                        name=str(s.get("name", "")),
                        kind=_otlp_kind(s.get("kind", 0)),
                        start_ms=int(s["startTimeUnixNano"]),  # ns until read_traces ends
                        end_ms=int(s["endTimeUnixNano"]),
                        error=error,
                        attrs=attrs,
                        remote_service=_remote(attrs),
                    )
                )
    return out


def _remote(attrs: dict[str, Any]) -> str:
    """A client span's callee as the OpenTelemetry conventions name it, if they do."""
    for key in ("peer.service", "db.system.name", "db.system", "server.address", "net.peer.name"):
        if attrs.get(key):
            return str(attrs[key])
    return ""


def _jaeger(doc: dict[str, Any]) -> list[Span]:
    out = []
    for trace in doc["data"]:
        processes = trace.get("processes", {})
        for s in trace["spans"]:
            tags = {t["key"]: t.get("value") for t in s.get("tags", [])}
            parent = ""
            for ref in s.get("references") or []:
                if ref.get("refType", "CHILD_OF") == "CHILD_OF":
                    parent = _hex_id(ref["spanID"])
                    break
            process = processes.get(s.get("processID"), s.get("process") or {})
            start = int(s["startTime"]) * 1000  # us -> ns (ms once read_traces ends)
            error = tags.get("error") in (True, "true") or tags.get("otel.status_code") == "ERROR"
            out.append(
                Span(
                    trace_id=_hex_id(s["traceID"]),
                    span_id=_hex_id(s["spanID"]),
                    parent_id=parent,
                    service=str(process.get("serviceName") or ""),
                    name=str(s.get("operationName", "")),
                    kind=str(tags.get("span.kind", "")).lower(),
                    start_ms=start,
                    end_ms=start + int(s.get("duration", 0)) * 1000,
                    error=error,
                    attrs=tags,
                    remote_service=_remote(tags),
                )
            )
    return out


def _zipkin(doc: list[Any]) -> list[Span]:
    flat = [s for item in doc for s in (item if isinstance(item, list) else [item])]
    out = []
    for s in flat:
        tags = dict(s.get("tags") or {})
        start = int(s["timestamp"]) * 1000  # us -> ns (ms once read_traces ends)
        kind = str(s.get("kind", "")).lower()
        span_id, parent = _hex_id(s["id"]), _hex_id(s.get("parentId"))
        if s.get("shared") and kind == "server":  # B3 shared span: the client's id
            parent, span_id = span_id, span_id + "-server"
        remote = (s.get("remoteEndpoint") or {}).get("serviceName") or _remote(tags)
        out.append(
            Span(
                trace_id=_hex_id(s["traceId"]),
                span_id=span_id,
                parent_id=parent,
                service=str((s.get("localEndpoint") or {}).get("serviceName") or ""),
                name=str(s.get("name", "")),
                kind=kind,
                start_ms=start,
                end_ms=start + int(s.get("duration", 0)) * 1000,
                error="error" in tags,
                attrs=tags,
                remote_service=str(remote or ""),
            )
        )
    return out
