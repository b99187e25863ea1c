"""Spans to call trees: which service called which, when, and how each call ended.

A **visit** is a service's work for one call (its server span, with the internal spans of
the same service folded in). A **call** is one attempt as its caller saw it: the caller's
client span when there is one, else the callee's server span. A client span with no server
span below it is a call to an uninstrumented service (a database, a paid API), named by the
OpenTelemetry attributes ``peer.service``, ``db.system``, ``server.address`` (or Zipkin's
remote endpoint), else by the span's name.

A trace's root becomes the **request**: a root CLIENT span (a load generator, a browser, the
``users`` of fansim's own exports) is the user, and its calls are the request's steps; any
other root is the entry service, called once by the request.

Bad traces are skipped whole, counted by why: a span with no service name, a span whose parent
is not in the trace (orphan), several roots, or clock skew (a call starting outside its
caller's span, or outliving it without being marked as given up, by more than
``skew_tolerance_ms``). A call that outlives its caller marked as given up
(``fansim.given_up_after_ms``) is a call its caller stopped waiting for.
"""

from __future__ import annotations

import math
from collections import Counter, defaultdict
from dataclasses import dataclass, field

from .read import Span


@dataclass
class Call:
    """One attempt, as its caller saw it (times in ms)."""

    callee: str
    start_ms: float
    end_ms: float
    error: bool
    error_type: str  # error | timeout | rejected | "" (none)
    attempt: str  # first | retry | hedge as the span says, "" when it does not
    given_up_ms: float | None  # when the caller stopped waiting for it, if it says so
    visit: Visit | None  # the callee's work; None for an uninstrumented callee


@dataclass
class Visit:
    """A service's work for one call (``service`` None: a user request)."""

    service: str | None
    start_ms: float
    end_ms: float
    error: bool
    error_type: str
    queue_ms: float  # time waiting for a worker, when the span says so (fansim.queue_ms)
    calls: list[Call] = field(default_factory=list)
    sampling_ratio: float = 1.0  # a request's, when its root span says so


def skew_tolerance_ms(parent_ms: float) -> float:
    """How far (ms) a child may lie outside its parent's span before it is clock skew: 5 us
    plus 1% of the parent's duration (timestamp rounding, intra-host clock jitter)."""
    return 0.005 + 0.01 * parent_ms


class BadTrace(Exception):
    """Why a trace is skipped (the message is the reason's name)."""


def build_requests(spans: list[Span]) -> tuple[list[Visit], Counter]:
    """The requests (one per good trace, ordered by start) and the count of skipped traces by
    reason."""
    by_trace: dict[str, list[Span]] = defaultdict(list)
    for span in spans:
        by_trace[span.trace_id].append(span)
    requests, skipped = [], Counter()
    for trace_spans in by_trace.values():
        try:
            requests.append(_request(trace_spans))
        except BadTrace as why:
            skipped[str(why)] += 1
        except RecursionError:
            skipped["a call tree deeper than Python's recursion limit"] += 1
    requests.sort(key=lambda r: r.start_ms)
    return requests, skipped


def _request(spans: list[Span]) -> Visit:
    if any(not s.service for s in spans):
        raise BadTrace("a span with no service name")
    ids = {s.span_id for s in spans}
    if len(ids) < len(spans):
        raise BadTrace("duplicate span ids")
    children: dict[str, list[Span]] = defaultdict(list)
    roots = []
    for s in spans:
        if not s.parent_id:
            roots.append(s)
        elif s.parent_id not in ids:
            raise BadTrace("orphan spans (parent not in the trace)")
        else:
            children[s.parent_id].append(s)
    if len(roots) != 1:
        raise BadTrace("no root span" if not roots else "several root spans")
    root = roots[0]
    reached, todo = 1, [root.span_id]
    while todo:  # a parent cycle leaves spans no walk from the root reaches
        below = children.get(todo.pop(), [])
        reached += len(below)
        todo += [s.span_id for s in below]
    if reached != len(spans):
        raise BadTrace("spans not under the root (a cycle of parents)")
    if root.end_ms < root.start_ms:
        raise BadTrace("clock skew (a span ends before it starts)")
    ratio = _number(root, "fansim.sampling_ratio", 1.0)
    if not 0 < ratio <= 1:
        raise BadTrace("a fansim.sampling_ratio outside (0, 1]")
    if root.kind == "client":  # the user: its calls are the request's steps
        request = Visit(None, root.start_ms, root.end_ms, root.error, "", 0.0)
        request.calls = _calls_of(root, children, root.service)
    else:  # the entry service, called once
        request = Visit(None, root.start_ms, root.end_ms, root.error, "", 0.0)
        visit = _visit(root, children)
        request.calls = [_as_call(root, root.service, visit)]
    request.sampling_ratio = ratio
    _check_times(request)
    return request


def _error_type(span: Span) -> str:
    kind = str(span.attrs.get("error.type") or "")
    if kind in ("timeout", "rejected"):
        return kind
    return "error" if span.error else ""


def _visit(span: Span, children: dict[str, list[Span]]) -> Visit:
    """The work of ``span``'s service for the call that ``span`` serves."""
    queue_ms = _number(span, "fansim.queue_ms", 0.0)
    kind = _error_type(span)
    own_error = span.error and kind not in ("timeout", "rejected")
    visit = Visit(span.service, span.start_ms, span.end_ms, own_error, kind, queue_ms)
    visit.calls = _calls_of(span, children, span.service)
    return visit


def _calls_of(span: Span, children: dict[str, list[Span]], service: str) -> list[Call]:
    """The calls ``service`` made under ``span``, looking through its own internal spans."""
    calls = []
    for child in children.get(span.span_id, []):
        if child.service != service:  # a call with no client span: the server span is it
            calls.append(_as_call(child, child.service, _visit(child, children)))
        elif child.kind == "client":
            servers = [c for c in children.get(child.span_id, []) if c.service != service]
            if servers:
                calls.append(_as_call(child, servers[0].service, _visit(servers[0], children)))
            else:  # an uninstrumented callee
                callee = child.remote_service or child.name or "remote"
                leaf = Visit(callee, child.start_ms, child.end_ms, child.error,
                             _error_type(child), 0.0)  # fmt: skip
                calls.append(_as_call(child, callee, leaf))
        else:  # the service's own internal span: its calls are the service's
            calls += _calls_of(child, children, service)
    return calls


def _as_call(span: Span, callee: str, visit: Visit) -> Call:
    given_up = _number(span, "fansim.given_up_after_ms", None)
    attempt = str(span.attrs.get("fansim.attempt") or "")
    if not attempt and _number(span, "http.request.resend_count", 0) > 0:
        attempt = "retry"
    return Call(
        callee=callee,
        start_ms=span.start_ms,
        end_ms=span.end_ms,
        error=span.error,
        error_type=_error_type(span),
        attempt=attempt,
        given_up_ms=None if given_up is None else span.start_ms + given_up,
        visit=visit,
    )


def _number(span: Span, key: str, default):
    """A numeric attribute of ``span`` (``default`` when absent); a value that is not a finite
    number makes the trace bad."""
    value = span.attrs.get(key)
    if value is None or value == "":
        return default
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise BadTrace(f"a non-numeric {key} attribute") from None
    if not math.isfinite(number):
        raise BadTrace(f"a non-finite {key} attribute")
    return number


def _check_times(visit: Visit) -> None:
    """Clock skew: a call must start inside its caller's span and end inside it unless the
    caller gave up on it; the callee's work must lie inside the call."""
    tol = skew_tolerance_ms(visit.end_ms - visit.start_ms)
    if visit.end_ms < visit.start_ms:
        raise BadTrace("clock skew (a span ends before it starts)")
    for call in visit.calls:
        late = call.end_ms > visit.end_ms + tol and call.given_up_ms is None
        if call.start_ms < visit.start_ms - tol or call.start_ms > visit.end_ms + tol or late:
            raise BadTrace("clock skew (a call outside its caller's span)")
        inner = call.visit
        if inner is not None:
            t = skew_tolerance_ms(call.end_ms - call.start_ms)
            if inner.start_ms < call.start_ms - t or inner.end_ms > call.end_ms + t:
                raise BadTrace("clock skew (a server span outside its client span)")
            _check_times(inner)
