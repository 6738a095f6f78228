"""HTTP probes of a running ARIS3 service: base URLs, health and readiness, logging in
with the smoke account, and latency measured honestly.

The reference service's contract is built in (``probe_health``, ``probe_ready``, ``log_in``);
another deployment's comes from its target profile's ``[service]`` tables
(``probe_service_health``, ``probe_service_ready``, ``log_in_service``): paths, RFC 6901
pointers into the JSON answers, the expected values, the login body and where its token is.

Every request has explicit timeouts; httpx's errors become ``ProbeFailed`` here, at one
boundary, naming the request and the cause. Latency is measured on one kept-alive
connection, sequentially, after a warm-up, each sample the same request made once: at least
``MIN_LATENCY_SAMPLES`` samples, and p50/p95/p99 by linear interpolation between closest ranks
(numpy's default, Hyndman & Fan type 7, as k6 computes them). Every sample is kept so the
evidence can be charted.
"""

from __future__ import annotations

import functools
import json
import math
import ssl
import statistics
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx

from aris3nb.core.checks import Outcome, failed, passed, warned
from aris3nb.core.errors import InvalidBaseUrl, ProbeFailed
from aris3nb.core.redact import redact_text
from aris3nb.core.settings import MIN_LATENCY_SAMPLES, GateSettings, default_of

if TYPE_CHECKING:
    from aris3nb.targets.profile import Health, Login, Ready

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


@functools.cache
def tls_context() -> ssl.SSLContext:
    """httpx's default TLS context (certifi's CAs, or ``SSL_CERT_FILE``/``SSL_CERT_DIR``), made
    once per process: httpx makes one for every client otherwise, ~35 ms each, plain HTTP or not.
    The fork server makes it while it warms up, so every kernel has it already."""
    return httpx.create_ssl_context()


def new_client(base_url: str, timeout_sec: float) -> httpx.Client:
    return httpx.Client(
        base_url=base_url, timeout=client_timeout(timeout_sec), follow_redirects=False, verify=tls_context()
    )


def send(client: httpx.Client, method: str, path: str, **kwargs: Any) -> httpx.Response:
    """One request; transport errors and timeouts become ``ProbeFailed`` naming the cause."""
    try:
        return client.request(method, path, **kwargs)
    except httpx.HTTPError as exc:
        raise _probe_failed(client, method, path, exc) from exc


def send_again(client: httpx.Client, request: httpx.Request, path: str) -> httpx.Response:
    """``request`` (made once with ``client.build_request``) sent once more, its errors mapped as
    ``send`` maps them: a latency sample times the request and its answer, not the making of the
    same request again."""
    try:
        return client.send(request)
    except httpx.HTTPError as exc:
        raise _probe_failed(client, request.method, path, exc) from exc


def _probe_failed(client: httpx.Client, method: str, path: str, exc: httpx.HTTPError) -> ProbeFailed:
    where = f"{method} {redact_text(str(client.base_url).rstrip('/'))}{path}"
    if isinstance(exc, httpx.TimeoutException):
        limit = client.timeout.read if not isinstance(exc, httpx.ConnectTimeout) else client.timeout.connect
        return ProbeFailed(f"{where} timed out after {limit:g} s ({type(exc).__name__})")
    if isinstance(exc, httpx.ConnectError):
        return ProbeFailed(f"{where}: cannot connect: {_reason(exc)}")
    return ProbeFailed(f"{where} failed: {type(exc).__name__}: {_reason(exc)}")


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
    return {
        "url": redact_text(str(response.request.url)),
        "status_code": response.status_code,
        "elapsed_ms": round(elapsed_ms, 3),
        "body": redact_text(response.text[:500]),
    }


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


class _Missing:
    def __repr__(self) -> str:
        return "MISSING"


#: What ``resolve_pointer`` answers for a pointer naming nothing in the document.
MISSING: Any = _Missing()


def resolve_pointer(document: Any, pointer: str) -> Any:
    """The value ``pointer`` (RFC 6901) names in ``document``, or ``MISSING``.

    ``""`` is the whole document; each ``/``-separated token, ``~1`` read as ``/`` and then
    ``~0`` as ``~``, names a member of an object or, as a decimal index without leading zeros,
    an element of an array. ``ValueError`` for a pointer that is not one (no leading ``/``,
    a ``~`` not followed by 0 or 1).
    """
    if pointer == "":
        return document
    if not pointer.startswith("/"):
        raise ValueError(f"JSON pointer {pointer!r} must be empty or start with '/' (RFC 6901)")
    value = document
    for raw in pointer[1:].split("/"):
        if "~" in raw.replace("~0", "").replace("~1", ""):
            raise ValueError(f"JSON pointer {pointer!r}: '~' must be followed by 0 or 1 (RFC 6901)")
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(value, dict):
            if token not in value:
                return MISSING
            value = value[token]
        elif isinstance(value, list):
            if not token.isdigit() or not token.isascii() or (len(token) > 1 and token[0] == "0"):
                return MISSING
            if int(token) >= len(value):
                return MISSING
            value = value[int(token)]
        else:
            return MISSING
    return value


def pointer_of(field_name: str) -> str:
    """The JSON pointer of a top-level member (``"a/b"`` → ``"/a~1b"``)."""
    return "/" + field_name.replace("~", "~0").replace("/", "~1")


def json_equal(actual: Any, expected: Any) -> bool:
    """Equality as JSON sees it: ``true`` is not ``1`` and ``1`` is not ``"1"``."""
    if isinstance(actual, bool) or isinstance(expected, bool):
        return isinstance(actual, bool) and isinstance(expected, bool) and actual == expected
    if isinstance(actual, dict) and isinstance(expected, dict):
        return actual.keys() == expected.keys() and all(json_equal(actual[k], expected[k]) for k in actual)
    if isinstance(actual, list) and isinstance(expected, list):
        return len(actual) == len(expected) and all(json_equal(a, e) for a, e in zip(actual, expected, strict=True))
    if isinstance(actual, int | float) and isinstance(expected, int | float):
        return actual == expected
    return type(actual) is type(expected) and actual == expected


def _shown(value: Any) -> str:
    """A JSON value as a detail shows it (``true``, ``"ready"``)."""
    try:
        return json.dumps(value, ensure_ascii=False)
    except (TypeError, ValueError):
        return repr(value)


def _json_body(response: httpx.Response) -> Any:
    try:
        return response.json()
    except ValueError:  # not JSON at all, or not UTF-8
        return MISSING


#: How much of a server's answer a login failure quotes.
ANSWER_CHARS = 160


def describe_answer(response: httpx.Response, secrets: list[str | None] | None = None) -> str:
    """What the server answered, for a detail: the status, then its error's code and message
    (a top-level envelope ``{"code", "message"}``, a nested ``{"error": {...}}``, or FastAPI's
    ``{"detail": ...}``), else the first characters of the body; secrets masked, kept short."""
    head = f"{response.status_code} {response.reason_phrase}".strip()
    body = _json_body(response)
    said: str | None = None
    if isinstance(body, dict):
        error = body.get("error")
        envelope = error if isinstance(error, dict) else body
        if envelope.get("code") is not None or envelope.get("message") is not None:
            said = ": ".join(str(envelope[k]) for k in ("code", "message") if envelope.get(k) is not None)
        elif "detail" in body:
            said = _shown(body["detail"])
    if said is None:
        said = " ".join(response.text.split())
    said = redact_text(said, secrets or [])
    if len(said) > ANSWER_CHARS:
        said = said[:ANSWER_CHARS] + "..."
    return f"{head}: {said}" if said else head


def _judge_json_probe(
    response: httpx.Response,
    elapsed: float,
    path: str,
    *,
    status: int,
    expectations: list[tuple[str, Any]],
    documented: str,
) -> tuple[Outcome | None, Any]:
    """The common part of a health or readiness probe: the expected status, then a JSON
    answer holding the expected value at each ``(pointer, expected)`` of ``expectations``
    (``documented`` describes them). Returns a FAIL outcome (or None) and the JSON body
    (``MISSING`` when it is not JSON)."""
    evidence = response_evidence(response, elapsed)
    if response.status_code != status:
        return failed(
            f"GET {path} answered {describe_answer(response)}" + (f" (expected {status})" if status != 200 else ""),
            **evidence,
        ), MISSING
    body = _json_body(response)
    for pointer, expected in expectations:
        try:
            found = resolve_pointer(body, pointer) if body is not MISSING else MISSING
        except ValueError as exc:
            return failed(f"the profile's pointer for GET {path} is not valid: {exc}", **evidence), body
        if found is MISSING or not json_equal(found, expected):
            return failed(
                f"GET {path} answered {status} without the documented JSON body {documented}: "
                f"{describe_body(response)}",
                **evidence,
            ), body
    return None, body


def probe_service_health(client: httpx.Client, health: Health) -> Outcome:
    """GET the profile's health path: 200 and the JSON value at its pointer equal to its
    ``expect`` (``[service.health]``). Anything else is a FAIL saying what came back."""
    started = time.perf_counter()
    response = send(client, "GET", health.path)
    elapsed = (time.perf_counter() - started) * 1000
    documented = f"{health.pointer} = {_shown(health.expect)}"
    outcome, _ = _judge_json_probe(
        response,
        elapsed,
        health.path,
        status=200,
        expectations=[(health.pointer, health.expect)],
        documented=documented,
    )
    if outcome is not None:
        return outcome
    return passed(f"200, {documented} in {elapsed:.1f} ms", **response_evidence(response, elapsed))


def probe_service_ready(
    client: httpx.Client, ready: Ready, *, expected_revision: str | None = None, head_error: str | None = None
) -> Outcome:
    """GET the profile's ready path: its ``status``, the value at ``ready_pointer`` (when one
    is set) equal to ``ready_expect``, and — when ``revision_pointer`` is set — a revision
    there equal to ``expected_revision`` (the target's code head). ``head_error`` says why
    that head could not be read: the comparison then FAILs with it, never passes unchecked.
    A profile whose service reports no revision (``revision_pointer`` empty) passes on
    readiness alone and says so."""
    started = time.perf_counter()
    response = send(client, "GET", ready.path)
    elapsed = (time.perf_counter() - started) * 1000
    expectations = [(ready.ready_pointer, ready.ready_expect)] if ready.ready_pointer else []
    shown = ", ".join(f"{p} = {_shown(v)}" for p, v in expectations)
    outcome, body = _judge_json_probe(
        response, elapsed, ready.path, status=ready.status, expectations=expectations, documented=shown
    )
    evidence = response_evidence(response, elapsed)
    if outcome is not None:
        outcome.evidence["revision"] = None
        return outcome
    said = f"{ready.status}" + (f", {shown}" if shown else " (the profile names no ready_pointer: the status alone)")
    if not ready.revision_pointer:
        return passed(
            f"{said} in {elapsed:.1f} ms; the service reports no revision (the profile names no "
            "revision_pointer), so the schema's revision is not compared here",
            revision=None,
            **evidence,
        )
    try:
        revision = resolve_pointer(body, ready.revision_pointer) if body is not MISSING else MISSING
    except ValueError as exc:
        return failed(f"the profile's revision_pointer is not valid: {exc}", revision=None, **evidence)
    if not isinstance(revision, str) or not revision:
        return failed(
            f"GET {ready.path} answered {said} without a revision at {ready.revision_pointer}: "
            f"{describe_body(response)}",
            revision=None,
            **evidence,
        )
    if expected_revision is None:
        return failed(
            f"GET {ready.path} answered {said} at revision {revision}, but it cannot be compared: "
            f"cannot read the target's head ({head_error or 'no head given'})",
            revision=revision,
            expected_revision=None,
            **evidence,
        )
    if revision != expected_revision:
        return failed(
            f"GET {ready.path} answered {said} at revision {revision}, expected {expected_revision} "
            "(the target's code head)",
            revision=revision,
            expected_revision=expected_revision,
            **evidence,
        )
    return passed(
        f"{said} at revision {revision} (the target's head) in {elapsed:.1f} ms",
        revision=revision,
        expected_revision=expected_revision,
        **evidence,
    )


def fill_placeholders(value: Any, values: Mapping[str, str]) -> Any:
    """``value`` with ``{name}`` replaced by ``values[name]`` in its strings only (nested
    objects and arrays too; keys, numbers and booleans untouched)."""
    if isinstance(value, str):
        for name, text in values.items():
            value = value.replace("{" + name + "}", text)
        return value
    if isinstance(value, dict):
        return {key: fill_placeholders(item, values) for key, item in value.items()}
    if isinstance(value, list):
        return [fill_placeholders(item, values) for item in value]
    return value


def log_in_service(client: httpx.Client, login: Login, username: str, password: str, *, account_hint: str = "") -> str:
    """Log in as the profile says (``[service.login]``: its body with ``{username}`` and
    ``{password}`` filled in) and return the token found at its ``token_pointer``.
    ``ProbeFailed`` otherwise, quoting the server's answer: its status and its code and
    message (the credentials are blamed only when the server said 401 or 403)."""
    body = fill_placeholders(login.body, {"username": username, "password": password})
    response = send(client, login.method, login.path, json=body)
    where = f"login as {username} (POST {login.path})"
    if response.status_code != 200:
        answer = describe_answer(response, [password])
        why = (
            f"; the server refused the smoke account's credentials{account_hint}"
            if response.status_code in (401, 403)
            else "; the server rejected the login request (is the profile's [service.login] body what it expects?)"
            if response.status_code in (400, 404, 405, 415, 422)
            else ""
        )
        raise ProbeFailed(f"{where} answered {answer}{why}")
    try:
        token = resolve_pointer(_json_body(response), login.token_pointer)
    except ValueError as exc:
        raise ProbeFailed(f"the profile's [service.login] token_pointer is not valid: {exc}") from exc
    if not isinstance(token, str) or not token:
        body = _json_body(response)
        keys = ", ".join(sorted(map(str, body))) if isinstance(body, dict) else type(body).__name__
        raise ProbeFailed(f"{where} answered 200 without a token at {login.token_pointer} (answer's keys: {keys})")
    return token


def service_auth_header(login: Login, token: str) -> dict[str, str]:
    """The header that carries ``token`` (``[service.login].auth_header``, e.g.
    ``Authorization: Bearer {token}``)."""
    return {login.auth_header.name: login.auth_header.value.replace("{token}", token)}


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
        return failed(
            f"GET /health answered 200 without the documented JSON body "
            f"{{{status_field!r}: {status_value!r}}}: {describe_body(response)}",
            **evidence,
        )
    return passed(f"200 {status_value} in {elapsed:.1f} ms", **evidence)


def probe_ready(
    client: httpx.Client,
    *,
    status_field: str = "status",
    status_value: str = "ready",
    revision_field: str | None = "revision",
    expected_revision: str | None = None,
) -> Outcome:
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
    if (
        body is None
        or body.get(status_field) != status_value
        or (revision_field and (not isinstance(revision, str) or not revision))
    ):
        return failed(
            f"GET /ready answered 200 without the documented JSON body {documented}: {describe_body(response)}",
            revision=revision if isinstance(revision, str) else None,
            **evidence,
        )
    if expected_revision is not None and revision != expected_revision:
        return failed(
            f"GET /ready answered 200 {status_value} at revision {revision}, expected {expected_revision}",
            revision=revision,
            **evidence,
        )
    shown = f" at revision {revision}" if revision_field else ""
    return passed(f"200 {status_value}{shown} in {elapsed:.1f} ms", revision=revision, **evidence)


def log_in(client: httpx.Client, username: str, password: str) -> str:
    """A bearer token for the smoke account; ``ProbeFailed`` naming why not."""
    response = send(client, "POST", "/aris3/auth/login", json={"username": username, "password": password})
    if response.status_code != 200:
        raise ProbeFailed(
            f"login as {username} refused: {describe_response(response)} "
            "(check ARIS3_SMOKE_USERNAME / ARIS3_SMOKE_PASSWORD)"
        )
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
    warmup: int = default_of(GateSettings, "latency_warmup")
    deadline_sec: float = default_of(GateSettings, "latency_deadline_sec")
    min_samples: int = MIN_LATENCY_SAMPLES
    params: Mapping[str, str] = field(default_factory=dict)  # the query string (a profile's endpoint)
    status: int | None = None  # the answer expected (a profile's endpoint); None: any 2xx


def percentiles(samples_ms: list[float]) -> dict[str, float]:
    """p50, p95 and p99 by linear interpolation (type 7), as numpy and k6 compute them."""
    import numpy as np  # here: the runner imports this module to learn the phases, and needs no numpy

    values = np.percentile(np.asarray(samples_ms, dtype=float), PERCENTILES, method="linear")
    return {f"p{p}_ms": round(float(v), 3) for p, v in zip(PERCENTILES, values, strict=True)}


def certain_to_exceed(over_budget: int, min_samples: int) -> bool:
    """Whether ``over_budget`` samples above the budget make any p95 of ``min_samples``
    samples exceed it, whatever the missing samples would have been.

    With n samples sorted, type-7 p95 lies at or above the value at rank floor(0.95 (n - 1));
    once that rank can only hold an over-budget sample, the p95 is over budget.
    """
    return over_budget >= min_samples - math.floor(0.95 * (min_samples - 1))


def measure_latency(
    client: httpx.Client,
    plan: LatencyPlan,
    headers: dict[str, str] | None = None,
    clock: Callable[[], float] = time.perf_counter,
) -> Outcome:
    """Warm up, then time ``plan.samples`` sequential GETs of ``plan.path``; judge the p95.

    Any error answer, refused connection or timeout is a FAIL at once (a latency of a failing
    endpoint means nothing). Fewer samples than the minimum is WARN "inconclusive", never a
    PASS, unless enough of them are over budget to make the p95 certainly too high.
    """
    request = client.build_request("GET", plan.path, headers=headers or {}, params=dict(plan.params) or None)
    for _ in range(plan.warmup):
        _expect_ok(send_again(client, request, plan.path), plan.path, plan.status)
    samples: list[float] = []
    deadline = clock() + plan.deadline_sec
    while len(samples) < plan.samples and clock() < deadline:
        started = clock()
        response = send_again(client, request, plan.path)
        samples.append((clock() - started) * 1000)
        _expect_ok(response, plan.path, plan.status)
    evidence: dict[str, Any] = {
        "path": plan.path,
        "budget_ms": plan.budget_ms,
        "warmup": plan.warmup,
        "requested_samples": plan.samples,
        "min_samples": plan.min_samples,
        "deadline_sec": plan.deadline_sec,
        "method": "numpy.percentile(method='linear') (type 7)",
    }
    if plan.params or plan.status is not None:
        evidence.update(params=dict(plan.params), expected_status=plan.status)
    if not samples:
        return warned(f"inconclusive: no sample taken within {plan.deadline_sec:g} s", samples_ms=[], **evidence)
    samples = [round(s, 3) for s in samples]  # kept as recorded, so the percentiles can be recomputed exactly
    stats = percentiles(samples)
    over = sum(1 for s in samples if s > plan.budget_ms)
    evidence.update(
        stats,
        count=len(samples),
        over_budget=over,
        mean_ms=round(statistics.fmean(samples), 3),
        min_ms=min(samples),
        max_ms=max(samples),
        samples_ms=samples,
    )
    summary = (
        f"p95 {stats['p95_ms']:.1f} ms {{}} budget {plan.budget_ms:g} ms "
        f"(p50 {stats['p50_ms']:.1f}, p99 {stats['p99_ms']:.1f}; {len(samples)} samples)"
    )
    if len(samples) < plan.min_samples:
        if certain_to_exceed(over, plan.min_samples):
            return failed(
                f"p95 over budget {plan.budget_ms:g} ms for certain: {over} of {len(samples)} samples over it "
                f"before the {plan.deadline_sec:g} s deadline (p50 {stats['p50_ms']:.1f} ms)",
                **evidence,
            )
        why = (
            f"stopped at the {plan.deadline_sec:g} s deadline"
            if len(samples) < plan.samples
            else f"only {plan.samples} requested"
        )
        return warned(
            f"inconclusive: {len(samples)} samples, fewer than {plan.min_samples} ({why}); "
            f"p95 {stats['p95_ms']:.1f} ms",
            **evidence,
        )
    if stats["p95_ms"] > plan.budget_ms:
        return failed(summary.format(">"), **evidence)
    return passed(summary.format("<="), **evidence)


def _expect_ok(response: httpx.Response, path: str, status: int | None = None) -> None:
    if status is None and not 200 <= response.status_code < 300:
        raise ProbeFailed(f"GET {path} answered {describe_response(response)}")
    if status is not None and response.status_code != status:
        raise ProbeFailed(f"GET {path} answered {describe_answer(response)}, expected {status}")
