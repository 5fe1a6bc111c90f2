"""Urgency rules: each flag from the facts that raise it, with the clock handed in."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from service.domain.cases import CaseSubmission
from service.domain.urgency import (
    BASE_NEXT_STEPS,
    CaseFacts,
    Priority,
    UrgencyPolicy,
    age_on,
    as_told_to_reporter,
    flag_urgency,
    victim_was_under_18,
)

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)


def case(**fields) -> CaseSubmission:
    return CaseSubmission.model_validate({"reporter": {"relationship": "self"}, "account": "synthetic", **fields})


def urgency_of(submission: CaseSubmission, shared: list[str] | None = None):
    return flag_urgency(CaseFacts(submission, shared_identifiers=shared or []), NOW)


def codes(urgency) -> list[str]:
    return [flag.code for flag in urgency.flags]


TABLE = [
    # what the report says, expected flags, expected priority
    ({}, [], Priority.normal),
    ({"victim": {"age": 15}}, ["under_18"], Priority.urgent),
    ({"victim": {"age": 18}}, [], Priority.normal),
    ({"victim": {"age_band": "under_13"}}, ["under_18"], Priority.urgent),
    ({"victim": {"age_band": "16_17"}}, ["under_18"], Priority.urgent),
    ({"victim": {"age_band": "18_24"}}, [], Priority.normal),
    ({"victim": {"date_of_birth": "2008-11-26"}}, ["under_18"], Priority.urgent),  # 18 tomorrow
    ({"victim": {"date_of_birth": "2008-11-25"}}, [], Priority.normal),  # 18 today
    ({"feels_unsafe": True}, ["self_harm_risk"], Priority.urgent),
    ({"feels_unsafe": False}, [], Priority.normal),
    ({"images_shared": True}, ["images_released"], Priority.high),
    ({"deadline_at": (NOW + timedelta(hours=5)).isoformat()}, ["deadline_imminent"], Priority.high),
    ({"deadline_at": (NOW - timedelta(hours=5)).isoformat()}, ["deadline_imminent"], Priority.high),
    ({"deadline_at": (NOW + timedelta(days=10)).isoformat()}, [], Priority.normal),
    (
        {
            "payments": [
                {"method": "western_union", "collected": "no", "paid_at": (NOW - timedelta(days=1)).isoformat()}
            ]
        },
        ["payment_recallable", "already_paid"],
        Priority.high,
    ),
    (
        {"payments": [{"method": "moneygram", "collected": "unknown"}]},
        ["payment_recallable", "already_paid"],
        Priority.high,
    ),
    ({"payments": [{"method": "western_union", "collected": "yes"}]}, ["already_paid"], Priority.high),
    # Not answered is "don't know": a recent transfer may still be stopped (the form's MTCN case).
    (
        {"payments": [{"method": "western_union", "reference": "1234567890"}]},
        ["payment_recallable", "already_paid"],
        Priority.high,
    ),
    (
        {
            "payments": [
                {"method": "western_union", "collected": "unknown", "paid_at": (NOW - timedelta(days=2)).isoformat()}
            ]
        },
        ["payment_recallable", "already_paid"],
        Priority.high,
    ),
    (
        {
            "payments": [
                {"method": "western_union", "collected": "unknown", "paid_at": (NOW - timedelta(days=45)).isoformat()}
            ]
        },
        ["already_paid"],
        Priority.high,
    ),
    ({"payments": [{"method": "crypto", "collected": "no"}]}, ["already_paid"], Priority.high),
    (
        {
            "payments": [
                {"method": "bank_transfer", "collected": "no", "paid_at": (NOW - timedelta(days=60)).isoformat()}
            ]
        },
        ["already_paid"],
        Priority.high,
    ),
    (
        {"victim": {"age": 14}, "feels_unsafe": True, "images_shared": True},
        ["under_18", "self_harm_risk", "images_released"],
        Priority.urgent,
    ),
]


@pytest.mark.parametrize(("fields", "flags", "priority"), TABLE)
def test_flags_and_priority_follow_from_the_report(fields, flags, priority):
    urgency = urgency_of(case(**fields))
    assert codes(urgency) == flags
    assert urgency.priority is priority
    assert all(flag.reason for flag in urgency.flags)


def test_an_identifier_seen_in_another_case_flags_a_repeat():
    urgency = urgency_of(case(), shared=["1234567890"])
    assert codes(urgency) == ["repeat_identifier"]
    assert urgency.priority is Priority.high
    assert "1 identifier" in urgency.flags[0].reason


def test_self_harm_puts_support_services_first_then_ceop_for_a_child():
    steps = urgency_of(case(feels_unsafe=True, victim={"age": 13})).next_steps
    assert steps[:2] == ["support-services", "under-18"]
    assert steps.count("support-services") == 1


def test_a_recallable_payment_brings_the_cancel_advice_forward():
    steps = urgency_of(case(payments=[{"method": "western_union", "collected": "no"}])).next_steps
    assert steps[0] == "cancel-a-payment"


def test_released_images_bring_takedown_advice():
    assert "getting-images-removed" in urgency_of(case(images_shared=True)).next_steps


def test_a_plain_case_gets_the_police_advice_in_order():
    assert urgency_of(case()).next_steps == BASE_NEXT_STEPS


def test_policy_windows_are_settings_not_constants():
    submission = case(deadline_at=(NOW + timedelta(hours=100)).isoformat())
    assert codes(flag_urgency(CaseFacts(submission), NOW)) == []
    wider = UrgencyPolicy(deadline_window=timedelta(hours=120))
    assert codes(flag_urgency(CaseFacts(submission), NOW, wider)) == ["deadline_imminent"]


def test_a_local_time_without_offset_is_read_as_utc_and_compares_safely():
    urgency = urgency_of(case(deadline_at="2026-11-25T14:00"))
    assert codes(urgency) == ["deadline_imminent"]


@pytest.mark.parametrize(
    ("born", "today", "age"),
    [
        (date(2000, 1, 1), date(2026, 11, 25), 26),
        (date(2008, 11, 25), date(2026, 11, 25), 18),  # the birthday itself
        (date(2008, 11, 26), date(2026, 11, 25), 17),  # the day before it
        (date(2008, 12, 31), date(2026, 1, 1), 17),
        (date(2012, 2, 29), date(2030, 2, 28), 17),  # a leap-day birth is a year older on 1 March
        (date(2012, 2, 29), date(2030, 3, 1), 18),
        (date(2026, 11, 25), date(2026, 11, 25), 0),
    ],
)
def test_age_on_counts_whole_years_to_the_day(born, today, age):
    assert age_on(born, today) == age


# Born after this day, a victim is under 18 on NOW's date (2026-11-25).
LAST_18TH_BIRTHDAY = date(2008, 11, 25)


@given(born=st.dates(min_value=date(1920, 1, 1), max_value=date(2026, 11, 25)))
def test_a_date_of_birth_less_than_18_years_ago_flags_under_18(born):
    under = "under_18" in codes(urgency_of(case(victim={"date_of_birth": born.isoformat()})))
    assert under == (born > LAST_18TH_BIRTHDAY)


# What each flag weighs: urgent where a child or a life is at risk (API.md); fake images add advice, not haste.
FLAG_PRIORITY = {
    "under_18": Priority.urgent,
    "self_harm_risk": Priority.urgent,
    "payment_recallable": Priority.high,
    "already_paid": Priority.high,
    "deadline_imminent": Priority.high,
    "images_released": Priority.high,
    "repeat_identifier": Priority.high,
    "images_fake_or_ai": Priority.normal,
}


@given(
    age=st.integers(min_value=0, max_value=120),
    unsafe=st.booleans(),
    shared=st.booleans(),
    paid=st.booleans(),
)
def test_priority_is_the_highest_of_its_flags(age, unsafe, shared, paid):
    submission = case(
        victim={"age": age}, feels_unsafe=unsafe, payments=[{"method": "other", "collected": "no"}] if paid else []
    )
    urgency = urgency_of(submission, shared=["x"] if shared else [])
    raised = {
        "under_18": age < 18,
        "self_harm_risk": unsafe,
        "payment_recallable": paid,
        "already_paid": paid,
        "repeat_identifier": shared,
    }
    assert set(codes(urgency)) == {code for code, present in raised.items() if present}
    expected = max((FLAG_PRIORITY[code] for code, present in raised.items() if present), default=Priority.normal)
    assert urgency.priority is expected
    assert (urgency.priority is Priority.urgent) == (age < 18 or unsafe)


def test_a_childs_case_decided_again_after_the_birthday_keeps_under_18():
    submission = case(victim={"date_of_birth": "2008-11-26"})  # 17 on the day of the report
    was_child = victim_was_under_18(submission, NOW)
    assert was_child
    years_later = NOW + timedelta(days=3 * 365)
    assert not victim_was_under_18(submission, years_later)  # what the old re-decision saw
    again = flag_urgency(CaseFacts(submission, ["x"], victim_was_under_18=was_child), years_later)
    assert codes(again) == ["under_18", "repeat_identifier"] and again.priority is Priority.urgent
    assert victim_was_under_18(submission, years_later, already=True)


@given(shared=st.booleans(), unsafe=st.booleans(), age=st.integers(min_value=0, max_value=120))
def test_a_reporter_is_never_told_what_other_cases_hold(shared, unsafe, age):
    submission = case(victim={"age": age}, feels_unsafe=unsafe)
    told = as_told_to_reporter(urgency_of(submission, shared=["x"] if shared else []))
    assert told == urgency_of(submission)
    assert "repeat_identifier" not in codes(told)


def test_fake_or_ai_images_are_flagged_with_their_guidance_and_removal_help():
    urgency = urgency_of(case(images_fake_or_ai=True))
    assert codes(urgency) == ["images_fake_or_ai"]
    assert urgency.priority == Priority.normal
    assert "still blackmail" in urgency.flags[0].reason
    assert urgency.next_steps[:2] == ["fake-or-ai-images", "getting-images-removed"]
    assert codes(urgency_of(case(images_fake_or_ai=False))) == []


@pytest.mark.parametrize(("code", "priority"), FLAG_PRIORITY.items())
def test_each_flag_carries_its_own_priority(code, priority):
    raising = {
        "under_18": {"victim": {"age": 12}},
        "self_harm_risk": {"feels_unsafe": True},
        "payment_recallable": {"payments": [{"method": "western_union", "collected": "no"}]},
        "already_paid": {"payments": [{"method": "crypto", "collected": "yes"}]},
        "deadline_imminent": {"deadline_at": (NOW + timedelta(hours=1)).isoformat()},
        "images_released": {"images_shared": True},
        "repeat_identifier": {},
        "images_fake_or_ai": {"images_fake_or_ai": True},
    }[code]
    urgency = urgency_of(case(**raising), shared=["x"] if code == "repeat_identifier" else None)
    (flag,) = [flag for flag in urgency.flags if flag.code == code]
    assert flag.priority is priority
