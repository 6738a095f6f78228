"""Latency judged honestly (type-7 percentiles, minimum samples, certain failures), base
URLs, and HTTP errors translated at one boundary — without a network: httpx's
MockTransport answers, and a fake clock advances by each request's simulated latency."""

from __future__ import annotations

import contextlib
import http.server
import itertools
import ssl
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest

from aris3nb.core.checks import Status
from aris3nb.core.errors import InvalidBaseUrl, ProbeFailed
from aris3nb.gate.http import (
    LatencyPlan,
    certain_to_exceed,
    describe_response,
    log_in,
    measure_latency,
    new_client,
    parse_base_url,
    percentiles,
    probe_health,
    probe_ready,
    send,
    tls_context,
)


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def client_with(handler: Callable[[httpx.Request], httpx.Response]) -> httpx.Client:
    return httpx.Client(base_url="http://service.test", transport=httpx.MockTransport(handler), timeout=2)


def timed_service(clock: FakeClock, latency_ms: Callable[[int], float], status: int = 200) -> httpx.Client:
    counter = itertools.count(1)

    def handler(request: httpx.Request) -> httpx.Response:
        clock.now += latency_ms(next(counter)) / 1000
        return httpx.Response(status, json={"status": "ok"})

    return client_with(handler)


def test_percentiles_are_type_7_linear_interpolation() -> None:
    values = [float(v) for v in range(1, 11)]
    assert percentiles(values) == {"p50_ms": 5.5, "p95_ms": 9.55, "p99_ms": 9.91}
    rng = np.random.default_rng(7)
    sample = list(rng.exponential(5, 1000))
    expected = np.quantile(sample, 0.95)  # numpy's default method is type 7 too
    assert percentiles(sample)["p95_ms"] == pytest.approx(expected, abs=1e-3)


def test_certain_to_exceed_is_exactly_the_point_where_no_completion_can_pass() -> None:
    n, budget = 200, 100.0
    assert certain_to_exceed(11, n) and not certain_to_exceed(10, n)
    # 11 slow samples: even if every other sample is instant, the p95 is over budget;
    # 10 slow samples: the other 190 can bring it under.
    assert np.percentile([0.0] * (n - 11) + [500.0] * 11, 95) > budget
    assert np.percentile([0.0] * (n - 10) + [500.0] * 10, 95) <= budget


def test_fast_service_passes_with_every_sample_kept() -> None:
    clock = FakeClock()
    outcome = measure_latency(
        timed_service(clock, lambda i: 2.0 + (i % 3)), LatencyPlan("/x", budget_ms=120, warmup=5), clock=clock
    )
    assert outcome.status is Status.PASS, outcome.detail
    assert outcome.evidence["count"] == 200 and len(outcome.evidence["samples_ms"]) == 200
    assert outcome.evidence["p95_ms"] <= 120 and outcome.detail.startswith("p95 ")


def test_slow_tenth_fails_p95_while_median_is_fast() -> None:
    clock = FakeClock()
    outcome = measure_latency(
        timed_service(clock, lambda i: 200.0 if i % 10 == 0 else 2.0),
        LatencyPlan("/x", budget_ms=120, warmup=20),
        clock=clock,
    )
    assert outcome.status is Status.FAIL
    assert outcome.evidence["p50_ms"] == pytest.approx(2.0)
    assert outcome.evidence["p95_ms"] == pytest.approx(200.0)
    assert "> budget 120 ms" in outcome.detail


def test_fewer_samples_than_the_minimum_is_inconclusive_never_pass() -> None:
    clock = FakeClock()
    outcome = measure_latency(
        timed_service(clock, lambda i: 1.0), LatencyPlan("/x", budget_ms=120, samples=50, warmup=0), clock=clock
    )
    assert outcome.status is Status.WARN
    assert outcome.detail.startswith("inconclusive: 50 samples, fewer than 200")


def test_deadline_stops_sampling_warns_or_fails_when_the_failure_is_certain() -> None:
    clock = FakeClock()
    # 100 ms each, 5 s deadline: 50 samples, none over a 120 ms budget -> inconclusive.
    outcome = measure_latency(
        timed_service(clock, lambda i: 100.0), LatencyPlan("/x", budget_ms=120, warmup=0, deadline_sec=5), clock=clock
    )
    assert outcome.status is Status.WARN and "deadline" in outcome.detail
    clock = FakeClock()
    # 300 ms each: 17 samples over budget before the deadline, the p95 can only be over.
    outcome = measure_latency(
        timed_service(clock, lambda i: 300.0), LatencyPlan("/x", budget_ms=120, warmup=0, deadline_sec=5), clock=clock
    )
    assert outcome.status is Status.FAIL and "for certain" in outcome.detail


def test_an_error_answer_during_sampling_fails_at_once() -> None:
    clock = FakeClock()
    with pytest.raises(ProbeFailed, match="GET /x answered 500"):
        measure_latency(timed_service(clock, lambda i: 1.0, status=500), LatencyPlan("/x", budget_ms=120), clock=clock)


@pytest.mark.parametrize("text", ["http://127.0.0.1:8000", "https://aris3.example.internal/", "http://h/prefix/"])
def test_good_base_urls(text: str) -> None:
    assert parse_base_url(text) == text.rstrip("/")


@pytest.mark.parametrize(
    "text",
    ["not a url", "ftp://h", "http://", "127.0.0.1:8000", "http://h:99999", "http://h/?q=1", "", "http://u:S3cret@/x"],
)
def test_malformed_base_urls_are_usage_errors_without_the_password(text: str) -> None:
    with pytest.raises(InvalidBaseUrl) as caught:
        parse_base_url(text)
    assert caught.value.exit_code == 2 and "S3cret" not in str(caught.value)


def test_health_and_ready_both_ways() -> None:
    ok = client_with(
        lambda r: httpx.Response(
            200, json={"status": "ok"} if r.url.path == "/health" else {"status": "ready", "revision": "0005"}
        )
    )
    assert probe_health(ok).status is Status.PASS
    assert probe_ready(ok).detail.startswith("200 ready at revision 0005")
    envelope = {"code": "SCHEMA_NOT_AT_HEAD", "message": "schema at 0004, needs 0005", "details": None, "trace_id": "t"}
    down = client_with(lambda r: httpx.Response(503, json=envelope))
    outcome = probe_ready(down)
    assert outcome.status is Status.FAIL
    assert outcome.detail == "GET /ready answered 503 SCHEMA_NOT_AT_HEAD: schema at 0004, needs 0005"
    assert probe_health(client_with(lambda r: httpx.Response(200, json={"status": "degraded"}))).status is Status.FAIL
    assert "500 Internal Server Error" in probe_health(client_with(lambda r: httpx.Response(500, text="oops"))).detail


def test_transport_errors_become_probe_failures_naming_the_cause() -> None:
    def refuse(request: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("[Errno 111] Connection refused", request=request)

    def hang(request: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("timed out", request=request)

    with pytest.raises(ProbeFailed, match="cannot connect: .*Connection refused"):
        send(client_with(refuse), "GET", "/health")
    with pytest.raises(ProbeFailed, match=r"GET http://service.test/health timed out after 2 s"):
        send(client_with(hang), "GET", "/health")


def test_a_transport_error_while_sampling_fails_naming_the_cause_and_every_sample_is_the_same_request() -> None:
    """The samples send one request made once (its headers and query each time); a connection
    lost or a timeout among them is a ProbeFailed naming it, as for any other request."""
    seen: list[tuple[str, str | None]] = []

    def drops_the_fifth(request: httpx.Request) -> httpx.Response:
        seen.append((str(request.url), request.headers.get("authorization")))
        if len(seen) == 5:
            raise httpx.ReadTimeout("timed out", request=request)
        if len(seen) == 9:
            raise httpx.ConnectError("[Errno 111] Connection refused", request=request)
        return httpx.Response(200, json={"status": "ok"})

    client = client_with(drops_the_fifth)
    plan = LatencyPlan("/x", budget_ms=120, warmup=2, params={"page": "1"})
    with pytest.raises(ProbeFailed, match=r"GET http://service.test/x timed out after 2 s \(ReadTimeout\)"):
        measure_latency(client, plan, {"Authorization": "Bearer t"})
    assert set(seen) == {("http://service.test/x?page=1", "Bearer t")}
    with pytest.raises(ProbeFailed, match="GET http://service.test/x: cannot connect: .*Connection refused"):
        measure_latency(client, plan, {"Authorization": "Bearer t"})


def test_wrong_smoke_credentials_name_the_account_and_the_variables() -> None:
    envelope = {
        "code": "INVALID_CREDENTIALS",
        "message": "wrong username or password",
        "details": None,
        "trace_id": "t",
    }
    refused = client_with(lambda r: httpx.Response(401, json=envelope))
    with pytest.raises(
        ProbeFailed, match="login as smoke.admin refused: 401 INVALID_CREDENTIALS.*ARIS3_SMOKE_PASSWORD"
    ):
        log_in(refused, "smoke.admin", "wrong")
    assert describe_response(httpx.Response(404, text="")) == "404 Not Found"


NGINX_PAGE = (
    "<!DOCTYPE html>\n<html>\n<head>\n<title>Welcome to nginx!</title>\n</head>\n<body>\n"
    "<h1>Welcome to nginx!</h1>\n<p>If you see this page, the nginx web server is successfully installed "
    "and working.</p>\n</body>\n</html>\n"
)


def test_an_html_page_answering_200_is_neither_healthy_nor_ready() -> None:
    html = client_with(lambda r: httpx.Response(200, text=NGINX_PAGE, headers={"content-type": "text/html"}))
    for probe, path in ((probe_health, "/health"), (probe_ready, "/ready")):
        outcome = probe(html)
        assert outcome.status is Status.FAIL, outcome.detail
        assert outcome.detail.startswith(f"GET {path} answered 200 without the documented JSON body")
        assert "text/html, body starts '<!DOCTYPE html> <html> <head> <title>Welcome to nginx!" in outcome.detail
        assert outcome.detail.endswith("...'") and len(outcome.detail) < 250


@pytest.mark.parametrize(
    "body",
    [
        {"status": "ok"},
        {"status": "ready"},
        {"status": "ready", "revision": None},
        {"status": "ready", "revision": ""},
        {"revision": "0005"},
        ["status", "ready"],
        "ready",
    ],
)
def test_ready_needs_the_status_and_a_revision(body: object) -> None:
    outcome = probe_ready(client_with(lambda r: httpx.Response(200, json=body)))
    assert outcome.status is Status.FAIL
    assert "without the documented JSON body {'status': 'ready', 'revision': ...}: application/json" in outcome.detail


def test_empty_and_secret_bearing_bodies_are_described_safely() -> None:
    empty = probe_ready(client_with(lambda r: httpx.Response(200)))
    assert empty.status is Status.FAIL and empty.detail.endswith("no content type, empty body")
    leaky = client_with(
        lambda r: httpx.Response(
            200, text="db=postgresql://app:TopSecret1@db/aris3", headers={"content-type": "text/plain"}
        )
    )
    outcome = probe_ready(leaky)
    assert outcome.status is Status.FAIL and "TopSecret1" not in outcome.detail + str(outcome.evidence)


def test_expected_status_field_value_and_revision_can_be_given() -> None:
    ours = client_with(lambda r: httpx.Response(200, json={"state": "UP", "version": "abc123"}))
    assert probe_health(ours, status_field="state", status_value="UP").status is Status.PASS
    ready = probe_ready(ours, status_field="state", status_value="UP", revision_field="version")
    assert ready.status is Status.PASS and ready.evidence["revision"] == "abc123"
    assert probe_ready(ours, status_field="state", status_value="UP", revision_field=None).status is Status.PASS
    behind = probe_ready(
        ours, status_field="state", status_value="UP", revision_field="version", expected_revision="def456"
    )
    assert behind.status is Status.FAIL and behind.detail.startswith(
        "GET /ready answered 200 UP at revision abc123, expected def456"
    )


@contextlib.contextmanager
def serving_html(tls: ssl.SSLContext | None = None) -> Iterator[str]:
    """A real HTTP(S) server on loopback answering an nginx-like HTML page, 200, for every path."""

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = NGINX_PAGE.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"{'https' if tls else 'http'}://127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(5)


@pytest.fixture
def html_server() -> Iterator[str]:
    with serving_html() as url:
        yield url


def test_a_real_server_answering_html_everywhere_fails_ready_and_health(html_server: str) -> None:
    with new_client(parse_base_url(html_server), 5) as client:
        ready, health = probe_ready(client), probe_health(client)
    for outcome in (ready, health):
        assert outcome.status is Status.FAIL
        assert "text/html, body starts '<!DOCTYPE html>" in outcome.detail
    assert ready.evidence["status_code"] == 200 and ready.evidence["revision"] is None


def test_tls_is_verified_with_one_context_that_honours_ssl_cert_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every client shares one TLS context made once per process; it still verifies: a
    self-signed server is refused, and trusted once ``SSL_CERT_FILE`` names its certificate."""
    key, cert = tmp_path / "key.pem", tmp_path / "cert.pem"
    subprocess.run(
        ["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=127.0.0.1"]
        + ["-addext", "subjectAltName=IP:127.0.0.1", "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    served = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    served.load_cert_chain(cert, key)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    tls_context.cache_clear()
    try:
        with serving_html(served) as url:
            with new_client(url, 5) as first, new_client("http://127.0.0.1:9", 5) as second:
                assert first._transport._pool._ssl_context is second._transport._pool._ssl_context  # one, made once
                with pytest.raises(ProbeFailed, match="(?i)certificate"):
                    send(first, "GET", "/health")
            monkeypatch.setenv("SSL_CERT_FILE", str(cert))
            tls_context.cache_clear()
            with new_client(url, 5) as trusting:
                assert send(trusting, "GET", "/health").status_code == 200
    finally:
        tls_context.cache_clear()
