"""One definition of a case: the form schema in the spec, the report page's questions and their options
all come from the domain model, so a field added there reaches each of them (and none can drift)."""

from __future__ import annotations

import json
import typing
from datetime import date, datetime
from enum import StrEnum

import jsonschema
import pytest
from pydantic import BaseModel

from service.api.form_fields import FORM_FIELDS, bare_type, case_from_form_fields, derive_form_fields
from service.api.form_questions import (
    CONTACT_QUESTIONS,
    NOT_ASKED_ON_THE_PAGE,
    field_type,
    identifier_questions,
    report_questions,
)
from service.app import case_form_schema
from service.domain.cases import (
    CHOICE_LABELS,
    AgeBand,
    CaseSubmission,
    Collected,
    PaymentMethod,
    Relationship,
    SubmissionRules,
    choices,
    parse_submission,
)
from service.domain.identifiers import IdentifierType
from service.storage.content import load_content
from tests.support.apps import PROJECT_ROOT
from tests.support.http import bearer
from tests.support.identifiers import VALID as VALID_IDENTIFIERS


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


def leaves(model: type[BaseModel], path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """Every field of the model that holds a value, as a path through nested models and list items."""
    found = []
    for name, info in model.model_fields.items():
        kind = bare_type(info.annotation)
        if typing.get_origin(kind) is list:
            kind = bare_type(typing.get_args(kind)[0])
        if isinstance(kind, type) and issubclass(kind, BaseModel):
            found += leaves(kind, (*path, name))
        else:
            found.append((*path, name))
    return found


# Values the model's own validators accept, for the text fields that check what they hold.
VALID_TEXT = {
    "reporter.email": "reporter@example.org",
    "reporter.phone": "+44 20 7946 0123",
    "police_force": "north-yorkshire",
    "payment.amount": "150",
    "payment.currency": "GBP",
    "mtcn": "1234567890",
    "moneygram_reference": "12345678",
    "skype_id": "live:.cid.1a2b3c4d5e6f",
    "skype_name": "Synthetic Name",
    "profile_url": "https://www.instagram.com/synthetic.offender",
    "email": "offender@example.org",
    "phone": "+44 20 7946 0124",
    "crypto_wallet": "bc1qar0srrr7xfkvy5l643lydnw9re59gtzzwf5mdq",
    "username": "synthetic_offender",
}


def a_valid_value(field) -> str:
    kind = bare_type(field.info.annotation)
    if typing.get_origin(kind) is list:
        kind = bare_type(typing.get_args(kind)[0])
    if field.name in VALID_TEXT:
        return VALID_TEXT[field.name]
    if isinstance(kind, type) and issubclass(kind, StrEnum):
        return list(kind)[0].value
    return {bool: "true", int: "15", date: "2010-04-23", datetime: "2026-11-20T18:30"}.get(kind, "Synthetic text")


def value_at(submission: BaseModel, path: tuple[str, ...]) -> object:
    value: object = submission
    for step in path:
        value = getattr(value, step)
        if isinstance(value, list):
            value = value[0] if value else None
    return value


def test_every_field_of_the_case_is_reachable_from_a_form_through_the_derived_mapping():
    """Each form name, sent with a valid value, lands in the model field it is derived from, and every
    field of the model (nested and in lists) has a form name: nothing is hand-listed in between."""
    rules = SubmissionRules(police_forces=load_content(None).police_forces, today=date(2026, 11, 27))
    reached = set()
    for field in FORM_FIELDS:
        sent = {"reporter.relationship": "other", "account": "Synthetic account."}
        if field.named_by is not None and field.name != field.named_by[1]:  # a detail needs its item
            sent[field.named_by[1]] = VALID_TEXT[field.named_by[1]]
        if field.name == "username":  # a username means nothing without the platform it is on
            sent["username.platform"] = "Instagram"
        sent = [*sent.items(), (field.name, a_valid_value(field))] if field.name not in sent else list(sent.items())
        submission = parse_submission(case_from_form_fields(sent), rules)
        landed = value_at(submission, field.path)
        assert landed not in (None, [], ""), (field.name, sent)
        reached.add(field.path)
        if field.named_by is not None:
            reached.add((field.path[0], field.named_by[0]))
    assert set(leaves(CaseSubmission)) - reached == set()


def test_a_field_added_to_the_model_gets_a_form_name_with_no_other_change():
    class Pet(BaseModel):
        name: str | None = None

    class ExtendedCase(CaseSubmission):
        synthetic_note: str | None = None
        pet: Pet | None = None

    names = [field.name for field in derive_form_fields(ExtendedCase)]
    assert names == [field.name for field in FORM_FIELDS] + ["synthetic_note", "pet.name"]


def test_the_spec_form_schema_is_the_one_derived_from_the_model():
    spec = json.loads((PROJECT_ROOT / "openapi" / "openapi.json").read_text())["components"]["schemas"]
    names = [field.name for field in FORM_FIELDS]
    assert list(spec["CaseForm"]["properties"]) == list(case_form_schema()["properties"]) == names
    assert list(spec["CaseFormWithFiles"]["properties"]) == [*names, "evidence"]
    assert spec["CaseForm"]["required"] == case_form_schema()["required"]


def test_every_form_field_is_asked_on_the_page_or_named_as_not_asked():
    asked = [question.name for question in report_questions(ask_police_force=True) + CONTACT_QUESTIONS]
    names = {field.name for field in FORM_FIELDS}
    assert len(asked) == len(set(asked))
    assert set(asked) & set(NOT_ASKED_ON_THE_PAGE) == set()
    assert set(asked) | set(NOT_ASKED_ON_THE_PAGE) == names
    assert all(reason.strip() for reason in NOT_ASKED_ON_THE_PAGE.values())


@pytest.mark.parametrize("name", ["mtcn", "username", "username.platform", "profile_url"])
def test_the_status_page_asks_for_offender_details_with_the_report_pages_own_questions(name):
    on_report_page = {q.name: q for q in report_questions(ask_police_force=True)}
    on_status_page = {q.name: q for q in identifier_questions()}
    assert (on_status_page[name].label, on_status_page[name].hint) == (
        on_report_page[name].label,
        on_report_page[name].hint,
    )


def test_the_pages_take_every_option_list_from_the_questions_and_none_from_a_field_name_in_a_template():
    forces = (("north-yorkshire", "North Yorkshire Police"), ("police-scotland", "Police Scotland"))
    by_name = {q.name: q for q in report_questions(ask_police_force=True, police_forces=forces)}
    assert by_name["police_force"].widget == "select" and by_name["police_force"].options == list(forces)
    assert by_name["payment.method"].options == choices(PaymentMethod)
    templates = PROJECT_ROOT / "service" / "templates"
    for template in templates.glob("*.html"):
        assert "q.name ==" not in template.read_text(), template.name


@pytest.mark.parametrize("name", [field.name for field in FORM_FIELDS if field.repeated])
def test_a_repeated_field_sent_once_is_text_in_the_schema_as_on_the_wire(client, keys, name):
    # `email.platform=x` is the same bytes as a list of one; the spec had only the list, so a fuzzer
    # sending the text was told the service accepted what the spec forbids (seed 2918980159090391900).
    kind = name.partition(".")[0]
    valid = {kind: (value, platform) for kind, value, platform, *_ in reversed(VALID_IDENTIFIERS)}
    value, platform = valid.get(kind, ("instagram", None))
    identifier = {kind: value, f"{kind}.platform": platform or "instagram"} if kind in valid else {}
    form = {"reporter.relationship": "self", "account": "Synthetic.", **identifier, name: identifier.get(name, value)}
    schema = case_form_schema()
    jsonschema.validate(form, schema)
    jsonschema.validate({**form, name: [value, value]}, schema)
    with pytest.raises(jsonschema.ValidationError):
        jsonschema.validate({**form, name: 12}, schema)
    answer = client.post("/v1/cases", data=form, headers=bearer(keys.submitter))
    assert answer.status_code == 201, answer.text
