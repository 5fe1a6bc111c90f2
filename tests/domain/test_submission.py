"""What a new report is checked against beyond its own fields: today's date (dates of birth), the
deployment's police forces, and amounts written the ways people write them."""

from __future__ import annotations

from datetime import date

import pytest
from pydantic import ValidationError

from service.domain.cases import CaseSubmission, SubmissionRules, parse_submission
from service.storage.content import load_content

TODAY = date(2026, 11, 25)
RULES = SubmissionRules(police_forces=load_content().police_forces, today=TODAY)


def report(**fields) -> dict:
    return {"reporter": {"relationship": "self"}, "account": "synthetic", **fields}


def messages(data: dict) -> dict[str, str]:
    with pytest.raises(ValidationError) as refused:
        parse_submission(data, RULES)
    return {".".join(str(part) for part in error["loc"]): error["msg"] for error in refused.value.errors()}


@pytest.mark.parametrize(
    ("born", "message"),
    [
        ("2026-11-26", "The date of birth is in the future. Check the day, month and year."),
        ("2099-01-01", "The date of birth is in the future. Check the day, month and year."),
        ("1906-11-24", "The date of birth is more than 120 years ago. Check the year."),
        ("1066-10-14", "The date of birth is more than 120 years ago. Check the year."),
    ],
)
def test_a_date_of_birth_in_the_future_or_over_120_years_ago_is_refused(born, message):
    assert messages(report(victim={"date_of_birth": born})) == {"victim.date_of_birth": f"Value error, {message}"}


@pytest.mark.parametrize("born", ["2026-11-25", "1906-11-25", "2010-04-23"])
def test_a_date_of_birth_from_today_back_to_120_years_is_accepted(born):
    assert parse_submission(report(victim={"date_of_birth": born}), RULES).victim.date_of_birth == date.fromisoformat(
        born
    )


def test_a_stored_report_reads_back_without_the_rules_whatever_the_date():
    # Read models accept what was valid when written: a removed force, or a clock that has moved on.
    stored = CaseSubmission.model_validate(report(victim={"date_of_birth": "2026-11-26"}, police_force="old-force"))
    assert stored.police_force == "old-force"


def test_an_unknown_police_force_is_refused_with_the_closest_ones():
    assert messages(report(police_force="north-yorks")) == {
        "police_force": "Value error, There is no police force 'north-yorks'. Did you mean north-yorkshire "
        "(North Yorkshire Police), south-yorkshire (South Yorkshire Police) or north-wales (North Wales Police)?"
    }
    assert parse_submission(report(police_force="north-yorkshire"), RULES).police_force == "north-yorkshire"


@pytest.mark.parametrize(
    ("payment", "amount", "currency"),
    [
        ({"amount": 100}, "100", None),
        ({"amount": 99.5}, "99.5", None),
        ({"amount": "100"}, "100", None),
        ({"amount": "£100", "currency": None}, "100", "GBP"),
        ({"amount": "£100"}, "100", "GBP"),
        ({"amount": "100 GBP"}, "100", "GBP"),
        ({"amount": "€1,250.50"}, "1250.50", "EUR"),
        ({"amount": "£100", "currency": "gbp"}, "100", "GBP"),
        ({"amount": "$100"}, "100", None),  # the dollar is too many currencies to pick one
        ({"amount": "$100", "currency": "USD"}, "100", "USD"),
        ({"amount": "100", "currency": "USD"}, "100", "USD"),
    ],
)
def test_an_amount_is_a_json_number_or_text_with_its_currency_read_the_same_way_every_time(payment, amount, currency):
    stored = parse_submission(report(payments=[payment]), RULES).payments[0]
    assert (stored.amount, stored.currency) == (amount, currency)


@pytest.mark.parametrize(
    ("payment", "field", "message"),
    [
        ({"amount": "£100", "currency": "USD"}, "payments.0", "The amount is written in GBP but the currency says USD"),
        ({"amount": "lots"}, "payments.0.amount", "Give the amount as a number, like 250 or 250.00."),
        ({"amount": "-5"}, "payments.0.amount", "Give the amount as a positive number"),
        ({"amount": True}, "payments.0.amount", "Give the amount as a number"),
        ({"amount": "£100 GBP"}, "payments.0.amount", "Give the amount as a number"),
    ],
)
def test_an_amount_that_is_not_money_or_disagrees_with_its_currency_is_refused(payment, field, message):
    found = messages(report(payments=[payment]))
    assert list(found) == [field]
    assert message in found[field]
