"""Abuse and limits: rate limits with Retry-After, list and page limits, Allow on 405, CORS closed."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings
from tests.support.apps import app_client
from tests.support.cases import MINIMAL_CASE, unique_force
from tests.support.database import count_rows, create_key, make_keys
from tests.support.http import assert_problem, bearer

# A limit filled here must stay filled until the test expects it refused.
pytestmark = pytest.mark.usefixtures("one_rate_window")


def limited_settings(data_dir, **overrides) -> Settings:
    return Settings(
        data_dir=data_dir,
        rate_case_creation_per_address="3/minute",
        rate_case_creation_per_key="5/minute",
        rate_publishable_case_creation_per_key="5/minute",
        rate_guidance_per_address="4/minute",
        **overrides,
    )


@pytest.fixture
def limited(tmp_path):
    """An app of its own with tight limits (the shared test app has none)."""
    with app_client(limited_settings(tmp_path)) as client:
        yield client, make_keys(client.app.state.engine)


WEBSITE = "https://www.force.example"


def test_reports_from_people_are_limited_per_client_address_with_retry_after(limited):
    client, _ = limited
    engine = client.app.state.engine
    first, second = (create_key(engine, "submitter", f"site {n}", origins=[WEBSITE]) for n in (1, 2))
    from_site = {"Origin": WEBSITE}
    for _ in range(3):
        assert client.post("/v1/cases", json=MINIMAL_CASE, headers={**bearer(first), **from_site}).status_code == 201
    refused = client.post("/v1/cases", json=MINIMAL_CASE, headers={**bearer(second), **from_site})
    body = assert_problem(refused, 429)
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert "wait" in body["detail"]
    assert refused.headers["ratelimit-policy"].startswith('"reports-per-address";q=3;w=60')
    # Another address is not held back by this one.
    other = TestClient(client.app, client=("198.51.100.7", 50000))
    assert other.post("/v1/cases", json=MINIMAL_CASE, headers={**bearer(first), **from_site}).status_code == 201


def test_a_secret_key_is_limited_per_key_never_per_address(limited):
    # A force's backend or a partner's server sends every report from one address.
    client, keys = limited
    answers = [
        client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).status_code for _ in range(7)
    ]
    assert answers == [201] * 5 + [429] * 2
    assert client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.other_submitter)).status_code == 201


def test_a_burst_of_thirty_reports_from_a_partner_server_is_taken_at_default_limits(tmp_path):
    # The defaults: 20/minute per address, 600/minute per secret key.
    with app_client(Settings(data_dir=tmp_path)) as client:
        keys = make_keys(client.app.state.engine)
        answers = {
            client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).status_code for _ in range(30)
        }
    assert answers == {201}


def test_case_creation_is_limited_per_key_across_addresses(limited):
    client, keys = limited
    answers = [
        TestClient(client.app, client=(f"198.51.100.{n}", 50000))
        .post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
        .status_code
        for n in range(7)
    ]
    assert answers == [201] * 5 + [429] * 2


def test_limited_answers_say_the_policy_and_what_is_left(limited):
    client, keys = limited
    created = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
    assert created.headers["ratelimit-policy"] == '"reports-per-key";q=5;w=60'
    assert created.headers["ratelimit"].startswith('"reports-per-key";r=4;t=')
    read = client.get("/v1/guidance")
    assert read.headers["ratelimit-policy"] == '"guidance-per-address";q=4;w=60'
    assert read.headers["ratelimit"].startswith('"guidance-per-address";r=3;t=')


def test_a_refused_report_is_refused_before_its_body_is_read_or_stored(limited):
    client, keys = limited
    for _ in range(5):
        client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
    cases_before = count_rows(client.app.state.engine, "case")
    refused = client.post("/v1/cases", content=b"{not even json", headers=bearer(keys.submitter))
    assert_problem(refused, 429)  # a read body would have been a 422 for its broken JSON
    refused_whole = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter))
    assert_problem(refused_whole, 429)
    assert count_rows(client.app.state.engine, "case") == cases_before


def test_public_guidance_is_limited_per_address(limited):
    client, _ = limited
    statuses = [client.get("/v1/guidance").status_code for _ in range(5)]
    assert statuses == [200] * 4 + [429]


@pytest.mark.redis
def test_limits_in_redis_hold_across_apps_sharing_it(tmp_path, redis_server):
    # Two apps stand for two workers or replicas: the fifth read is refused whichever answers it.
    settings = [limited_settings(tmp_path / n, rate_limit_storage_url=redis_server.url) for n in ("a", "b")]
    with app_client(settings[0]) as first, app_client(settings[1]) as second:
        clients = [TestClient(client.app, client=("203.0.113.9", 50000)) for client in (first, second)]
        statuses = [clients[n % 2].get("/v1/guidance").status_code for n in range(6)]
    assert statuses == [200] * 4 + [429] * 2


def test_an_unreachable_limit_store_lets_reports_through(tmp_path):
    with app_client(limited_settings(tmp_path, rate_limit_storage_url="redis://127.0.0.1:1/0")) as client:
        assert client.get("/v1/guidance").status_code == 200


def test_an_unknown_limit_store_is_refused_at_start(tmp_path):
    with pytest.raises(ValueError, match="INTAKE_RATE_LIMIT_STORAGE_URL"):
        create_app(limited_settings(tmp_path, rate_limit_storage_url="carrier-pigeon://loft"))


@pytest.mark.parametrize("text", ["30", "0/minute", "5/fortnight", "lots"])
def test_a_badly_written_rate_is_refused_at_start(text, tmp_path):
    with pytest.raises(ValueError, match="30/minute"):
        create_app(Settings(data_dir=tmp_path, rate_guidance_per_address=text))


def test_deeply_nested_json_is_refused_without_a_500(client, keys):
    nested = b'{"a":' * 50_000 + b"1" + b"}" * 50_000
    response = client.post(
        "/v1/cases", content=nested, headers={**bearer(keys.submitter), "Content-Type": "application/json"}
    )
    assert "nested too deeply" in assert_problem(response, 422)["errors"][0]["message"]


def test_identifiers_and_lists_have_limits_named_in_the_answer(client, keys, new_case):
    many = [{"type": "email", "value": f"offender{n}@example.net"} for n in range(51)]
    response = client.post("/v1/cases", json={**MINIMAL_CASE, "identifiers": many}, headers=bearer(keys.submitter))
    assert "at most 50 items" in assert_problem(response, 422)["errors"][0]["message"]
    case = new_case()
    added = client.post(f"/v1/cases/{case['reference']}/identifiers", json=many, headers=bearer(case["reporter_token"]))
    assert "at most 50 identifiers" in assert_problem(added, 422)["errors"][0]["message"]


def test_a_page_is_never_larger_than_the_server_allows(client, keys, new_case, settings):
    for _ in range(3):
        new_case()
    small = Settings(**{**settings.model_dump(), "max_page_size": 2})
    with app_client(small, migrate=False, raise_server_exceptions=True) as capped:
        page = capped.get("/v1/cases?limit=1000", headers=bearer(keys.analyst)).json()
    assert len(page["cases"]) == 2 and page["next_cursor"]


def test_405_names_every_method_the_address_takes(client):
    response = client.request("OPTIONS", "/v1/cases")
    assert_problem(response, 405)
    assert response.headers["allow"] == "GET, HEAD, POST"
    assert client.delete("/v1/cases/2222-2222-2222/notes").headers["allow"] == "GET, HEAD, POST"


def test_cors_is_closed_by_default(client, keys):
    preflight = client.request(
        "OPTIONS",
        "/v1/cases",
        headers={"Origin": "https://attacker.example", "Access-Control-Request-Method": "POST"},
    )
    assert "access-control-allow-origin" not in preflight.headers
    read = client.get("/v1/guidance", headers={"Origin": "https://attacker.example"})
    assert "access-control-allow-origin" not in read.headers


NUL = "\u0000"


@pytest.mark.parametrize(
    ("fields", "named"),
    [
        ({"account": f"Synthetic{NUL}account"}, "account"),
        ({"threats": f"x{NUL}"}, "threats"),
        ({"reporter": {"relationship": "self", "name": f"n{NUL}"}}, "reporter.name"),
        ({"platforms": ["instagram", f"sk{NUL}ype"]}, "platforms"),
        ({"identifiers": [{"type": "username", "value": f"a{NUL}b", "platform": "x"}]}, "identifiers[0].value"),
    ],
)
def test_a_nul_character_is_refused_by_name_never_a_500(client, keys, fields, named):
    # PostgreSQL can't keep NUL in text: found by the fuzzer as 500s before this check existed.
    response = client.post("/v1/cases", json={**MINIMAL_CASE, **fields}, headers=bearer(keys.submitter))
    assert assert_problem(response, 422)["errors"][0]["field"] == named


def test_nul_characters_in_forms_notes_and_queries_are_refused(client, keys, new_case):
    form = {"reporter.relationship": "other", "account": "Synthetic.", "threats": f"v{NUL}"}
    assert_problem(client.post("/v1/cases", data=form, headers=bearer(keys.submitter)), 422)
    case = new_case()
    note = client.post(f"/v1/cases/{case['reference']}/notes", json={"body": f"a{NUL}"}, headers=bearer(keys.analyst))
    assert assert_problem(note, 422)["errors"][0]["field"] == "body"
    for path, name in [("/v1/cases", "force"), ("/v1/identifiers", "normalized"), ("/v1/cases/export", "identifier")]:
        response = client.get(path, params={name: f"x{NUL}"}, headers=bearer(keys.analyst))
        assert assert_problem(response, 422)["errors"][0]["field"] == name


@pytest.mark.parametrize(
    ("until", "status"),
    [
        ("0913-12-18T11:00:04-18:04", 200),  # 0913-12-19 05:04:04 UTC: a date like any other
        ("0001-01-01T00:00:00+18:00", 422),  # before year 1 in UTC
        ("9999-12-31T23:59:59-18:00", 422),  # after year 9999 in UTC
    ],
)
def test_search_bounds_with_extreme_offsets_are_compared_in_utc_or_refused(client, keys, until, status):
    # An offset PostgreSQL can't keep (±15:59 at most) was a 500 on export (found by the fuzzer).
    for path in ("/v1/cases", "/v1/cases/export"):
        response = client.get(path, params={"until": until}, headers=bearer(keys.analyst))
        if status == 422:
            assert assert_problem(response, 422)["errors"][0]["field"] == "until"
        else:
            assert response.status_code == 200, response.text
            assert response.text in ('{"cases":[],"next_cursor":null}', "")  # every case is later than that


def test_a_search_bound_with_an_offset_is_the_same_moment_in_utc(client, keys, new_case):
    force = unique_force()
    created = new_case(police_force=force)
    at = datetime.fromisoformat(created["created_at"].replace("Z", "+00:00"))
    far_east = timezone(timedelta(hours=14))  # the same moment, written 14 hours ahead
    second = timedelta(seconds=1)

    def found(**bound: datetime) -> list[str]:
        params = {"force": force, **{name: moment.astimezone(far_east).isoformat() for name, moment in bound.items()}}
        response = client.get("/v1/cases", params=params, headers=bearer(keys.analyst))
        assert response.status_code == 200, response.text
        return [case["reference"] for case in response.json()["cases"]]

    assert found(since=at - second, until=at + second) == [created["reference"]]
    assert found(until=at - second) == []
    assert found(since=at + second) == []


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0und4ry") -> tuple[bytes, dict]:
    body = bytearray()
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"' + (f'; filename="{filename}"' if filename is not None else "")
        body += f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content + b"\r\n"
    body += f"--{boundary}--\r\n".encode()
    return bytes(body), {"content-type": f"multipart/form-data; boundary={boundary}"}


def test_empty_file_parts_count_as_fields_so_a_body_cannot_hold_them_unbounded(client, keys, settings):
    case = [("reporter.relationship", None, b"self"), ("account", None, MINIMAL_CASE["account"].encode())]
    body, headers = _multipart(case + [("evidence", "", b"")] * settings.max_form_fields)
    before = count_rows(settings.resolved_database_url, "case")
    response = client.post("/v1/cases", content=body, headers={**headers, **bearer(keys.submitter)})
    assert "too many fields" in assert_problem(response, 413)["detail"]
    assert count_rows(settings.resolved_database_url, "case") == before


def test_an_empty_file_part_that_carries_bytes_counts_them_against_the_field_limit(client, keys, settings):
    padding = b"x" * (settings.max_body_bytes + 1)
    case = [("reporter.relationship", None, b"self"), ("account", None, MINIMAL_CASE["account"].encode())]
    body, headers = _multipart([*case, ("evidence", "", padding)])
    response = client.post("/v1/cases", content=body, headers={**headers, **bearer(keys.submitter)})
    assert_problem(response, 413)


def test_a_browsers_empty_file_input_is_still_read_as_no_file(client, keys):
    case = [("reporter.relationship", None, b"self"), ("account", None, MINIMAL_CASE["account"].encode())]
    body, headers = _multipart([*case, ("evidence", "", b"")])
    response = client.post("/v1/cases", content=body, headers={**headers, **bearer(keys.submitter)})
    assert response.status_code == 201, response.text
    assert response.json()["evidence"] == []


def test_additions_to_a_case_are_limited_per_case_for_its_reporter_on_every_route(tmp_path):
    with app_client(limited_settings(tmp_path, rate_additions_per_case="3/minute")) as client:
        keys = make_keys(client.app.state.engine)
        created = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        reporter = bearer(created["reporter_token"])
        base = f"/v1/cases/{created['reference']}"
        mtcn = {"type": "mtcn", "value": "123-456-7890"}
        assert client.post(f"{base}/identifiers", json=mtcn, headers=reporter).status_code == 201
        ticket = {"filename": "a.txt", "size": 10, "sha256": "0" * 64}
        assert client.post(f"{base}/evidence/uploads", json=ticket, headers=reporter).status_code == 201
        added = client.post(
            f"{base}/evidence", files=[("file", ("a.txt", b"synthetic", "text/plain"))], headers=reporter
        )
        assert added.status_code == 201
        assert added.headers["ratelimit-policy"] == '"additions-per-case";q=3;w=60'
        refused = [
            client.post(f"{base}/identifiers", json=mtcn, headers=reporter),
            client.post(f"{base}/evidence/uploads", json=ticket, headers=reporter),
            client.post(f"{base}/evidence/uploads/{'0' * 32}/complete", headers=reporter),
            client.post(f"{base}/evidence", files=[("file", ("b.txt", b"synthetic", "text/plain"))], headers=reporter),
        ]
        for answer in refused:
            body = assert_problem(answer, 429)
            assert "additions to this case" in body["detail"] and "3 a minute" in body["detail"]
            assert int(answer.headers["retry-after"]) >= 1
        assert count_rows(client.app.state.engine, "evidence") == 1
        # Another case's reporter is not held back by this one.
        other = client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json()
        answer = client.post(
            f"/v1/cases/{other['reference']}/identifiers", json=mtcn, headers=bearer(other["reporter_token"])
        )
        assert answer.status_code == 201


def test_additions_by_a_secret_key_are_limited_per_key(tmp_path):
    with app_client(limited_settings(tmp_path, rate_additions_per_key="2/minute")) as client:
        keys = make_keys(client.app.state.engine)
        cases = [client.post("/v1/cases", json=MINIMAL_CASE, headers=bearer(keys.submitter)).json() for _ in range(3)]
        mtcn = {"type": "mtcn", "value": "123-456-7890"}
        answers = [
            client.post(f"/v1/cases/{case['reference']}/identifiers", json=mtcn, headers=bearer(keys.submitter))
            for case in cases
        ]
        assert [answer.status_code for answer in answers] == [201, 201, 429]
        assert "additions with this key" in answers[2].json()["detail"]
        # The case's own reporter has a bucket of its own.
        third = cases[2]
        answer = client.post(
            f"/v1/cases/{third['reference']}/identifiers", json=mtcn, headers=bearer(third["reporter_token"])
        )
        assert answer.status_code == 201
