"""The reference report form at /report: plain HTML that works without JavaScript, for a frightened
person of any age, and a model for force web teams (GOV.UK Design System patterns).

It posts back to itself, with a CSRF token tied to a cookie; the case goes through the same parsing,
validation, evidence streaming and storage as POST /v1/cases. On a mistake the form comes back with
an error summary linked to each field and everything typed kept (files must be chosen again).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
from dataclasses import dataclass
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from starlette.datastructures import FormData

from service.api.bodies import case_from_form_fields
from service.api.cases import SubmittedCase, store_report, submission_rules
from service.api.deps import own_origin
from service.api.problems import ProblemError, field_errors
from service.api.ratelimit import limit_reports_from_address
from service.api.uploads import receive_multipart
from service.domain.cases import parse_submission
from service.domain.guidance import Audience, for_audience
from service.domain.identifiers import IdentifierType
from service.domain.urgency import FlagCode
from service.storage.database import session_scope
from service.storage.evidence import EvidenceRefused

router = APIRouter(include_in_schema=False)

_TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLESHEET = (Path(__file__).resolve().parent.parent / "static" / "report.css").read_bytes()
_STYLESHEET_ETAG = '"' + hashlib.sha256(_STYLESHEET).hexdigest()[:16] + '"'
CSRF_COOKIE = "intake_csrf"
# Our own pages: styles from here only, no scripts at all, forms post only back here.
_PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Same-origin referrers, not none: with none, browsers send `Origin: null` and the CSRF check fails.
_PAGE_HEADERS = {"Content-Security-Policy": _PAGE_POLICY, "Referrer-Policy": "same-origin"}
# Offender details the form asks for, in the order they appear on it.
IDENTIFIER_INPUTS = [
    (
        IdentifierType.profile_url,
        "Link to their profile",
        "Copy it from the address bar, like https://www.instagram.com/their.name",
    ),
    (IdentifierType.username, "Their username", "The name they use on the app or site"),
    (IdentifierType.email, "Their email address", None),
    (IdentifierType.phone, "Their phone number", "Include the country code if it is not a UK number, like +234"),
    (IdentifierType.skype_id, "Their Skype ID", "It may look like live:.cid.1a2b3c"),
    (IdentifierType.mtcn, "Western Union MTCN", "The 10-digit tracking number, if you sent money"),
]
FIELD_ORDER = [
    "reporter.relationship",
    "victim.age_band",
    "account",
    "threats",
    "deadline_at",
    "feels_unsafe",
    *(kind.value for kind, _, _ in IDENTIFIER_INPUTS),
    "username.platform",
    "payment.method",
    "payment.amount",
    "payment.reference",
    "evidence",
    "reporter.email",
    "reporter.phone",
]
_EXPIRED = "This form was open too long, or was sent from another website. Check your answers and send it again."
_ADVICE = ("dont-panic", "stop-communicating", "dont-pay", "preserve-evidence")


@dataclass
class FormErrors:
    """Field name → message, in the order the fields appear on the page."""

    by_field: dict[str, str]

    @property
    def ordered(self) -> list[tuple[str, str]]:
        rank = {name: position for position, name in enumerate(FIELD_ORDER)}
        return sorted(self.by_field.items(), key=lambda item: rank.get(item[0], len(rank)))


def _enabled(request: Request) -> None:
    if not request.app.state.settings.report_form_enabled:
        raise ProblemError(404, "There is nothing at this address.")


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request) -> Response:
    _enabled(request)
    return _form_page(request, values={}, errors=None, status=200)


@router.get("/report/report.css")
def stylesheet(request: Request) -> Response:
    _enabled(request)
    if request.headers.get("if-none-match") == _STYLESHEET_ETAG:
        return Response(status_code=304, headers={"ETag": _STYLESHEET_ETAG})
    headers = {"ETag": _STYLESHEET_ETAG, "Cache-Control": "public, max-age=3600"}
    return Response(_STYLESHEET, media_type="text/css", headers=headers)


@router.post("/report", response_class=HTMLResponse)
async def submit_report(request: Request) -> Response:
    _enabled(request)
    limit_reports_from_address(request)
    if not request.headers.get("content-type", "").startswith("multipart/form-data"):
        raise ProblemError(415, "The report form is sent as multipart/form-data.")
    if not _csrf_cookie_and_origin_ok(request):
        # Before reading a byte: a post from another site brings neither our cookie nor our origin.
        return _form_page(request, values={}, errors=FormErrors({"form": _EXPIRED}), status=403)
    refusals: list[EvidenceRefused] = []
    try:
        received = await receive_multipart(request, file_field="evidence", refusals=refusals)
    except ProblemError as problem:
        # Too many files, or a body that is not a form: nothing typed could be read back.
        first = (problem.errors or [{"field": "evidence", "message": problem.detail}])[0]
        errors = FormErrors({first["field"]: first["message"]})
        return _form_page(request, values={}, errors=errors, status=problem.status)
    values = FormData(received.fields)
    if refusals:
        await run_in_threadpool(received.discard)
        message = " ".join(refusal.message for refusal in refusals)
        return _form_page(request, values=values, errors=FormErrors({"evidence": message}), status=refusals[0].status)
    if not _csrf_token_ok(request, values.get("csrf_token")):
        await run_in_threadpool(received.discard)
        return _form_page(request, values=values, errors=FormErrors({"form": _EXPIRED}), status=403)
    fields = [(name, value) for name, value in received.fields if name != "csrf_token"]
    try:
        submission = parse_submission(case_from_form_fields(fields), submission_rules(request))
    except ValidationError as error:
        await run_in_threadpool(received.discard)
        errors = _errors_by_input(field_errors(list(error.errors()), drop_prefix=()), fields)
        return _form_page(request, values=values, errors=errors, status=422)
    return await run_in_threadpool(_store, request, SubmittedCase(submission, received))


def _store(request: Request, body: SubmittedCase) -> Response:
    try:
        with session_scope(request.app.state.engine) as session:
            created = store_report(
                request, session, body, actor="form:report", key_id=None, request_id=request.state.request_id
            )
            session.commit()
    except BaseException:
        body.discard_evidence()
        raise
    if request.app.state.alerts is not None:
        request.app.state.alerts.nudge()
    content = request.app.state.content
    under_18 = any(flag.code == FlagCode.under_18.value for flag in created.flags)
    audience = Audience.under_18 if under_18 else Audience.adult
    page = _TEMPLATES.get_template("confirmation.html").render(
        created=created,
        files=len(created.evidence),
        next_steps=[section for slug in created.next_steps if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, audience),
        under_18=under_18,
        exit_url=request.app.state.settings.report_exit_url,
    )
    return HTMLResponse(page, status_code=201, headers=_PAGE_HEADERS)


def _form_page(request: Request, *, values, errors: FormErrors | None, status: int) -> Response:
    content = request.app.state.content
    secret = request.cookies.get(CSRF_COOKIE) or secrets.token_urlsafe(24)
    page = _TEMPLATES.get_template("report.html").render(
        values=values,
        errors=errors,
        identifier_inputs=IDENTIFIER_INPUTS,
        advice=[section for slug in _ADVICE if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, None),
        csrf_token=_csrf_token(request, secret),
        max_files=request.app.state.settings.evidence_max_files,
        exit_url=request.app.state.settings.report_exit_url,
    )
    response = HTMLResponse(page, status_code=status, headers=_PAGE_HEADERS)
    response.set_cookie(
        CSRF_COOKIE,
        secret,
        max_age=4 * 3600,
        path="/report",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


def _csrf_token(request: Request, secret: str) -> str:
    return hmac.new(request.app.state.link_secret, b"csrf\x00" + secret.encode(), "sha256").hexdigest()


def _csrf_cookie_and_origin_ok(request: Request) -> bool:
    origin = request.headers.get("origin")
    return bool(request.cookies.get(CSRF_COOKIE)) and (origin is None or origin == own_origin(request))


def _csrf_token_ok(request: Request, token: str | None) -> bool:
    secret = request.cookies.get(CSRF_COOKIE)
    return bool(secret and token) and hmac.compare_digest(token, _csrf_token(request, secret))


def _errors_by_input(errors: list[dict[str, str]], fields: list[tuple[str, str]]) -> FormErrors:
    """API field paths (`identifiers[1].value`) back to the form inputs they came from."""
    identifier_names = [name for name, value in fields if name in IdentifierType.__members__ and value.strip()]
    by_field: dict[str, str] = {}
    for error in errors:
        name = error["field"]
        if name.startswith("identifiers["):
            index = int(name[len("identifiers[") : name.index("]")])
            name = identifier_names[index] if index < len(identifier_names) else "account"
        elif name.startswith("payments["):
            name = "payment." + name.rsplit(".", 1)[-1]
        by_field.setdefault(name, _FORM_MESSAGES.get((name, error["message"]), error["message"]))
    return FormErrors(by_field)


# The API's "This is required." names a field; on the page, say what to do (GOV.UK error messages).
_FORM_MESSAGES = {
    ("reporter.relationship", "This is required."): "Select who is making this report",
    ("account", "This is required."): "Tell us what happened. A few words is enough",
}
