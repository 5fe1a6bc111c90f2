"""One definition of a case: the form schema in the spec, the report page's questions and their options
all come from the domain model, so a field added there reaches each of them (and none can drift)."""

from __future__ import annotations

from service.api.form_questions import CONTACT_QUESTIONS, field_type, report_questions
from service.app import case_form_schema
from service.domain.cases import CHOICE_LABELS, AgeBand, CaseSubmission, Collected, PaymentMethod, Relationship, choices
from service.domain.identifiers import IdentifierType
from tests.support.http import bearer


def test_every_field_of_the_case_is_in_the_form_schema_under_its_form_name():
    properties = case_form_schema()["properties"]
    for name in CaseSubmission.model_fields:
        if name not in ("reporter", "victim", "payments", "identifiers"):
            assert name in properties, name
    assert {"reporter.relationship", "reporter.safe_to_contact", "victim.date_of_birth", "payment.collected"} <= set(
        properties
    )
    assert {kind.value for kind in IdentifierType} <= set(properties)
    assert case_form_schema()["required"] == ["reporter.relationship", "account"]
    # Constraints come from the model: the same limits as the JSON body.
    assert properties["account"]["maxLength"] == CaseSubmission.model_fields["account"].metadata[-1].max_length
    assert properties["payment.collected"]["anyOf"][0]["enum"] == ["yes", "no", "unknown"]


def test_every_form_name_in_the_schema_is_one_the_api_accepts(client, keys):
    form = case_form_schema()
    for name in set(form["properties"]) - set(form["required"]):
        answer = client.post(
            "/v1/cases",
            data={"reporter.relationship": "self", "account": "Synthetic.", name: ""},
            headers=bearer(keys.submitter),
        )
        assert answer.status_code == 201, (name, answer.text)


def test_every_question_on_the_page_is_a_field_of_the_form_schema_with_its_options_from_the_model():
    properties = case_form_schema()["properties"]
    questions = report_questions(ask_police_force=True) + CONTACT_QUESTIONS
    assert [q.name for q in questions if q.name not in properties] == []
    by_name = {question.name: question for question in questions}
    assert by_name["payment.collected"].options == [
        ("yes", "Yes, it has been collected"),
        ("no", "No, not yet"),
        ("unknown", "I don't know"),
    ]
    assert [value for value, _ in by_name["victim.age_band"].options] == [band.value for band in AgeBand]
    assert by_name["payment.method"].widget == "select" and by_name["reporter.relationship"].widget == "radios"
    assert by_name["victim.date_of_birth"].widget == "date" and by_name["feels_unsafe"].widget == "checkbox"
    assert by_name["account"].widget == by_name["threats"].widget == "textarea"
    assert field_type("payment.collected") is Collected


def test_every_choice_has_a_label_for_every_option():
    for kind in (Relationship, AgeBand, PaymentMethod, Collected, *CHOICE_LABELS):
        assert [value for value, _ in choices(kind)] == [member.value for member in kind]
        assert all(label.strip() for _, label in choices(kind))
