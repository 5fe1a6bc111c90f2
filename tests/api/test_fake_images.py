"""images_fake_or_ai: the reporter says the images are fake or edited (AI-made from an ordinary photo):
flagged with its reason, with the guidance that fits, from the API and from the report form."""

from __future__ import annotations

from tests.support.apps import app_client
from tests.support.database import query_rows
from tests.support.http import bearer
from tests.support.report_form import MINIMAL, form_settings, form_token, send


def test_a_report_of_fake_images_is_flagged_with_guidance_and_kept(client, keys, new_case):
    created = new_case(images_fake_or_ai=True, victim={"age": 15})
    assert "images_fake_or_ai" in [flag["code"] for flag in created["flags"]]
    assert {"fake-or-ai-images", "getting-images-removed", "under-18"} <= set(created["next_steps"])
    case = client.get(f"/v1/cases/{created['reference']}", headers=bearer(keys.analyst)).json()
    flag = next(flag for flag in case["flags"] if flag["code"] == "images_fake_or_ai")
    assert "fake or edited" in flag["reason"]
    assert case["submission"]["images_fake_or_ai"] is True
    listed = client.get("/v1/cases", params={"flag": "images_fake_or_ai"}, headers=bearer(keys.analyst)).json()
    assert created["reference"] in [item["reference"] for item in listed["cases"]]


def test_the_guidance_says_it_is_still_a_crime_and_how_to_get_images_removed(client):
    section = client.get("/v1/guidance/fake-or-ai-images").json()
    assert "still a crime" in section["body"] and "Take It Down" in section["body"]
    assert "Report" in section["body"] and "under-18" in section["audiences"]


def test_the_field_must_be_true_or_false(client, keys):
    response = client.post(
        "/v1/cases",
        headers=bearer(keys.submitter),
        json={"reporter": {"relationship": "self"}, "account": "Synthetic.", "images_fake_or_ai": "maybe"},
    )
    assert response.status_code == 422
    assert [error["field"] for error in response.json()["errors"]] == ["images_fake_or_ai"]


def test_the_report_form_asks_and_the_answer_lands_on_the_case(tmp_path):
    with app_client(form_settings(tmp_path)) as browser:
        page = browser.get("/report").text
        assert 'name="images_fake_or_ai"' in page
        sent = send(browser, form_token(page), {**MINIMAL, "images_fake_or_ai": "true"})
        assert sent.status_code == 303, sent.text
        assert "fake" in browser.get(sent.headers["location"]).text.lower()
        flags = [row.code for row in query_rows(browser.app.state.engine, "SELECT code FROM case_flag")]
    assert flags == ["images_fake_or_ai"]
