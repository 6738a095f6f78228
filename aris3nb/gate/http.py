"""HTTP probes of a running ARIS3 service: base URLs, health and readiness, logging in
with the smoke account, and latency measured honestly.

Every request has explicit timeouts; httpx's errors become ``ProbeFailed`` here, at one
boundary, naming the request and the cause. Latency is measured on one kept-alive
connection, sequentially, after a warm-up: at least ``MIN_LATENCY_SAMPLES`` samples, and
p50/p95/p99 by linear interpolation between closest ranks (numpy's default, Hyndman & Fan
type 7, as k6 computes them). Every sample is kept so the evidence can be charted.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
import numpy as np

from aris3nb.core.checks import Outcome, failed, passed, warned
from aris3nb.core.errors import InvalidBaseUrl, ProbeFailed
from aris3nb.core.redact import redact_text
from aris3nb.gate.settings import MIN_LATENCY_SAMPLES

#: Connecting should never take long on a healthy network, whatever the read timeout.
MAX_CONNECT_TIMEOUT_SEC = 3.0
PERCENTILES = (50, 95, 99)


def parse_base_url(text: str) -> str:
    """``text`` as a base URL without a trailing slash; ``InvalidBaseUrl`` (exit 2) otherwise."""
    shown = redact_text(text.strip())
    hint = "expected http(s)://HOST[:PORT][/PREFIX], e.g. http://127.0.0.1:8000"
    try:
        url = httpx.URL(text.strip())
    except (httpx.InvalidURL, TypeError, ValueError) as exc:
        raise InvalidBaseUrl(f"malformed base URL {shown!r}: {exc}; {hint}") from exc
    if url.scheme not in ("http", "https") or not url.host:
        raise InvalidBaseUrl(f"malformed base URL {shown!r}: {hint}")
    if url.port is not None and not 0 < url.port < 65536:
        raise InvalidBaseUrl(f"malformed base URL {shown!r}: port {url.port} is out of range; {hint}")
    if url.query or url.fragment:
        raise InvalidBaseUrl(f"malformed base URL {shown!r}: no query or fragment allowed; {hint}")
    return str(url).rstrip("/")


def client_timeout(seconds: float) -> httpx.Timeout:
    return httpx.Timeout(seconds, connect=min(seconds, MAX_CONNECT_TIMEOUT_SEC))


def new_client(base_url: str, timeout_sec: float) -> httpx.Client:
    return httpx.Client(base_url=base_url, timeout=client_timeout(timeout_sec), follow_redirects=False)


def send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request; transport errors and timeouts become ``ProbeFailed`` naming the cause."""
    where = f"{method} {redact_text(str(client.base_url).rstrip('/'))}{path}"
    try:
        return client.request(method, path, **kwargs)
    except httpx.TimeoutException as exc:
        limit = client.timeout.read if not isinstance(exc, httpx.ConnectTimeout) else client.timeout.connect
        raise ProbeFailed(f"{where} timed out after {limit:g} s ({type(exc).__name__})") from exc
    except httpx.ConnectError as exc:
        raise ProbeFailed(f"{where}: cannot connect: {_reason(exc)}") from exc
    except httpx.HTTPError as exc:
        raise ProbeFailed(f"{where} failed: {type(exc).__name__}: {_reason(exc)}") from exc


def _reason(exc: Exception) -> str:
    text = str(exc).strip()
    return redact_text(text.splitlines()[0]) if text else type(exc).__name__


def describe_response(response: httpx.Response) -> str:
    """``503 SCHEMA_NOT_AT_HEAD: the database schema is ...`` from the error envelope, or the body's start."""
    try:
        body = response.json()
    except ValueError:
        body = None
    if isinstance(body, dict) and "code" in body:
        return f"{response.status_code} {body.get('code')}: {body.get('message', '')}".strip()
    snippet = " ".join(response.text[:200].split())
    return f"{response.status_code} {response.reason_phrase}" + (f": {snippet}" if snippet else "")


def response_evidence(response: httpx.Response, elapsed_ms: float) -> dict[str, Any]:
    return {"url": redact_text(str(response.request.url)), "status_code": response.status_code,
            "elapsed_ms": round(elapsed_ms, 3), "body": redact_text(response.text[:500])}


#: How much of an unexpected body a detail quotes (whitespace collapsed).
BODY_SNIPPET_CHARS = 80


def describe_body(response: httpx.Response) -> str:
    """What came back, for a detail: its content type and the first characters of the body
    (whitespace collapsed, truncated, secrets masked)."""
    content_type = response.headers.get("content-type", "").split(";")[0].strip() or "no content type"
    text = " ".join(response.text.split())
    if not text:
        return f"{content_type}, empty body"
    snippet = text[:BODY_SNIPPET_CHARS] + ("..." if len(text) > BODY_SNIPPET_CHARS else "")
    return f"{content_type}, body starts {redact_text(snippet)!r}"


def _json_object(response: httpx.Response) -> dict[str, Any] | None:
    try:
        body = response.json()
    except ValueError:  # not JSON at all (an HTML page, say), or not UTF-8
        return None
    return body if isinstance(body, dict) else None


def probe_health(client: httpx.Client, *, status_field: str = "status", status_value: str = "ok") -> Outcome:
    """GET /health must answer 200 with the documented JSON object, ``{"status": "ok"}``.

    Any other 200 (an HTML page a proxy serves for every path, another status) is a FAIL
    saying what came back: a process that answers is not evidence that *the service* answers.
    """
    started = time.perf_counter()
    response = send(client, "GET", "/health")
    elapsed = (time.perf_counter() - started) * 1000
    evidence = response_evidence(response, elapsed)
    if response.status_code != 200:
        return failed(f"GET /health answered {describe_response(response)}", **evidence)
    body = _json_object(response)
    if body is None or body.get(status_field) != status_value:
        return failed(f"GET /health answered 200 without the documented JSON body "
                      f"{{{status_field!r}: {status_value!r}}}: {describe_body(response)}", **evidence)
    return passed(f"200 {status_value} in {elapsed:.1f} ms", **evidence)


def probe_ready(client: httpx.Client, *, status_field: str = "status", status_value: str = "ready",
                revision_field: str | None = "revision", expected_revision: str | None = None) -> Outcome:
    """GET /ready must answer 200 with the documented JSON object: ``{"status": "ready",
    "revision": "<the schema's revision>"}`` (the database answers and is at the code's head).

    Any other 200 — not JSON, another status, no revision (when ``revision_field`` names one),
    or a revision other than ``expected_revision`` (when given) — is a FAIL saying what came
    back. The deploy phase, the rollback's verification and the ``not_ready`` trigger rely on it.
    """
    started = time.perf_counter()
    response = send(client, "GET", "/ready")
    elapsed = (time.perf_counter() - started) * 1000
    evidence = response_evidence(response, elapsed)
    if response.status_code != 200:
        return failed(f"GET /ready answered {describe_response(response)}", **evidence)
    body = _json_object(response)
    documented = f"{{{status_field!r}: {status_value!r}" + (f", {revision_field!r}: ...}}" if revision_field else "}")
    revision = body.get(revision_field) if body is not None and revision_field else None
    if body is None or body.get(status_field) != status_value or (
            revision_field and (not isinstance(revision, str) or not revision)):
        return failed(f"GET /ready answered 200 without the documented JSON body {documented}: "
                      f"{describe_body(response)}", revision=revision if isinstance(revision, str) else None,
                      **evidence)
    if expected_revision is not None and revision != expected_revision:
        return failed(f"GET /ready answered 200 {status_value} at revision {revision}, expected {expected_revision}",
                      revision=revision, **evidence)
    shown = f" at revision {revision}" if revision_field else ""
    return passed(f"200 {status_value}{shown} in {elapsed:.1f} ms", revision=revision, **evidence)


def log_in(client: httpx.Client, username: str, password: str) -> str:
    """A bearer token for the smoke account; ``ProbeFailed`` naming why not."""
    response = send(client, "POST", "/aris3/auth/login", json={"username": username, "password": password})
    if response.status_code != 200:
        raise ProbeFailed(f"login as {username} refused: {describe_response(response)} "
                          "(check ARIS3_SMOKE_USERNAME / ARIS3_SMOKE_PASSWORD)")
    try:
        return str(response.json()["access_token"])
    except (ValueError, KeyError, TypeError) as exc:
        raise ProbeFailed(f"login as {username} answered 200 without an access_token") from exc


@dataclass(frozen=True)
class LatencyPlan:
    """How one endpoint is measured."""

    path: str
    budget_ms: float
    samples: int = MIN_LATENCY_SAMPLES
    warmup: int = 20
    deadline_sec: float = 60.0
    min_samples: int = MIN_LATENCY_SAMPLES


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p95 and p99 by linear interpolation (type 7), as numpy and k6 compute them."""
    values = np.percentile(np.asarray(samples_ms, dtype=float), PERCENTILES, method="linear")
    return {f"p{p}_ms": round(float(v), 3) for p, v in zip(PERCENTILES, values, strict=True)}


def certain_to_exceed(over_budget: int, min_samples: int) -> bool:
    """Whether ``over_budget`` samples above the budget make any p95 of ``min_samples``
    samples exceed it, whatever the missing samples would have been.

    With n samples sorted, type-7 p95 lies at or above the value at rank floor(0.95 (n - 1));
    once that rank can only hold an over-budget sample, the p95 is over budget.
    """
    return over_budget >= min_samples - math.floor(0.95 * (min_samples - 1))


def measure_latency(client: httpx.Client, plan: LatencyPlan, headers: dict[str, str] | None = None,
                    clock: Callable[[], float] = time.perf_counter) -> Outcome:
    """Warm up, then time ``plan.samples`` sequential GETs of ``plan.path``; judge the p95.

    Any error answer, refused connection or timeout is a FAIL at once (a latency of a failing
    endpoint means nothing). Fewer samples than the minimum is WARN "inconclusive", never a
    PASS, unless enough of them are over budget to make the p95 certainly too high.
    """
    headers = headers or {}
    for _ in range(plan.warmup):
        _expect_ok(send(client, "GET", plan.path, headers=headers), plan.path)
    samples: list[float] = []
    deadline = clock() + plan.deadline_sec
    while len(samples) < plan.samples and clock() < deadline:
        started = clock()
        response = send(client, "GET", plan.path, headers=headers)
        samples.append((clock() - started) * 1000)
        _expect_ok(response, plan.path)
    evidence: dict[str, Any] = {
        "path": plan.path, "budget_ms": plan.budget_ms, "warmup": plan.warmup, "requested_samples": plan.samples,
        "min_samples": plan.min_samples, "deadline_sec": plan.deadline_sec,
        "method": "numpy.percentile(method='linear') (type 7)",
    }
    if not samples:
        return warned(f"inconclusive: no sample taken within {plan.deadline_sec:g} s", samples_ms=[], **evidence)
    samples = [round(s, 3) for s in samples]  # kept as recorded, so the percentiles can be recomputed exactly
    stats = percentiles(samples)
    over = sum(1 for s in samples if s > plan.budget_ms)
    evidence.update(stats, count=len(samples), over_budget=over, mean_ms=round(float(np.mean(samples)), 3),
                    min_ms=min(samples), max_ms=max(samples), samples_ms=samples)
    summary = (f"p95 {stats['p95_ms']:.1f} ms {{}} budget {plan.budget_ms:g} ms "
               f"(p50 {stats['p50_ms']:.1f}, p99 {stats['p99_ms']:.1f}; {len(samples)} samples)")
    if len(samples) < plan.min_samples:
        if certain_to_exceed(over, plan.min_samples):
            return failed(f"p95 over budget {plan.budget_ms:g} ms for certain: {over} of {len(samples)} samples over it "
                          f"before the {plan.deadline_sec:g} s deadline (p50 {stats['p50_ms']:.1f} ms)", **evidence)
        why = (f"stopped at the {plan.deadline_sec:g} s deadline" if len(samples) < plan.samples
               else f"only {plan.samples} requested")
        return warned(f"inconclusive: {len(samples)} samples, fewer than {plan.min_samples} ({why}); "
                      f"p95 {stats['p95_ms']:.1f} ms", **evidence)
    if stats["p95_ms"] > plan.budget_ms:
        return failed(summary.format(">"), **evidence)
    return passed(summary.format("<="), **evidence)


def _expect_ok(response: httpx.Response, path: str) -> None:
    if not 200 <= response.status_code < 300:
        raise ProbeFailed(f"GET {path} answered {describe_response(response)}")
