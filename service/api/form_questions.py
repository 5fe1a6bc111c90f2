"""The report form's questions, in the order the page asks them, each bound to a field of the domain
model: the kind of input and its options come from the field's type (an enum's labelled choices, a
date, a yes/no), so the page, the API and the spec cannot drift. Only the words a person reads
(label, hint) are written here.
"""

from __future__ import annotations

import typing
from dataclasses import dataclass, replace
from datetime import date, datetime
from enum import StrEnum

from service.api.form_fields import FORM_FIELDS_BY_NAME, bare_type
from service.domain.cases import MAX_TEXT, choices
from service.domain.identifiers import IdentifierType


@dataclass(frozen=True)
class Question:
    name: str  # the form field, as POST /v1/cases takes it in a form
    label: str
    hint: str | None = None
    section: str | None = None  # a heading that starts a new part of the page
    section_intro: str | None = None
    select: bool = False  # a long choice as a drop-down rather than radios
    empty_choice: str = ""  # a drop-down's first option, for no answer
    data_choices: tuple[tuple[str, str], ...] = ()  # for a field checked against data, not a type (the forces)
    input_type: str = "text"  # for text: email, tel
    autocomplete: str = "off"
    width: str = ""

    @property
    def widget(self) -> str:
        kind = field_type(self.name)
        if self.select:
            return "select"
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            return "radios"
        if kind is bool:
            return "checkbox"
        if kind is date:
            return "date"
        if kind is datetime:
            return "datetime"
        return "textarea" if _max_length(self.name) == MAX_TEXT else "text"

    @property
    def options(self) -> list[tuple[str, str]]:
        kind = field_type(self.name)
        if isinstance(kind, type) and issubclass(kind, StrEnum):
            return choices(kind)
        return list(self.data_choices)

    @property
    def element_id(self) -> str:
        return self.name.replace(".", "-")


def field_type(name: str) -> object:
    """The Python type of the domain field a form name fills (Optional and Annotated taken off)."""
    return bare_type(FORM_FIELDS_BY_NAME[name].info.annotation)


def _max_length(name: str) -> int | None:
    info = FORM_FIELDS_BY_NAME[name].info
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
    IdentifierType.skype_id: ("Their Skype ID", "It may look like live:.cid.1a2b3c4d5e6f"),
    IdentifierType.mtcn: ("Western Union MTCN", "The 10-digit tracking number, if you sent money"),
}


def identifier_questions() -> list[Question]:
    """The offender details, in order: the report page and the status page ask for the same ones."""
    questions = []
    for kind, (label, hint) in _IDENTIFIER_QUESTIONS.items():
        questions.append(Question(kind.value, label, hint=hint))
        if kind is IdentifierType.username:
            questions.append(
                Question(
                    "username.platform",
                    "Which app or site is that username on?",
                    hint="For example, Instagram, Snapchat or Skype",
                    width=" input-width-20",
                )
            )
    return questions


def report_questions(*, ask_police_force: bool, police_forces: tuple[tuple[str, str], ...] = ()) -> list[Question]:
    """Every question on the report page, in order. The force is asked only when the deployment has not
    set one for all its reports (INTAKE_FORM_POLICE_FORCE), from the deployment's list of forces."""
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
                select=True,
                empty_choice="I'm not sure",
                data_choices=police_forces,
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
    about_them = identifier_questions()
    questions.append(
        replace(
            about_them[0],
            section="About the person blackmailing you (optional)",
            section_intro="Anything you know helps the police find them, and find other people they have done this to.",
        )
    )
    questions += about_them[1:]
    questions += [
        Question(
            "payment.method",
            "How did you pay?",
            section="If you paid them (optional)",
            section_intro="Don't pay any more. If you paid by money transfer, your bank or the transfer company "
            "may be able to stop it.",
            select=True,
            empty_choice="I have not paid, or I'd rather not say",
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


# What a form may send (service.api.form_fields) that the report page deliberately does not ask, and why. A
# test holds every other form field to a question, so a field added to the model is asked or named here.
NOT_ASKED_ON_THE_PAGE: dict[str, str] = {
    "reporter.name": "A name is not needed to act on a report, and asking for it puts frightened people off.",
    "reporter.preferred_contact": "The contact questions say it: an email or phone given is how to reach them.",
    "reporter.safe_to_contact": "The contact section already asks for details only if it is safe.",
    "victim.age": "The age band is enough for the urgency rules and easier to answer.",
    "platforms": "The offender's profile link and username say where it happened.",
    "first_contact_at": "Not needed to act; the account in their own words usually says it.",
    "images_shared": "Asking whether images were already sent on adds fear; police ask it when they call.",
    "payment.currency": "Read from the amount as typed (£150, 100 EUR).",
    "payment.paid_at": "A report is usually made soon after paying; the collected question decides the advice.",
    "consent_to_share": "Sharing with partner agencies is discussed by the police, not decided on a first form.",
    "moneygram_reference": "Rare; the payment reference question takes it.",
    "skype_name": "The Skype ID question is the one a victim can find.",
    "crypto_wallet": "Rare; the payment reference question takes it.",
    **{
        f"{kind.value}.platform": "A platform only means something for a username."
        for kind in IdentifierType
        if kind is not IdentifierType.username
    },
}
