"""Which reports need someone now, and which advice fits each one.

Every flag carries its reason in words, because an analyst triaging fifty reports needs to see
at a glance why this one is urgent, and a victim's next steps follow from the same facts.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from enum import IntEnum, StrEnum

from service.domain.cases import AgeBand, CaseSubmission, Collected, PaymentMethod, StoredSubmission


class Priority(IntEnum):
    normal = 0
    high = 1
    urgent = 2


class FlagCode(StrEnum):
    under_18 = "under_18"
    self_harm_risk = "self_harm_risk"
    payment_recallable = "payment_recallable"
    deadline_imminent = "deadline_imminent"
    images_released = "images_released"
    repeat_identifier = "repeat_identifier"
    already_paid = "already_paid"
    images_fake_or_ai = "images_fake_or_ai"


@dataclass(frozen=True)
class Flag:
    code: FlagCode
    reason: str
    priority: Priority


@dataclass(frozen=True)
class UrgencyPolicy:
    """Time windows that are policy, not law: deployments set them."""

    recall_window: timedelta = timedelta(days=30)
    deadline_window: timedelta = timedelta(hours=72)


@dataclass(frozen=True)
class Urgency:
    priority: Priority
    flags: list[Flag]
    next_steps: list[str]


@dataclass(frozen=True)
class CaseFacts:
    """What urgency depends on: the submission (as sent, or as stored and read back), plus what
    storage knows about other cases."""

    submission: CaseSubmission | StoredSubmission
    shared_identifiers: list[str] = field(default_factory=list)  # normalized values seen elsewhere
    # The kept fact for a stored case (see `victim_was_under_18`); None for a report being made now.
    victim_was_under_18: bool | None = None


# Guidance slugs, in the order a calm person would read them.
BASE_NEXT_STEPS = [
    "dont-panic",
    "stop-communicating",
    "dont-pay",
    "preserve-evidence",
    "what-to-save",
    "report-it",
    "support-services",
]
UNDER_18_GUIDANCE = "under-18"
CANCEL_PAYMENT_GUIDANCE = "cancel-a-payment"
IMAGES_REMOVAL_GUIDANCE = "getting-images-removed"
FAKE_IMAGES_GUIDANCE = "fake-or-ai-images"
SUPPORT_GUIDANCE = "support-services"

_UNDER_18_BANDS = {AgeBand.under_13, AgeBand.age_13_15, AgeBand.age_16_17}
# Money sent by these can still be stopped or reversed while it is uncollected or pending.
_RECALLABLE_METHODS = {
    PaymentMethod.western_union,
    PaymentMethod.moneygram,
    PaymentMethod.bank_transfer,
    PaymentMethod.paypal,
    PaymentMethod.gift_card,
    PaymentMethod.other,
    None,
}


def age_on(born: date, today: date) -> int:
    return today.year - born.year - ((today.month, today.day) < (born.month, born.day))


def is_under_18(submission: CaseSubmission | StoredSubmission, today: date) -> bool:
    """Under 18 by any of age, age band or date of birth: safeguarding errs towards the child."""
    victim = submission.victim
    if victim is None:
        return False
    by_age = victim.age is not None and victim.age < 18
    by_band = victim.age_band in _UNDER_18_BANDS
    by_birth = victim.date_of_birth is not None and age_on(victim.date_of_birth, today) < 18
    return by_age or by_band or by_birth


def victim_was_under_18(submission: CaseSubmission, at: datetime, *, already: bool = False) -> bool:
    """Whether the victim was a child, from their age when the report (or a piece of evidence) came in.

    Kept as a fact once true: a birthday after the report never lifts the child's protection, and
    nobody (an offender reporting their own identifier included) can make it be decided again later.
    """
    return already or is_under_18(submission, at.date())


def flag_urgency(facts: CaseFacts, now: datetime, policy: UrgencyPolicy | None = None) -> Urgency:
    """Priority, flags with reasons, and the guidance slugs that fit, for a case at time `now`."""
    policy = policy or UrgencyPolicy()
    submission = facts.submission
    flags: list[Flag] = []

    was_child = facts.victim_was_under_18
    if was_child is None:  # a report being made now
        was_child = victim_was_under_18(submission, now)
    if was_child:
        flags.append(
            Flag(
                FlagCode.under_18,
                "The victim is under 18: this is child sexual exploitation and needs a safeguarding "
                "response now; CEOP can also take the report.",
                Priority.urgent,
            )
        )
    if submission.feels_unsafe:
        flags.append(
            Flag(
                FlagCode.self_harm_risk,
                "The reporter says the victim feels unsafe or is thinking of harming themselves: "
                "contact them and share support services straight away.",
                Priority.urgent,
            )
        )
    recallable = [payment for payment in submission.payments if _may_be_recalled(payment, now, policy)]
    if recallable:
        flags.append(
            Flag(
                FlagCode.payment_recallable,
                f"{len(recallable)} payment(s) sent recently may not have been collected yet: the "
                "victim should ask the provider to cancel the transfer now.",
                Priority.high,
            )
        )
    if submission.payments:
        flags.append(
            Flag(
                FlagCode.already_paid,
                "The victim has already paid; people who pay are often asked for more.",
                Priority.high,
            )
        )
    if submission.deadline_at is not None and submission.deadline_at <= now + policy.deadline_window:
        when = (
            "has passed"
            if submission.deadline_at <= now
            else "is less than " + _hours(policy.deadline_window) + " away"
        )
        flags.append(
            Flag(
                FlagCode.deadline_imminent,
                f"The deadline the offender gave {when}.",
                Priority.high,
            )
        )
    if submission.images_shared:
        flags.append(
            Flag(
                FlagCode.images_released,
                "Images have already been sent to others: help to get them taken down is needed.",
                Priority.high,
            )
        )
    if submission.images_fake_or_ai:
        flags.append(
            Flag(
                FlagCode.images_fake_or_ai,
                "The reporter says the images of the victim are fake or edited (possibly made with AI): it is "
                "still blackmail, and for an under-18 a child sexual abuse image; they can be removed like real ones.",
                Priority.normal,
            )
        )
    if facts.shared_identifiers:
        flags.append(
            Flag(
                FlagCode.repeat_identifier,
                f"{len(facts.shared_identifiers)} identifier(s) in this report were already seen in other "
                "cases: the same offender may be behind them.",
                Priority.high,
            )
        )

    priority = max((flag.priority for flag in flags), default=Priority.normal)
    return Urgency(priority=priority, flags=flags, next_steps=_next_steps({flag.code for flag in flags}))


# Facts about other cases: an analyst's to link, never told to whoever sent the report, or an
# offender could report their own MTCN to learn whether a victim already has.
CROSS_CASE_FLAGS = frozenset({FlagCode.repeat_identifier})


def as_told_to_reporter(urgency: Urgency) -> Urgency:
    """What a submitter, a website or a reporter learns about their own report: its own flags, and
    the priority and next steps those alone give."""
    own = [flag for flag in urgency.flags if flag.code not in CROSS_CASE_FLAGS]
    priority = max((flag.priority for flag in own), default=Priority.normal)
    return Urgency(priority=priority, flags=own, next_steps=_next_steps({flag.code for flag in own}))


def _may_be_recalled(payment, now: datetime, policy: UrgencyPolicy) -> bool:
    # Not answered is the same as "don't know": only a "yes" rules the recall out. Calling the transfer
    # company costs nothing if the money is gone; not calling costs the money if it is not.
    if payment.collected is Collected.yes:
        return False
    if payment.method not in _RECALLABLE_METHODS:
        return False
    # With no date given, assume recent: asking the provider costs nothing, missing it costs money.
    return payment.paid_at is None or now - payment.paid_at <= policy.recall_window


def _next_steps(codes: set[FlagCode]) -> list[str]:
    first: list[str] = []
    if FlagCode.self_harm_risk in codes:
        first.append(SUPPORT_GUIDANCE)
    if FlagCode.under_18 in codes:
        first.append(UNDER_18_GUIDANCE)
    if FlagCode.payment_recallable in codes:
        first.append(CANCEL_PAYMENT_GUIDANCE)
    if FlagCode.images_fake_or_ai in codes:
        first.append(FAKE_IMAGES_GUIDANCE)
    if FlagCode.images_released in codes or FlagCode.images_fake_or_ai in codes:
        first.append(IMAGES_REMOVAL_GUIDANCE)
    return first + [slug for slug in BASE_NEXT_STEPS if slug not in first]


def _hours(window: timedelta) -> str:
    hours = int(window.total_seconds() // 3600)
    return f"{hours} hours"
