"""Problem details for every error, no 500 for bad input; health, readiness and metrics."""

from __future__ import annotations

import gc

import pytest
from opentelemetry import trace

from service.app import YOUNG_GENERATION_THRESHOLD
from service.settings import Settings
from tests.support.apps import app_client
from tests.support.cases import MINIMAL_CASE
from tests.support.http import assert_problem, bearer


def test_unknown_path_is_a_problem_404(client):
    assert_problem(client.get("/v1/nothing-here"), 404)


def test_wrong_method_is_a_problem_405(client):
    assert_problem(client.delete("/v1/guidance"), 405)


def test_wrong_media_type_is_415(client, keys):
    response = client.post(
        "/v1/cases", content=b"<xml/>", headers={**bearer(keys.submitter), "Content-Type": "application/xml"}
    )
    assert_problem(response, 415)
    assert "application/json" in response.headers["accept-post"]


def test_a_body_over_the_size_limit_is_a_problem_413(client, keys, settings):
    big = {**MINIMAL_CASE, "account": "x" * (settings.max_body_bytes + 1)}
    assert_problem(client.post("/v1/cases", json=big, headers=bearer(keys.submitter)), 413)


def test_oversized_multipart_fields_are_413(client, keys, settings):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        files={"reporter.relationship": (None, "self"), "account": (None, "x" * (settings.max_body_bytes + 1))},
    )
    assert_problem(response, 413)


@pytest.mark.parametrize(
    "raw",
    [
        b"",
        b"{",
        b"[1, 2]",
        b'"text"',
        b"null",
        b"\xff\xfe",
        b"[" * 100_000,
        b'{"reporter": "self", "account": 5}',
        b'{"reporter": {"relationship": null}}',
    ],
)
def test_malformed_json_is_a_422_never_a_500(client, keys, raw):
    response = client.post(
        "/v1/cases", content=raw, headers={**bearer(keys.submitter), "Content-Type": "application/json"}
    )
    body = assert_problem(response, 422)
    assert body["errors"]


@pytest.mark.parametrize("raw", [b"--nope", b"garbage", b"--b\r\nContent-Disposition: form-data\r\n\r\nx\r\n--b--\r\n"])
def test_malformed_multipart_is_a_422(client, keys, raw):
    response = client.post(
        "/v1/cases", content=raw, headers={**bearer(keys.submitter), "Content-Type": "multipart/form-data; boundary=b"}
    )
    assert assert_problem(response, 422)["errors"][0]["field"] == "body"


def test_long_text_fields_are_refused_with_their_limit(client, keys):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        json={**MINIMAL_CASE, "platforms": ["x"] * 51, "reporter": {"relationship": "self", "name": "n" * 201}},
    )
    fields = {e["field"]: e["message"] for e in assert_problem(response, 422)["errors"]}
    assert "at most 50 items" in fields["platforms"]
    assert "at most 200 characters" in fields["reporter.name"]


def test_every_response_carries_security_headers_and_a_request_id(client):
    response = client.get("/v1/guidance")
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.headers["x-frame-options"] == "DENY"
    assert response.headers["x-request-id"]
    case_response = client.get("/v1/cases/2222-2222-2222")
    assert case_response.headers["cache-control"] == "no-store"


def test_healthz_and_readyz(client):
    assert client.get("/healthz").json()["status"] == "ok"
    ready = client.get("/readyz")
    assert ready.status_code == 200
    assert ready.json()["checks"]["database"] == "ok"


def test_readyz_says_not_ready_when_the_database_is_unreachable(tmp_path):
    unreachable = Settings(data_dir=tmp_path, database_url="postgresql+psycopg://nobody@127.0.0.1:1/none")
    with app_client(unreachable, migrate=False, raise_server_exceptions=True) as local:
        response = local.get("/readyz")
        assert response.status_code == 503
        assert response.json()["checks"]["database"] == "unreachable"
        assert local.get("/healthz").status_code == 200
        down = local.post("/v1/cases", json=MINIMAL_CASE, headers=bearer("isk_a_b"))
        assert_problem(down, 503)
        assert down.headers["retry-after"]


def test_metrics_are_for_admin_keys_only(client, keys):
    # Report volumes and analyst activity are sensitive: not for the public, nor for other roles.
    assert client.get("/metrics").status_code == 401
    for key in (keys.submitter, keys.analyst):
        assert client.get("/metrics", headers=bearer(key)).status_code == 403
    assert client.get("/metrics", headers=bearer(keys.admin)).status_code == 200


def test_metrics_count_requests_by_route_template_never_by_path(client, keys, new_case):
    reference = new_case()["reference"]
    client.get(f"/v1/cases/{reference}")
    text = client.get("/metrics", headers=bearer(keys.admin)).text
    assert 'route="/v1/cases/{reference}"' in text
    assert reference not in text


def test_a_number_or_list_where_text_belongs_is_named_in_plain_words(client, keys):
    response = client.post(
        "/v1/cases",
        json={"reporter": {"relationship": "self", "name": 7}, "account": 5, "threats": ["x"]},
        headers=bearer(keys.submitter),
    )
    assert assert_problem(response, 422)["errors"] == [
        {"field": "reporter.name", "message": "This should be text."},
        {"field": "account", "message": "This should be text."},
        {"field": "threats", "message": "This should be text."},
    ]


def test_a_serving_app_spares_the_collector_what_it_built_and_what_is_in_flight(client):
    # The started app (the client fixture) froze the heap it had built and raised the young threshold:
    # under load the collector otherwise walked ~200,000 long-lived objects about once per second.
    assert gc.get_freeze_count() > 0
    assert gc.get_threshold()[0] == YOUNG_GENERATION_THRESHOLD


def test_no_request_goes_to_an_opentelemetry_tracer_even_one_set_for_the_process(client, keys, monkeypatch):
    # FastAPI's own spans would carry the raw path and query: case references, signed evidence links.
    started = []

    class RecordingTracer(trace.NoOpTracer):
        def start_span(self, name, *args, attributes=None, **kwargs):
            started.append((name, dict(attributes or {})))
            return super().start_span(name, *args, attributes=attributes, **kwargs)

    class RecordingProvider(trace.TracerProvider):
        def get_tracer(self, *args, **kwargs):
            return RecordingTracer()

    monkeypatch.setattr(trace, "get_tracer_provider", RecordingProvider)
    response = client.get("/v1/cases/7KQM-X4TR-9PZC?reason=synthetic", headers=bearer(keys.analyst))
    assert response.status_code == 404
    assert started == []
