"""A stored submission read back leniently decides urgency exactly as the submission did when it was
sent, and what today's input rules would refuse is read as absent rather than refused."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from service.domain.cases import CaseSubmission, StoredSubmission
from service.domain.urgency import CaseFacts, flag_urgency

NOW = datetime(2026, 11, 25, 12, 0, tzinfo=UTC)
REPORT = {"reporter": {"relationship": "self"}, "account": "synthetic"}

SUBMISSIONS = [
    {},
    {"victim": {"age": 15}},
    {"victim": {"age_band": "16_17"}},
    {"victim": {"date_of_birth": "2010-03-01"}},
    {"feels_unsafe": True},
    {"images_shared": True},
    {"images_fake_or_ai": True},
    {"deadline_at": "2026-11-26T09:00:00Z"},
    {"payments": [{"amount": "100", "currency": "GBP", "method": "western_union", "collected": "no"}]},
    {"payments": [{"amount": "50", "method": "crypto", "paid_at": "2026-11-20T10:00:00Z", "collected": "yes"}]},
]


@pytest.mark.parametrize("fields", SUBMISSIONS)
def test_a_stored_submission_decides_urgency_as_the_one_sent(fields):
    sent = CaseSubmission.model_validate({**REPORT, **fields})
    stored = StoredSubmission.model_validate(sent.model_dump(mode="json", exclude_none=True, exclude_defaults=True))
    as_sent = flag_urgency(CaseFacts(sent, ["1234567890"]), NOW)
    as_stored = flag_urgency(CaseFacts(stored, ["1234567890"]), NOW)
    assert as_stored == as_sent


def test_what_todays_rules_refuse_is_read_as_absent():
    stored = StoredSubmission.model_validate(
        {
            **REPORT,
            "legacy_field": "kept by an older version",
            "victim": {"age": "fifteen", "age_band": "13_15"},
            "feels_unsafe": "perhaps",
            "payments": [{"method": "carrier_pigeon", "collected": "no", "paid_at": "last week"}],
        }
    )
    assert stored.victim is not None and stored.victim.age is None and stored.victim.age_band.value == "13_15"
    assert stored.feels_unsafe is None
    assert [(payment.method, payment.collected.value, payment.paid_at) for payment in stored.payments] == [
        (None, "no", None)
    ]
