"""What a report holds, as the victim (or someone for them) tells it.

Every field is optional except `account` and `reporter.relationship`: a frightened person must be
able to report with the least they can manage. Unknown fields are refused, never kept or dropped
silently, so a partner app's typo is caught at once instead of losing what the victim said.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal, InvalidOperation
from enum import StrEnum
from typing import Annotated

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    ValidationInfo,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic_core import PydanticCustomError

from service.domain.identifiers import (
    MAX_IDENTIFIER_LENGTH,
    IdentifierError,
    IdentifierType,
    NormalizedIdentifier,
    normalize_identifier,
)
from service.domain.police_forces import PoliceForces, UnknownPoliceForce

MAX_TEXT = 20_000
MAX_SHORT_TEXT = 200
MAX_LIST = 50
OLDEST_AGE = 120


@dataclass(frozen=True)
class SubmissionRules:
    """What checking new input needs beyond the input itself: the deployment's forces and today's date.

    Passed as pydantic's validation context. Stored submissions are read back without it, so a
    case filed under a force that a deployment later removed (or by a birthday) still reads.
    """

    police_forces: PoliceForces
    today: date


def _rules(info: ValidationInfo) -> SubmissionRules | None:
    return info.context.get("rules") if isinstance(info.context, dict) else None


ShortText = Annotated[str, Field(max_length=MAX_SHORT_TEXT)]


def _assume_utc(moment: datetime) -> datetime:
    # HTML forms send local times without an offset; without one we read UTC rather than fail.
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


_DATE_TIME_TEXT = re.compile(r"\d{4}-\d{2}-\d{2}[Tt ]\d{2}:\d{2}")


def _date_time_text_only(value: object) -> object:
    # Pydantic would also read numbers (and "0.5") as seconds since 1970, or a bare date as midnight:
    # neither is what a person meant, and neither is an RFC 3339 date-time as the API promises.
    if isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DATE_TIME_TEXT.match(value.strip()):
        raise PydanticCustomError("datetime_parsing", "Give a date and time like 2026-11-20T18:30:00Z.")
    return value


Moment = Annotated[datetime, BeforeValidator(_date_time_text_only), AfterValidator(_assume_utc)]


def _in_utc(moment: datetime) -> datetime:
    # Databases keep offsets within ±15:59 and Python within ±23:59: a search bound is compared in UTC.
    try:
        return _assume_utc(moment).astimezone(UTC)
    except OverflowError:
        raise ValueError("This date is out of range.") from None


SearchMoment = Annotated[datetime, BeforeValidator(_date_time_text_only), AfterValidator(_in_utc)]


NUL_MESSAGE = "This has a NUL character (\\u0000) in it, which can't be kept. Remove it and send again."


def has_nul(value: object) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, list):
        return any(isinstance(item, str) and "\x00" in item for item in value)
    return False


@dataclass(frozen=True)
class FlatForm:
    """How a flat form (HTML, urlencoded, multipart), which has no lists of objects, sends a list of them.

    `each`: every item as a group of `<each>.<field>` inputs (`payment.amount`); a name seen again starts
    the next item. `named_by`: every item as one input named after its `named_by` field, holding `value`
    (`mtcn=1234567890`), and its other fields as `<name>.<field>` (`username.platform`), paired with the
    items of that name in order. Everything else a form sends is the field's own (dotted) name.
    """

    each: str | None = None
    named_by: str | None = None
    value: str = "value"


class Strict(BaseModel):
    """Unknown fields refused; text trimmed; no NUL characters (no database can keep them as text)."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @field_validator("*", mode="before")
    @classmethod
    def _no_nul(cls, value: object) -> object:
        if has_nul(value):
            raise ValueError(NUL_MESSAGE)
        return value


class Relationship(StrEnum):
    self = "self"
    parent_or_carer = "parent_or_carer"
    other = "other"


class PreferredContact(StrEnum):
    email = "email"
    phone = "phone"
    none = "none"


class AgeBand(StrEnum):
    under_13 = "under_13"
    age_13_15 = "13_15"
    age_16_17 = "16_17"
    age_18_24 = "18_24"
    age_25_plus = "25_plus"


class PaymentMethod(StrEnum):
    western_union = "western_union"
    moneygram = "moneygram"
    bank_transfer = "bank_transfer"
    gift_card = "gift_card"
    crypto = "crypto"
    paypal = "paypal"
    other = "other"


class Collected(StrEnum):
    yes = "yes"
    no = "no"
    unknown = "unknown"


# The words a person picks from, for every choice a report has: forms list the options from here, in
# this order, so a new option is added in one place (a test holds every member to a label).
CHOICE_LABELS: dict[type[StrEnum], dict[str, str]] = {
    Relationship: {
        "self": "It happened to me",
        "parent_or_carer": "I am a parent or carer of the person it happened to",
        "other": "I am reporting for someone else",
    },
    PreferredContact: {"email": "By email", "phone": "By phone", "none": "Please don't contact me"},
    AgeBand: {
        "under_13": "Under 13",
        "13_15": "13 to 15",
        "16_17": "16 or 17",
        "18_24": "18 to 24",
        "25_plus": "25 or older",
    },
    PaymentMethod: {
        "western_union": "Western Union",
        "moneygram": "MoneyGram",
        "bank_transfer": "Bank transfer",
        "gift_card": "Gift card",
        "crypto": "Cryptocurrency",
        "paypal": "PayPal",
        "other": "Another way",
    },
    Collected: {
        "yes": "Yes, it has been collected",
        "no": "No, not yet",
        "unknown": "I don't know",
    },
}


def choices(kind: type[StrEnum]) -> list[tuple[str, str]]:
    """(value, label) for each option of a choice, in the enum's order."""
    labels = CHOICE_LABELS[kind]
    return [(member.value, labels[member.value]) for member in kind]


class Reporter(Strict):
    relationship: Relationship = Field(description="Who is reporting: the victim, a parent or carer, or someone else.")
    name: ShortText | None = None
    email: ShortText | None = None
    phone: ShortText | None = None
    preferred_contact: PreferredContact | None = None
    safe_to_contact: Annotated[str, Field(max_length=1000)] | None = Field(
        default=None, description="When and how it is safe to contact the reporter, in their words."
    )

    @field_validator("email")
    @classmethod
    def _email_is_an_address(cls, email: str | None) -> str | None:
        return _checked(IdentifierType.email, email)

    @field_validator("phone")
    @classmethod
    def _phone_is_a_number(cls, phone: str | None) -> str | None:
        return _checked(IdentifierType.phone, phone)


class Victim(Strict):
    age: int | None = Field(default=None, ge=0, le=120, description="Age in whole years.")
    age_band: AgeBand | None = None
    date_of_birth: date | None = None

    @field_validator("date_of_birth")
    @classmethod
    def _born_in_a_plausible_year(cls, born: date | None, info: ValidationInfo) -> date | None:
        rules = _rules(info)
        if born is None or rules is None:
            return born
        if born > rules.today:
            raise ValueError("The date of birth is in the future. Check the day, month and year.")
        if born < _years_before(rules.today, OLDEST_AGE):
            raise ValueError(f"The date of birth is more than {OLDEST_AGE} years ago. Check the year.")
        return born


def _years_before(today: date, years: int) -> date:
    try:
        return today.replace(year=today.year - years)
    except ValueError:  # 29 February
        return today.replace(year=today.year - years, day=28)


_CURRENCY = re.compile(r"[A-Z]{3}")


# Symbols a person may type with an amount, and the currency each one means. "$" is left out: it is
# the sign of too many currencies to decide one, so "$100" keeps its number and asks for no currency.
_CURRENCY_SIGNS = {"£": "GBP", "€": "EUR", "$": None}
_AMOUNT_WITH_CURRENCY = re.compile(
    r"^(?P<before>[£€$]|[A-Za-z]{3})?\s*(?P<number>[-+0-9.,\s]*?)\s*(?P<after>[£€$]|[A-Za-z]{3})?$"
)


def _amount_as_text(value: object) -> object:
    # A JSON number is as good an amount as a decimal string (Decimal keeps what was written).
    if isinstance(value, bool):
        raise PydanticCustomError("amount", "Give the amount as a number, like 250 or 250.00.")
    if isinstance(value, int | float):
        return str(Decimal(str(value)))
    return value


AmountText = Annotated[
    str,
    BeforeValidator(_amount_as_text),
    WithJsonSchema(
        {
            "anyOf": [{"type": "string", "maxLength": 40}, {"type": "number", "minimum": 0}],
            "description": 'A decimal string ("250.00") or a JSON number. A leading or trailing £, € or '
            "ISO 4217 code is read as the currency.",
            "examples": ["250.00"],
        }
    ),
]


class Payment(Strict):
    amount: Annotated[AmountText, Field(max_length=40)] | None = Field(default=None)
    currency: str | None = Field(default=None, description="ISO 4217 code, e.g. GBP.", examples=["GBP"])
    method: PaymentMethod | None = None
    paid_at: Moment | None = None
    collected: Collected | None = Field(
        default=None,
        description="Whether the money has been collected: `unknown` for a recent transfer counts as possibly "
        "recallable.",
    )
    reference: ShortText | None = Field(default=None, description="The MTCN or transfer reference.")

    @field_validator("amount")
    @classmethod
    def _amount_is_money(cls, amount: str | None) -> str | None:
        if amount is None or amount == "":
            return None
        number, _ = _split_amount(amount)
        try:
            value = Decimal(number.replace(",", "").replace(" ", ""))
        except InvalidOperation:
            raise ValueError("Give the amount as a number, like 250 or 250.00.") from None
        if not value.is_finite() or value < 0 or value > Decimal("1e12"):
            raise ValueError("Give the amount as a positive number, like 250 or 250.00.")
        exponent = value.as_tuple().exponent
        if exponent < -8:  # type: ignore[operator]
            raise ValueError("The amount has too many decimal places.")
        if exponent > 12:  # type: ignore[operator]
            # 0E+999999999 is zero, but written out it is a billion digits: whoever formats it pays.
            raise ValueError("Give the amount as a plain number, like 250 or 250.00.")
        return f"{value:f}"  # plain digits: 1E+3 is kept as 1000

    @field_validator("currency")
    @classmethod
    def _currency_is_iso_4217(cls, currency: str | None) -> str | None:
        if currency is None or currency == "":
            return None
        code = currency.upper()
        if not _CURRENCY.fullmatch(code):
            raise ValueError("Use the three-letter currency code, like GBP, USD or EUR.")
        return code

    @model_validator(mode="before")
    @classmethod
    def _currency_written_with_the_amount(cls, data: object) -> object:
        """`£100` and `100 GBP` say the currency too: it fills `currency`, or must agree with it."""
        if not isinstance(data, dict) or not isinstance(data.get("amount"), str):
            return data
        _, written = _split_amount(data["amount"])
        if written is None:
            return data
        given = data.get("currency")
        if isinstance(given, str) and given.strip() and given.strip().upper() != written:
            raise PydanticCustomError(
                "currency_mismatch",
                "The amount is written in {written} but the currency says {given}: give one currency.",
                {"written": written, "given": given.strip().upper()},
            )
        return {**data, "currency": written}


def _split_amount(text: str) -> tuple[str, str | None]:
    """The number in `text` and the currency written beside it (£, € or a three-letter code), if any."""
    match = _AMOUNT_WITH_CURRENCY.match(text.strip())
    if not match or (match["before"] and match["after"]):
        return text, None
    sign = match["before"] or match["after"]
    if sign is None:
        return match["number"], None
    return match["number"], _CURRENCY_SIGNS[sign] if sign in _CURRENCY_SIGNS else sign.upper()


class IdentifierInput(Strict):
    type: IdentifierType
    # Declared before `value` so that the value's validator can see it.
    platform: ShortText | None = Field(default=None, description="For a username: the app or website it is on.")
    value: Annotated[str, Field(max_length=MAX_IDENTIFIER_LENGTH)]

    @field_validator("value")
    @classmethod
    def _value_is_valid_for_its_type(cls, value: str, info: ValidationInfo) -> str:
        if "type" not in info.data:
            return value  # the type itself is wrong, and is reported on its own
        try:
            normalize_identifier(info.data["type"], value, info.data.get("platform"))
        except IdentifierError as error:
            raise ValueError(str(error)) from None
        return value

    def normalized(self) -> NormalizedIdentifier:
        return normalize_identifier(self.type, self.value, self.platform)


class CaseSubmission(Strict):
    """A report as submitted. `account` and `reporter.relationship` are the only required fields."""

    reporter: Reporter
    victim: Victim | None = None
    police_force: Annotated[str, Field(max_length=80)] | None = Field(
        default=None,
        description="The force area as a slug from GET /v1/police-forces, e.g. north-yorkshire.",
        examples=["north-yorkshire"],
    )
    platforms: Annotated[list[ShortText], Field(max_length=MAX_LIST)] = Field(
        default_factory=list, description="Where contact happened (instagram, snapchat, skype, ...)."
    )
    first_contact_at: Moment | None = None
    account: Annotated[str, Field(min_length=1, max_length=MAX_TEXT)] = Field(
        description="What happened, in the reporter's words."
    )
    threats: Annotated[str, Field(max_length=MAX_TEXT)] | None = None
    deadline_at: Moment | None = Field(default=None, description="When they said they would act.")
    images_shared: bool | None = None
    images_fake_or_ai: bool | None = Field(
        default=None,
        description="True if the reporter says the images of the victim are fake or edited (for example made "
        "with AI from an ordinary photo).",
    )
    feels_unsafe: bool | None = Field(
        default=None, description="True if the victim feels unsafe or is thinking of harming themselves."
    )
    payments: Annotated[list[Payment], Field(max_length=MAX_LIST), FlatForm(each="payment")] = Field(
        default_factory=list
    )
    consent_to_share: bool | None = None
    identifiers: Annotated[list[IdentifierInput], Field(max_length=MAX_LIST), FlatForm(named_by="type")] = Field(
        default_factory=list
    )

    @field_validator("police_force")
    @classmethod
    def _police_force_is_known(cls, slug: str | None, info: ValidationInfo) -> str | None:
        rules = _rules(info)
        if slug is None or rules is None:
            return slug
        try:
            return rules.police_forces.check(slug)
        except UnknownPoliceForce as error:
            raise ValueError(str(error)) from None

    @field_validator("platforms")
    @classmethod
    def _platforms_are_lower_case(cls, platforms: list[str]) -> list[str]:
        return [platform.lower() for platform in platforms if platform]


def _checked(identifier_type: IdentifierType, value: str | None) -> str | None:
    if value is None or value == "":
        return None
    try:
        normalize_identifier(identifier_type, value)
    except IdentifierError as error:
        raise ValueError(str(error)) from None
    return value


def parse_submission(data: object, rules: SubmissionRules) -> CaseSubmission:
    """A new report, checked against this deployment's forces and today's date (every entry point calls this)."""
    return CaseSubmission.model_validate(data, context={"rules": rules})


# --- stored submissions, read back ----------------------------------------------------------------


class _Lenient(BaseModel):
    """Reads what was valid when it was written: a value today's rules would refuse (a tightened
    validator, a newer phone-number table) or no longer understand is read as absent, never refused,
    so one old case can never make a new report fail."""

    model_config = ConfigDict(extra="ignore")

    @field_validator("*", mode="wrap")
    @classmethod
    def _absent_if_unreadable(cls, value: object, handler, info: ValidationInfo) -> object:
        try:
            return handler(value)
        except ValidationError:
            return cls.model_fields[info.field_name].get_default(call_default_factory=True)


class StoredVictim(_Lenient):
    age: int | None = None
    age_band: AgeBand | None = None
    date_of_birth: date | None = None


class StoredPayment(_Lenient):
    method: PaymentMethod | None = None
    paid_at: Annotated[datetime, AfterValidator(_assume_utc)] | None = None
    collected: Collected | None = None


class StoredSubmission(_Lenient):
    """A stored case's submission as its urgency is decided again (when another case links to it):
    only the facts urgency reads, each read leniently."""

    victim: StoredVictim | None = None
    feels_unsafe: bool | None = None
    images_shared: bool | None = None
    images_fake_or_ai: bool | None = None
    deadline_at: Annotated[datetime, AfterValidator(_assume_utc)] | None = None
    payments: list[StoredPayment] = Field(default_factory=list)
