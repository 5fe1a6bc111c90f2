"""The reference report form at /report: plain HTML that works without JavaScript, for a frightened
person of any age, and a model for force web teams (GOV.UK Design System patterns).

It posts back to itself and goes through the same parsing, validation, evidence streaming and case
creation as POST /v1/cases. Whatever refuses a post (the rate limit, an expired page, a post from
another site, a file, a field, the database or evidence store being down) answers with the form
again, its status code, a message in plain words and everything typed kept: only files must be
chosen again, and the page says so.

Cross-site posts are refused without cookies (a browser may block them): the browser's own
`Sec-Fetch-Site`, or else `Origin`, must say the post came from this site, and the page carries a
signed, time-limited form token. The token also makes sending idempotent: one token is at most one
case, and the post answers with a redirect to a confirmation (POST-redirect-GET), so a double click,
a refresh or the back button shows the same confirmation instead of making a second case.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
import time
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from pydantic import ValidationError
from sqlalchemy.exc import IntegrityError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from starlette.datastructures import FormData

from service.api.bodies import MULTIPART, media_type_of
from service.api.cases import ReportBody, report, submission_rules
from service.api.deps import own_origin
from service.api.form_fields import case_from_form_fields, form_name_of
from service.api.form_questions import CONTACT_QUESTIONS, Question, report_questions
from service.api.problems import ProblemError, field_errors
from service.api.ratelimit import client_address, limit_reports_from_address
from service.api.uploads import MultipartWithFiles, receive_multipart
from service.domain.cases import parse_submission
from service.domain.guidance import Audience, for_audience
from service.domain.urgency import FlagCode
from service.reporting import Reporter
from service.storage.database import DatabaseUnreachable, session_scope
from service.storage.evidence import EvidenceRefused
from service.storage.idempotency import remembered_answer, replace_response, stored_response
from service.storage.objects import ObjectStoreUnavailable

router = APIRouter(include_in_schema=False)

TEMPLATES = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent.parent / "templates"),
    autoescape=select_autoescape(["html"]),
    trim_blocks=True,
    lstrip_blocks=True,
)
_STYLESHEET = (Path(__file__).resolve().parent.parent / "static" / "report.css").read_bytes()
_STYLESHEET_ETAG = '"' + hashlib.sha256(_STYLESHEET).hexdigest()[:16] + '"'
# Our own pages: styles from here only, no scripts at all, forms post only back here.
_PAGE_POLICY = (
    "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
# Same-origin referrers, not none: with none, browsers send `Origin: null` and the cross-site check fails.
# No caching: a page with a form token, or a confirmation, must not come back from a shared cache.
PAGE_HEADERS = {
    "Content-Security-Policy": _PAGE_POLICY,
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}
FORM_SCOPE = "report-form"
ANSWERS_SCOPE = "report-form-answers"
_ADVICE = ("dont-panic", "stop-communicating", "dont-pay", "preserve-evidence")

_KEPT = "Your answers are still here: check them and send the report again."
EXPIRED = "This page was open for a long time, so for your safety it needs sending again. " + _KEPT
UNCHECKED = "We couldn't check that this form came from this website. " + _KEPT
CROSS_SITE = (
    "This report was sent from another website, so it was not accepted. If you meant to report, check your "
    "answers here and send them from this page."
)
RATE_LIMITED = (
    "Too many reports have been sent from your connection in a short time. Your answers are still here: "
    "wait {seconds} seconds, then send the report again."
)
STORE_DOWN = (
    "We couldn't save your report just now. Nothing has been lost from this page: wait a minute, then send it again."
)
TOO_LONG = "What you typed is too long to send in one go. Shorten the longest answer and send the report again."
NOT_A_FORM = "Your browser sent the form in a way we don't understand. Please fill it in again on this page."


@dataclass
class FormErrors:
    """Field name → message, in the order the fields appear on the page."""

    by_field: dict[str, str]
    field_order: list[str] = field(default_factory=list)

    @property
    def ordered(self) -> list[tuple[str, str]]:
        rank = {name: position for position, name in enumerate(["form", *self.field_order])}
        return sorted(self.by_field.items(), key=lambda item: rank.get(item[0], len(rank)))


@dataclass(frozen=True)
class Refusal:
    status: int
    errors: dict[str, str]
    headers: dict[str, str] | None = None


def _enabled(request: Request) -> None:
    if not request.app.state.settings.report_form_enabled:
        raise ProblemError(404, "There is nothing at this address.")


def _questions(request: Request) -> list[Question]:
    forces = sorted(request.app.state.content.police_forces.forces, key=lambda force: force.name)
    return report_questions(
        ask_police_force=request.app.state.settings.form_police_force is None,
        police_forces=tuple((force.slug, force.name) for force in forces),
    )


def field_order(request: Request) -> list[str]:
    return [question.name for question in _questions(request)] + ["evidence"] + [q.name for q in CONTACT_QUESTIONS]


@router.get("/report", response_class=HTMLResponse)
def report_form(request: Request) -> Response:
    _enabled(request)
    page = form_page(request, values={}, refusal=None)
    # The empty form may come back from a browser's history, token and all, so the back button after
    # sending finds the same case through the token (Chromium fetches it again instead, and the same
    # answers find it: see _store_once). Pages holding what someone typed are never stored.
    page.headers["Cache-Control"] = "private, no-cache"
    return page


@router.get("/report/report.css")
def stylesheet(request: Request) -> Response:
    _enabled(request)
    if request.headers.get("if-none-match") == _STYLESHEET_ETAG:
        return Response(status_code=304, headers={"ETag": _STYLESHEET_ETAG})
    headers = {"ETag": _STYLESHEET_ETAG, "Cache-Control": "public, max-age=3600"}
    return Response(_STYLESHEET, media_type="text/css", headers=headers)


@router.post("/report", response_class=HTMLResponse)
async def post_report_form(request: Request) -> Response:
    _enabled(request)
    if media_type_of(request) != MULTIPART:
        return form_page(request, values={}, refusal=Refusal(415, {"form": NOT_A_FORM}))
    refusal = _refused_before_reading(request)
    received = MultipartWithFiles(fields=[])
    file_refusals: list[EvidenceRefused] = []
    try:
        # A refused post is still read, for its typed answers; its files are read past, never stored.
        await receive_multipart(
            request,
            file_field="evidence",
            refusals=file_refusals,
            keep_files=refusal is None,
            received=received,
            allowance=request.app.state.evidence_intake.for_new_case(anonymous=True),
        )
    except ProblemError as problem:
        # Too much text, too many fields, or a body that is not a form: what was read before is kept.
        await run_in_threadpool(received.discard)
        by_field = {error["field"]: error["message"] for error in problem.errors or []} or {
            "form": TOO_LONG if problem.status == 413 else problem.detail
        }
        refusal = refusal or Refusal(problem.status, {_on_page(name): m for name, m in by_field.items()})
        return form_page(request, values=FormData(received.fields), refusal=refusal)
    values = FormData(received.fields)
    refusal = refusal or _token_refusal(request, values.get("form_token"))
    if refusal is None and file_refusals:
        message = " ".join(dict.fromkeys(item.message for item in file_refusals))
        status = file_refusals[0].status
        refusal = Refusal(status, {"evidence": message}, {"Retry-After": "30"} if status == 503 else None)
    fields = [(name, value) for name, value in received.fields if name != "form_token"]
    if refusal is None:
        fixed_force = request.app.state.settings.form_police_force
        if fixed_force:
            fields = [(name, value) for name, value in fields if name != "police_force"] + [
                ("police_force", fixed_force)
            ]
        shaped = case_from_form_fields(fields)
        try:
            submission = parse_submission(shaped, submission_rules(request))
        except ValidationError as error:
            refusal = Refusal(422, errors_by_input(field_errors(list(error.errors()), drop_prefix=()), shaped))
    if refusal is not None:
        await run_in_threadpool(received.discard)
        return form_page(request, values=values, refusal=refusal)
    return await _store_once(request, values, ReportBody(submission, received))


def _refused_before_reading(request: Request) -> Refusal | None:
    try:
        limit_reports_from_address(request)
    except ProblemError as limited:
        seconds = (limited.headers or {}).get("Retry-After", "60")
        return Refusal(429, {"form": RATE_LIMITED.format(seconds=seconds)}, headers=limited.headers)
    if not from_this_site(request):
        return Refusal(403, {"form": CROSS_SITE})
    return None


def from_this_site(request: Request) -> bool:
    """The browser's word that the post came from our own page. Sec-Fetch-Site is set by the browser and
    cannot be changed by a page; browsers without it send Origin on every cross-site POST."""
    fetch_site = request.headers.get("sec-fetch-site")
    if fetch_site is not None:
        return fetch_site in ("same-origin", "none")
    origin = request.headers.get("origin")
    return origin is None or origin == own_origin(request)


async def _store_once(request: Request, values: FormData, body: ReportBody, *, retried: bool = False) -> Response:
    """At most one case per form token: a second post with it (double click, refresh) is sent to the first
    one's confirmation, and its files are dropped. The back button brings back a new page and token with
    the answers the browser restored, so the same answers from the same address also lead to the first
    case (within the idempotency retention): a duplicate never becomes a second case."""
    receipt = _receipt(request, values.get("form_token", ""))
    answers_key = _answers_key(request, body.submission)
    reporter = Reporter(
        actor="form:report", key_id=None, request_id=request.state.request_id, secret=receipt, scope=FORM_SCOPE
    )
    # The answers lead to this receipt from now on, kept in the case's own transaction.
    answers = remembered_answer(ANSWERS_SCOPE, answers_key, {"receipt": receipt})
    try:
        earlier = await run_in_threadpool(_earlier_receipt, request, answers_key)
        if earlier is not None:
            await body.discard_evidence()
            receipt = earlier
        else:
            await report(
                request, body, reporter, idempotency_key=receipt, fingerprint=FORM_SCOPE, also_remember=[answers]
            )
    except IntegrityError:  # the same answers, sent at the same moment with another token
        if retried:
            raise
        return await _store_once(request, values, ReportBody(body.submission), retried=True)
    except (OperationalError, PoolTimeoutError, DatabaseUnreachable, ObjectStoreUnavailable):
        await body.discard_evidence()
        return form_page(request, values=values, refusal=Refusal(503, {"form": STORE_DOWN}, {"Retry-After": "30"}))
    return RedirectResponse(f"/report/sent/{receipt}", status_code=303, headers=PAGE_HEADERS)


def _earlier_receipt(request: Request, answers_key: str) -> str | None:
    with session_scope(request.app.state.engine) as session:
        earlier = stored_response(session, scope=ANSWERS_SCOPE, idempotency_key=answers_key, caller_secret=answers_key)
    return earlier["receipt"] if earlier else None


def _answers_key(request: Request, submission) -> str:
    answers = json.dumps(submission.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))
    return _mac(request.app.state.link_secret, "answers", f"{client_address(request)}\x00{answers}")


@router.get("/report/sent/{receipt}", response_class=HTMLResponse)
def confirmation(request: Request, receipt: str) -> Response:
    """The confirmation, with the private code the first time only: after that (a refresh, the back
    button, someone else at the same computer later) it shows the reference and the advice."""
    _enabled(request)
    try:
        created, code = _confirmed_once(request, receipt)
    except (OperationalError, PoolTimeoutError, DatabaseUnreachable):
        page = TEMPLATES.get_template("unavailable.html").render(exit_url=request.app.state.settings.report_exit_url)
        return HTMLResponse(page, status_code=503, headers={**PAGE_HEADERS, "Retry-After": "30"})
    if created is None:
        page = TEMPLATES.get_template("gone.html").render(exit_url=request.app.state.settings.report_exit_url)
        return HTMLResponse(page, status_code=404, headers=PAGE_HEADERS)
    content = request.app.state.content
    under_18 = any(flag["code"] == FlagCode.under_18.value for flag in created["flags"])
    page = TEMPLATES.get_template("confirmation.html").render(
        created=created,
        reporter_token=code,
        files=len(created["evidence"]),
        next_steps=[section for slug in created["next_steps"] if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, Audience.under_18 if under_18 else Audience.adult),
        under_18=under_18,
        exit_url=request.app.state.settings.report_exit_url,
    )
    return HTMLResponse(page, status_code=200, headers=PAGE_HEADERS)


def _confirmed_once(request: Request, receipt: str) -> tuple[dict | None, str | None]:
    """The case as the API answered it, and its private code the first time only."""
    with session_scope(request.app.state.engine) as session:
        stored = stored_response(session, scope=FORM_SCOPE, idempotency_key=receipt[:80], caller_secret=receipt)
        if stored is None:
            return None, None
        created = stored["body"]  # the answer as the API gives it: {"body": ..., "headers": ...}
        code = created.pop("reporter_token", None)
        if code is not None:
            replace_response(session, scope=FORM_SCOPE, idempotency_key=receipt, caller_secret=receipt, body=stored)
            session.commit()
        return created, code


def form_page(request: Request, *, values, refusal: Refusal | None) -> Response:
    content = request.app.state.content
    settings = request.app.state.settings
    errors = FormErrors(refusal.errors, field_order(request)) if refusal else None
    page = TEMPLATES.get_template("report.html").render(
        values=values,
        errors=errors,
        questions=_questions(request),
        contact_questions=CONTACT_QUESTIONS,
        advice=[section for slug in _ADVICE if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, None),
        form_token=issue_form_token(request.app.state.link_secret, time.time()),
        max_files=settings.anonymous_evidence_max_files,
        exit_url=settings.report_exit_url,
        files_dropped=bool(values) and refusal is not None,
    )
    headers = {**PAGE_HEADERS, **((refusal.headers or {}) if refusal else {})}
    return HTMLResponse(page, status_code=refusal.status if refusal else 200, headers=headers)


# --- the form token: signed, time-limited, one case at most --------------------------------------


def issue_form_token(secret: bytes, now: float) -> str:
    payload = f"{int(now)}.{secrets.token_urlsafe(18)}"
    return f"{payload}.{_mac(secret, 'form', payload)}"


def form_token_problem(secret: bytes, token: str | None, now: float, lifetime_seconds: float) -> str | None:
    """Why this token can't be accepted (EXPIRED or UNCHECKED), or None if it can."""
    issued, _, rest = (token or "").partition(".")
    nonce, _, mac = rest.partition(".")
    if not (issued.isdigit() and nonce and hmac.compare_digest(mac, _mac(secret, "form", f"{issued}.{nonce}"))):
        return UNCHECKED
    if not (-60 <= now - int(issued) <= lifetime_seconds):
        return EXPIRED
    return None


def _token_refusal(request: Request, token: str | None) -> Refusal | None:
    lifetime = request.app.state.settings.report_form_token_lifetime.total_seconds()
    problem = form_token_problem(request.app.state.link_secret, token, time.time(), lifetime)
    return Refusal(403, {"form": problem}) if problem else None


def _receipt(request: Request, token: str) -> str:
    # Names the confirmation page: derived from the token, so each retry of one form finds the same case.
    return _mac(request.app.state.link_secret, "receipt", token)


def _mac(secret: bytes, purpose: str, payload: str) -> str:
    return hmac.new(secret, f"{purpose}\x00{payload}".encode(), "sha256").hexdigest()[:40]


# --- errors back onto the page --------------------------------------------------------------------


# Every input the page can have (the force's only when it is asked): a problem with any other name is the form's.
_INPUTS = {question.name for question in report_questions(ask_police_force=True) + CONTACT_QUESTIONS} | {"evidence"}


def _on_page(name: str) -> str:
    return name if name in _INPUTS else "form"


def errors_by_input(errors: list[dict[str, str]], shaped: dict) -> dict[str, str]:
    """Problems in the JSON-shaped case (`identifiers[1].value`) back on the form inputs they came from."""
    by_field: dict[str, str] = {}
    for error in errors:
        name = _on_page(form_name_of(error["field"], shaped))
        by_field.setdefault(name, _FORM_MESSAGES.get((name, error["message"]), error["message"]))
    return by_field


# The API's "This is required." names a field; on the page, say what to do (GOV.UK error messages).
_FORM_MESSAGES = {
    ("reporter.relationship", "This is required."): "Select who is making this report",
    ("account", "This is required."): "Tell us what happened. A few words is enough",
    ("victim.date_of_birth", "Give a date like 2010-04-23."): "Enter a real date of birth, like 23 April 2010",
    ("deadline_at", "Give a date and time like 2026-11-20T18:30:00Z."): "Enter the deadline as a date and a time",
}
