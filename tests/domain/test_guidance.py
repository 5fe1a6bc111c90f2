"""Which advice and helplines each audience sees, and what a section or helpline must hold."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pydantic import ValidationError

from service.domain.guidance import Audience, GuidanceSection, SupportService, for_audience


def section(slug: str, *audiences: str) -> GuidanceSection:
    return GuidanceSection(
        slug=slug,
        title=slug.replace("-", " ").capitalize(),
        summary="Synthetic summary.",
        body="Synthetic body.",
        audiences=list(audiences),
        updated_at=date(2026, 11, 1),
    )


SECTIONS = [
    section("dont-panic", "adult", "under-18", "parent"),
    section("under-18", "under-18", "parent"),
    section("cancel-a-payment", "adult"),
    section("talking-to-your-child", "parent"),
]


@pytest.mark.parametrize(
    ("audience", "slugs"),
    [
        (None, ["dont-panic", "under-18", "cancel-a-payment", "talking-to-your-child"]),
        (Audience.adult, ["dont-panic", "cancel-a-payment"]),
        (Audience.under_18, ["dont-panic", "under-18"]),
        (Audience.parent, ["dont-panic", "under-18", "talking-to-your-child"]),
    ],
)
def test_each_audience_sees_what_is_written_for_it_in_the_same_order(audience, slugs):
    assert [item.slug for item in for_audience(SECTIONS, audience)] == slugs


def test_helplines_are_chosen_the_same_way():
    childline = SupportService(
        slug="childline", name="Childline", phone="0800 1111", audiences=["under-18"], description="Synthetic."
    )
    victim_care = SupportService(
        slug="victim-care", name="Victim Care", url="https://victims.example.org/", audiences=["adult"], description="."
    )
    assert for_audience([childline, victim_care], Audience.under_18) == [childline]
    assert for_audience([childline, victim_care], Audience.adult) == [victim_care]
    assert for_audience([], Audience.parent) == []


def test_with_no_audience_the_caller_gets_a_copy_not_the_list_itself():
    everything = for_audience(SECTIONS, None)
    assert everything == SECTIONS and everything is not SECTIONS


@given(
    st.lists(st.sets(st.sampled_from(Audience), max_size=3), max_size=8),
    st.one_of(st.none(), st.sampled_from(Audience)),
)
def test_an_item_is_shown_exactly_when_it_is_for_that_audience(audience_sets, audience):
    items = [section(f"section-{n}", *sorted(audiences)) for n, audiences in enumerate(audience_sets)]
    shown = for_audience(items, audience)
    assert shown == [item for item in items if audience is None or audience in item.audiences]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("slug", "Dont Pay"),
        ("slug", "dont--pay"),
        ("slug", "-dont-pay"),
        ("audiences", ["everyone"]),
        ("updated_at", "yesterday"),
        ("colour", "blue"),
    ],
)
def test_a_section_with_a_bad_field_is_refused_by_name(field, value):
    fields = {
        "slug": "dont-pay",
        "title": "Don't pay",
        "summary": "s",
        "body": "b",
        "audiences": ["adult"],
        "updated_at": "2026-11-01",
    }
    with pytest.raises(ValidationError) as refused:
        GuidanceSection.model_validate({**fields, field: value})
    assert [error["loc"][0] for error in refused.value.errors()] == [field]
