"""The report form's questions, in the order the page asks them, each bound to a field of the domain
model: the kind of input and its options come from the field's type (an enum's labelled choices, a
date, a yes/no), so the page, the API and the spec cannot drift. Only the words a person reads
(label, hint) are written here.
"""

from __future__ import annotations

import types
import typing
from dataclasses import dataclass
from datetime import date, datetime
from enum import StrEnum

from pydantic import BaseModel

from service.domain.cases import MAX_TEXT, CaseSubmission, IdentifierInput, Payment, choices
from service.domain.identifiers import IdentifierType

# Nested models as the form flattens them (api/bodies.py): `reporter.email`, `payment.amount`.
_FORM_PREFIXES: dict[str, type[BaseModel]] = {
    "reporter": CaseSubmission.model_fields["reporter"].annotation,  # type: ignore[dict-item]
    "victim": typing.get_args(CaseSubmission.model_fields["victim"].annotation)[0],
    "payment": Payment,
}


@dataclass(frozen=True)
class Question:
    name: str  # the form field, as POST /v1/cases takes it in a form
    label: str
    hint: str | None = None
    section: str | None = None  # a heading that starts a new part of the page
    section_intro: str | None = None
    select: bool = False  # a long choice as a drop-down rather than radios
    input_type: str = "text"  # for text: email, tel
    autocomplete: str = "off"
    width: str = ""

    @property
    def widget(self) -> str:
        kind = field_type(self.name)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            return "select" if self.select else "radios"
        if kind is bool:
            return "checkbox"
        if kind is date:
            return "date"
        if kind is datetime:
            return "datetime"
        if self.name == "police_force":
            return "select"
        return "textarea" if _max_length(self.name) == MAX_TEXT else "text"

    @property
    def options(self) -> list[tuple[str, str]]:
        kind = field_type(self.name)
        return choices(kind) if isinstance(kind, type) and issubclass(kind, StrEnum) else []

    @property
    def element_id(self) -> str:
        return self.name.replace(".", "-")


def field_type(name: str) -> object:
    """The Python type of the domain field a form name fills (Optional and Annotated taken off)."""
    model, field_name = _model_and_field(name)
    return _bare(model.model_fields[field_name].annotation)


def _model_and_field(name: str) -> tuple[type[BaseModel], str]:
    head, _, rest = name.partition(".")
    if head in _FORM_PREFIXES and rest:
        return _FORM_PREFIXES[head], rest
    if head in IdentifierType.__members__ or name == "username.platform":
        return IdentifierInput, "platform" if rest else "value"
    return CaseSubmission, name


def _bare(annotation: object) -> object:
    while True:
        origin = typing.get_origin(annotation)
        if origin is typing.Annotated:
            annotation = typing.get_args(annotation)[0]
        elif origin in (typing.Union, types.UnionType):
            annotation = next(arg for arg in typing.get_args(annotation) if arg is not type(None))
        else:
            return annotation


def _max_length(name: str) -> int | None:
    model, field_name = _model_and_field(name)
    info = model.model_fields[field_name]
    constraints = list(info.metadata)
    for arg in typing.get_args(info.annotation):
        for item in getattr(arg, "__metadata__", ()):
            constraints += [item, *getattr(item, "metadata", [])]
    return next((item.max_length for item in constraints if getattr(item, "max_length", None)), None)


_IDENTIFIER_QUESTIONS = {
    IdentifierType.profile_url: (
        "Link to their profile",
        "Copy it from the address bar, like https://www.instagram.com/their.name",
    ),
    IdentifierType.username: ("Their username", "The name they use on the app or site"),
    IdentifierType.email: ("Their email address", None),
    IdentifierType.phone: ("Their phone number", "Include the country code if it is not a UK number, like +234"),
    IdentifierType.skype_id: ("Their Skype ID", "It may look like live:.cid.1a2b3c"),
    IdentifierType.mtcn: ("Western Union MTCN", "The 10-digit tracking number, if you sent money"),
}


# Offender details, as (type, label, hint): the report page and the status page ask for the same ones.
IDENTIFIER_QUESTIONS = [(kind, label, hint) for kind, (label, hint) in _IDENTIFIER_QUESTIONS.items()]


def report_questions(*, ask_police_force: bool) -> list[Question]:
    """Every question on the report page, in order. The force is asked only when the deployment has not
    set one for all its reports (INTAKE_FORM_POLICE_FORCE)."""
    questions = [
        Question("reporter.relationship", "Who is making this report?"),
        Question(
            "victim.age_band",
            "How old is the person it happened to? (optional)",
            hint="This helps us find the right help quickly. Under 18s will be offered help from CEOP and Childline.",
        ),
        Question(
            "victim.date_of_birth",
            "Their date of birth, if you know it (optional)",
            hint="For example, 23 April 2010",
        ),
    ]
    if ask_police_force:
        questions.append(
            Question(
                "police_force",
                "Which police force covers where they live? (optional)",
                hint="If you are not sure, leave it. In Scotland choose Police Scotland; in Northern Ireland, "
                "the Police Service of Northern Ireland.",
            )
        )
    questions += [
        Question(
            "account",
            "What happened?",
            hint="In your own words. For example, where you met them, what they asked you to do, and what they "
            "want now.",
        ),
        Question("threats", "What are they threatening to do? (optional)"),
        Question(
            "images_fake_or_ai",
            "The images they have of me are fake or edited, for example made with AI from an ordinary photo",
            section_intro="Are the images fake? (optional) It is still a crime, and still worth reporting.",
        ),
        Question(
            "deadline_at",
            "If they gave you a deadline, when is it? (optional)",
            hint="For example, 26 November at 6pm. Leave it empty if you are not sure.",
        ),
        Question(
            "feels_unsafe",
            "I feel unsafe, or I have thought about hurting myself",
            section_intro="How are you feeling? (optional)",
        ),
    ]
    for position, (kind, (label, hint)) in enumerate(_IDENTIFIER_QUESTIONS.items()):
        questions.append(
            Question(
                kind.value,
                label,
                hint=hint,
                section="About the person blackmailing you (optional)" if position == 0 else None,
                section_intro="Anything you know helps the police find them, and find other people they have "
                "done this to."
                if position == 0
                else None,
            )
        )
        if kind is IdentifierType.username:
            questions.append(
                Question(
                    "username.platform",
                    "Which app or site is that username on?",
                    hint="For example, Instagram, Snapchat or Skype",
                    width=" input-width-20",
                )
            )
    questions += [
        Question(
            "payment.method",
            "How did you pay?",
            section="If you paid them (optional)",
            section_intro="Don't pay any more. If you paid by money transfer, your bank or the transfer company "
            "may be able to stop it.",
            select=True,
        ),
        Question("payment.amount", "How much did you pay?", hint="For example, £150", width=" input-width-10"),
        Question(
            "payment.reference",
            "Payment or transfer reference",
            hint="If you have one, from the receipt, like the MTCN",
        ),
        Question(
            "payment.collected",
            "Has the money been collected?",
            hint="If you are not sure, choose 'I don't know': the transfer company can tell you, and may still "
            "be able to stop it.",
        ),
    ]
    return questions


CONTACT_QUESTIONS = [
    Question(
        "reporter.email",
        "Email address",
        input_type="email",
        autocomplete="email",
        section="How we can reach you (optional)",
        section_intro="Only if it is safe. Leave these empty if someone else reads your messages.",
    ),
    Question("reporter.phone", "Phone number", input_type="tel", autocomplete="tel", width=" input-width-20"),
]
