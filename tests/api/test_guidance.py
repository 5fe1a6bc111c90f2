"""GET /v1/guidance, /v1/guidance/{slug}, /v1/support-services."""

from __future__ import annotations

from pathlib import Path

from service.settings import Settings
from tests.support.apps import app_client

CONTRACT_SLUGS = {
    "dont-panic",
    "stop-communicating",
    "dont-pay",
    "preserve-evidence",
    "what-to-save",
    "report-it",
    "support-services",
}


def test_guidance_lists_every_section_the_contract_promises(client):
    response = client.get("/v1/guidance")
    assert response.status_code == 200
    sections = response.json()
    assert {section["slug"] for section in sections} >= CONTRACT_SLUGS
    for section in sections:
        assert set(section) == {"slug", "title", "summary", "body", "audiences", "updated_at"}


def test_every_next_step_a_case_can_get_is_a_real_section(client):
    from service.domain.urgency import (
        BASE_NEXT_STEPS,
        CANCEL_PAYMENT_GUIDANCE,
        IMAGES_REMOVAL_GUIDANCE,
        UNDER_18_GUIDANCE,
    )

    for slug in [*BASE_NEXT_STEPS, CANCEL_PAYMENT_GUIDANCE, IMAGES_REMOVAL_GUIDANCE, UNDER_18_GUIDANCE]:
        assert client.get(f"/v1/guidance/{slug}").status_code == 200, slug


def test_under_18_section_points_to_ceop(client):
    body = client.get("/v1/guidance/under-18").json()["body"]
    assert "CEOP" in body and "ceop.police.uk" in body


def test_audience_filter_keeps_only_what_is_written_for_that_audience(client):
    parents = client.get("/v1/guidance", params={"audience": "parent"}).json()
    adults = client.get("/v1/guidance", params={"audience": "adult"}).json()
    assert "for-parents-and-carers" in {s["slug"] for s in parents}
    assert "for-parents-and-carers" not in {s["slug"] for s in adults}
    assert all("parent" in s["audiences"] for s in parents)


def test_unknown_audience_is_a_422_naming_the_parameter(client):
    response = client.get("/v1/guidance", params={"audience": "aliens"})
    assert response.status_code == 422
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["errors"][0]["field"] == "audience"


def test_unknown_section_is_a_problem_404(client):
    response = client.get("/v1/guidance/no-such-thing")
    assert response.status_code == 404
    assert response.json()["status"] == 404


def test_support_services_are_data_with_childline_not_the_bullying_helpline(client):
    services = client.get("/v1/support-services").json()
    by_phone = {service["phone"]: service for service in services if service["phone"]}
    assert by_phone["0800 1111"]["name"] == "Childline"
    assert all(set(s) >= {"name", "phone", "url", "audiences", "description"} for s in services)
    under_18 = client.get("/v1/support-services", params={"audience": "under-18"}).json()
    names = {s["name"] for s in under_18}
    assert "Childline" in names and any("CEOP" in name for name in names)
    assert "Revenge Porn Helpline" not in names


def test_if_none_match_with_the_current_etag_gets_304(client):
    first = client.get("/v1/support-services")
    etag = first.headers["etag"]
    assert "max-age" in first.headers["cache-control"]
    again = client.get("/v1/support-services", headers={"If-None-Match": etag})
    assert again.status_code == 304
    assert again.content == b""
    assert client.get("/v1/support-services", headers={"If-None-Match": '"stale"'}).status_code == 200
    filtered = client.get("/v1/support-services", params={"audience": "parent"})
    assert filtered.headers["etag"] != etag


def test_a_deployment_overrides_sections_and_helplines_without_code(tmp_path: Path):
    (tmp_path / "guidance").mkdir()
    (tmp_path / "guidance" / "report-it.md").write_text(
        "---\nslug: report-it\ntitle: Report it to Testshire Police\nsummary: Call 101.\n"
        "audiences: [adult]\nupdated_at: 2026-11-01\n---\nCall Testshire Police on 101.\n"
    )
    (tmp_path / "support-services.yaml").write_text(
        "- slug: supporting-victims\n  disabled: true\n"
        "- slug: childline\n  description: Overridden description.\n"
        "- slug: testshire-victim-care\n  name: Testshire Victim Care\n  phone: '01234 567890'\n"
        "  url: https://victims.example.org/\n  audiences: [adult]\n  description: Local support.\n"
    )
    overridden = Settings(data_dir=tmp_path / "var", content_dir=tmp_path)
    with app_client(overridden, migrate=False, raise_server_exceptions=True) as local:
        assert local.get("/v1/guidance/report-it").json()["title"] == "Report it to Testshire Police"
        assert local.get("/v1/guidance/dont-pay").status_code == 200  # the rest stays
        services = {s["slug"]: s for s in local.get("/v1/support-services").json()}
    assert "supporting-victims" not in services
    assert services["childline"]["description"] == "Overridden description."
    assert services["childline"]["phone"] == "0800 1111"
    assert services["testshire-victim-care"]["name"] == "Testshire Victim Care"
