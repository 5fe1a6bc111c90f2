"""/report/status: the reporter's way back in, with the reference and private code from the confirmation.

Server-rendered, no JavaScript. A wrong reference and a wrong code get the same answer, and every try
counts against a per-address limit, right or wrong. Once in, the page shows the case's status in plain
words, its advice and helplines, and lets the reporter add evidence and offender details with the same
rules, limits and audit as the API (the actor is the case's reporter, as with the reporter token).
The page holds a short-lived signed pass for that, never the private code itself.

Every post answers with a redirect to a page (POST-redirect-GET), so a refresh or the back button never
sends anything again, and each form carries a token of its own: one form adds at most once, and sending
it again (a double click, a resubmitted post) leads to the same result. A post that is refused (the pass
ran out, the database is down, it came from another site) answers with a page that keeps what was typed
and asks to send it again.
"""

from __future__ import annotations

import hmac
import time

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from pydantic import ValidationError
from sqlalchemy import func
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError
from sqlmodel import select
from starlette.datastructures import FormData

from service.api.bodies import MULTIPART, URLENCODED, media_type_of, parse_urlencoded, read_bounded
from service.api.form_fields import case_from_form_fields
from service.api.form_questions import identifier_questions
from service.api.problems import ProblemError, field_errors
from service.api.ratelimit import limit_report_status_tries, limit_reporter_additions, limit_status_additions
from service.api.report_form import (
    PAGE_HEADERS,
    TEMPLATES,
    FormErrors,
    form_token_problem,
    from_this_site,
    issue_form_token,
)
from service.api.signing import sign, verify
from service.api.uploads import MultipartWithFiles, receive_multipart
from service.domain.cases import MAX_LIST, IdentifierInput
from service.domain.guidance import Audience, for_audience
from service.domain.reference import canonical_reference
from service.domain.urgency import FlagCode, UrgencyPolicy
from service.domain.workflow import CaseStatus
from service.evidence_intake import Contributor, EvidenceIntake
from service.linking import add_identifiers
from service.storage.audit import record_audit_event
from service.storage.cases import find_case
from service.storage.database import DatabaseUnreachable, session_scope
from service.storage.evidence import EvidenceRefused
from service.storage.idempotency import replace_response, run_once, stored_response
from service.storage.keys import find_case_id_by_reporter_token
from service.storage.models import Case, Evidence, utc_now
from service.storage.objects import ObjectStoreUnavailable

router = APIRouter(include_in_schema=False)

_PASS = "report-status"  # noqa: S105 - signed case id: lets a form add to that case until it runs out
_VIEW = "report-status-view"  # signed case id, and the receipt of an addition to show once
_ADDED_SCOPE = "report-status-added"
_DATABASE_DOWN = (OperationalError, PoolTimeoutError, DatabaseUnreachable)
_RETRY = {"Retry-After": "30"}

NOT_FOUND = (
    "We couldn't find a report with that reference and private code. Check both and try again: the "
    "reference looks like 7KQM-X4TR-9PZC and the code starts with irt_."
)
SESSION_EXPIRED = (
    "This page was open for a long time. For your safety, enter your reference and private code again, then send."
)
LOOKUP_EXPIRED = "This page was open for a long time. For your safety, enter your reference and private code again."
CROSS_SITE = "This was sent from another website, so it was not accepted. Check it here and send it from this page."
UNCHECKED = "We couldn't check that this form came from this website. Check what you typed here and send it again."
DATABASE_DOWN = (
    "We couldn't reach your report just now. Nothing has been lost from this page: wait a minute, then send it again."
)
DATABASE_DOWN_LOOKUP = "We couldn't open your report just now. Wait a minute, then try again."
TOO_MANY_TRIES = "Too many tries from your connection. Wait {seconds} seconds, then try again."
_LOOKUP_DOWN = {"errors": {"form": DATABASE_DOWN_LOOKUP}, "status": 503, "headers": _RETRY}
# What each step of the workflow means to the person who reported (a test holds every status to words).
STATUS_WORDS = {
    CaseStatus.received: "We have received your report. It is waiting to be looked at by the police.",
    CaseStatus.triaged: "Your report has been looked at, and is being dealt with.",
    CaseStatus.assigned: "Your report has been given to an officer, who is working on it.",
    CaseStatus.closed: "Your report has been closed. If something new happens, you can still add to it here, or "
    "make a new report.",
}
_IDENTIFIER_NAMES = [question.name for question in identifier_questions()]


def _enabled(request: Request) -> None:
    if not request.app.state.settings.report_form_enabled:
        raise ProblemError(404, "There is nothing at this address.")


@router.get("/report/status", response_class=HTMLResponse)
def status_lookup(request: Request) -> Response:
    _enabled(request)
    return _lookup_page(request, reference="", errors=None, status=200)


@router.post("/report/status", response_class=HTMLResponse)
async def status_open(request: Request) -> Response:
    _enabled(request)
    fields = await _small_form(request)
    reference = fields.get("reference", "").strip()[:40]
    too_many = _tries_refused(request)
    if too_many is not None:
        return _lookup_page(request, reference=reference, errors={"form": too_many[0]}, status=429, headers=too_many[1])
    if not from_this_site(request):
        return _lookup_page(request, reference=reference, errors={"form": CROSS_SITE}, status=403)
    try:
        case_id = await run_in_threadpool(_case_id_for, request, reference, fields.get("code", "").strip()[:200])
    except _DATABASE_DOWN:
        return _lookup_page(request, reference=reference, **_LOOKUP_DOWN)
    if case_id is None:
        return _lookup_page(request, reference=reference, errors={"reference": NOT_FOUND}, status=404)
    return _to_case_page(request, case_id, receipt=None)


def _tries_refused(request: Request) -> tuple[str, dict[str, str] | None] | None:
    try:
        limit_report_status_tries(request)
    except ProblemError as limited:
        return TOO_MANY_TRIES.format(seconds=(limited.headers or {}).get("Retry-After", "60")), limited.headers
    return None


def _case_id_for(request: Request, reference: str, code: str) -> int | None:
    with session_scope(request.app.state.engine) as session:
        case = _case_for(session, reference, code)
        return case.id if case is not None else None


def _case_for(session, reference: str, code: str) -> Case | None:
    """The case only if the code is this case's private code: both lookups run whatever the input, so a
    wrong reference and a wrong code cost the same and answer the same."""
    canonical = canonical_reference(reference) or ""
    case_id = find_case_id_by_reporter_token(session, code) if code else None
    case = find_case(session, canonical) if canonical else None
    return case if case is not None and case_id == case.id else None


def _to_case_page(request: Request, case_id: int, receipt: str | None) -> Response:
    # The page's address is its own short-lived pass: a refresh or the back button is a GET, never a post.
    lifetime = request.app.state.settings.report_status_session_seconds
    view = sign(request.app.state.link_secret, _VIEW, f"{case_id}.{receipt or ''}", lifetime)
    return RedirectResponse(f"/report/status/case/{view}", status_code=303, headers=PAGE_HEADERS)


@router.get("/report/status/case/{view}", response_class=HTMLResponse)
def status_case(request: Request, view: str) -> Response:
    _enabled(request)
    case_id, _, receipt = (verify(request.app.state.link_secret, _VIEW, view) or "").partition(".")
    if not case_id.isdigit():
        return _lookup_page(request, reference="", errors={"form": LOOKUP_EXPIRED}, status=403)
    try:
        with session_scope(request.app.state.engine) as session:
            case = session.get(Case, int(case_id))
            if case is None:  # erased since
                return _lookup_page(request, reference="", errors={"reference": NOT_FOUND}, status=404)
            notice = _result_once(session, receipt) if receipt else None
            actor = f"reporter:{case.id}"
            record_audit_event(
                session, actor=actor, action="case.read", case_id=case.id, request_id=_request_id(request)
            )
            session.commit()
            return _status_page(request, session, case, notice=notice, errors=None, values={}, status=200)
    except _DATABASE_DOWN:
        return _lookup_page(request, reference="", **_LOOKUP_DOWN)


def _result_once(session, receipt: str) -> str | None:
    """What an addition did, the first time its page is shown; a refresh shows the page without it."""
    result = stored_response(session, scope=_ADDED_SCOPE, idempotency_key=receipt, caller_secret=receipt)
    if result is None or result.get("shown"):
        return None
    replace_response(
        session, scope=_ADDED_SCOPE, idempotency_key=receipt, caller_secret=receipt, body={**result, "shown": True}
    )
    return result["notice"]


# --- adding to the case ---------------------------------------------------------------------------


@router.post("/report/status/evidence", response_class=HTMLResponse)
async def status_add_evidence(request: Request) -> Response:
    _enabled(request)
    if media_type_of(request) != MULTIPART:
        return _again_page(request, "evidence", FormData(), {"form": UNCHECKED}, status=415)
    cross_site = not from_this_site(request)
    limited = None if cross_site else _limited(limit_status_additions, request)
    refusals: list[EvidenceRefused] = []
    received = MultipartWithFiles(fields=[])
    try:
        # A refused post is still read, for its pass and what was typed; its files are read past, never stored.
        await receive_multipart(
            request,
            file_field="evidence",
            refusals=refusals,
            keep_files=not cross_site and limited is None,
            received=received,
        )
    except ProblemError as problem:
        await run_in_threadpool(received.discard)
        values = FormData(received.fields)
        return await _refused(request, "evidence", values, {"evidence": problem.detail}, problem.status)
    values = FormData(received.fields)
    if cross_site:
        return _again_page(request, "evidence", values, {"form": CROSS_SITE}, status=403)
    if limited is not None:
        return await _refused(request, "evidence", values, {"evidence": limited.detail}, 429, limited.headers)
    if refusals or not received.files:
        await run_in_threadpool(received.discard)
        message = " ".join(dict.fromkeys(r.message for r in refusals)) or "Choose at least one file to add."
        status = refusals[0].status if refusals else 422
        return await _refused(request, "evidence", values, {"evidence": message}, status)
    try:
        return await _add(request, "evidence", values, received)
    except BaseException:
        await run_in_threadpool(received.discard)
        raise


@router.post("/report/status/identifiers", response_class=HTMLResponse)
async def status_add_identifiers(request: Request) -> Response:
    _enabled(request)
    if media_type_of(request) != URLENCODED:
        return _again_page(request, "identifiers", FormData(), {"form": UNCHECKED}, status=415)
    values = await _small_form(request)
    if not from_this_site(request):
        return _again_page(request, "identifiers", values, {"form": CROSS_SITE}, status=403)
    limited = _limited(limit_status_additions, request)
    if limited is not None:
        errors = {_IDENTIFIER_NAMES[0]: limited.detail}
        return await _refused(request, "identifiers", values, errors, 429, limited.headers)
    inputs, errors = _identifiers_typed(values)
    if errors:
        return await _refused(request, "identifiers", values, errors, 422)
    return await _add(request, "identifiers", values, inputs)


def _limited(limit, *arguments) -> ProblemError | None:
    """A rate limit's refusal, to show on the page rather than as a problem document."""
    try:
        limit(*arguments)
    except ProblemError as refused:
        return refused
    return None


class _Refused(Exception):
    """An addition refused once the case is known (its limit, its evidence quota): shown on its page."""

    def __init__(self, errors: dict[str, str], status: int, headers: dict[str, str] | None = None) -> None:
        super().__init__(status)
        self.errors, self.status, self.headers = errors, status, headers


def _identifiers_typed(values: FormData) -> tuple[list[IdentifierInput], dict[str, str]]:
    """The offender details typed, read as the report form reads them, each checked like the API."""
    typed = [(name, value) for name, value in values.multi_items() if name in _IDENTIFIER_NAMES]
    items = case_from_form_fields(typed).get("identifiers", [])
    errors: dict[str, str] = {}
    inputs: list[IdentifierInput] = []
    for item in items:
        try:
            inputs.append(IdentifierInput.model_validate(item))
        except ValidationError as error:
            errors.setdefault(item["type"], field_errors(list(error.errors()), drop_prefix=())[0]["message"])
    if not items:
        errors[_IDENTIFIER_NAMES[0]] = "Fill in at least one of the details below."
    elif len(items) > MAX_LIST:
        errors[_IDENTIFIER_NAMES[0]] = f"Add at most {MAX_LIST} details at a time."
    return inputs, errors


async def _refused(
    request: Request, kind: str, values: FormData, errors: dict[str, str], status: int, headers=None
) -> Response:
    """A mistake in what was sent: the case's page with it marked, or, without a good pass, the page that
    asks for the reference and code again, keeping what was typed."""
    case_id = _case_id_from_pass(request, values.get("pass"))
    if case_id is None and (values.get("reference") or values.get("code")):
        # sent from the page asking for them
        return _again_page(request, kind, values, errors, status=status, headers=headers)
    if case_id is None:
        return _again_page(request, kind, values, {"form": SESSION_EXPIRED, **errors}, status=403)
    try:
        page = await run_in_threadpool(_case_page_with_errors, request, case_id, kind, values, errors, status)
        page.headers.update(headers or {})
        return page
    except _DATABASE_DOWN:
        return _again_page(request, kind, values, {"form": DATABASE_DOWN, **errors}, status=503, headers=_RETRY)


def _case_page_with_errors(request, case_id: int, kind: str, values: FormData, errors, status: int) -> Response:
    with session_scope(request.app.state.engine) as session:
        case = session.get(Case, case_id)
        if case is None:
            return _again_page(request, kind, values, {"form": SESSION_EXPIRED, **errors}, status=403)
        kept = values if kind == "identifiers" else {}
        return _status_page(request, session, case, notice=None, errors=errors, values=kept, status=status)


async def _add(request: Request, kind: str, values: FormData, what) -> Response:
    """Add to the case the pass (or the reference and code) names, at most once per form token."""
    case_id = _case_id_from_pass(request, values.get("pass"))
    asked_for_code = case_id is None
    if asked_for_code and not (values.get("reference") or values.get("code")):
        await _drop(what)
        return _again_page(request, kind, values, {"form": SESSION_EXPIRED}, status=403)
    if asked_for_code and (too_many := _tries_refused(request)) is not None:
        await _drop(what)
        return _again_page(request, kind, values, {"form": too_many[0]}, status=429, headers=too_many[1])
    lifetime = request.app.state.settings.report_form_token_lifetime.total_seconds()
    token = values.get("form_token") or ""
    if form_token_problem(request.app.state.link_secret, token, time.time(), lifetime):
        await _drop(what)
        return _again_page(request, kind, values, {"form": UNCHECKED}, status=403)
    try:
        outcome = await run_in_threadpool(_add_once, request, kind, values, token, case_id, what)
    except _Refused as refused:
        await _drop(what)
        return await _refused(request, kind, values, refused.errors, refused.status, refused.headers)
    except (*_DATABASE_DOWN, ObjectStoreUnavailable):
        await _drop(what)
        return _again_page(request, kind, values, {"form": DATABASE_DOWN}, status=503, headers=_RETRY)
    if outcome is None:
        return _again_page(request, kind, values, {"reference": NOT_FOUND}, status=404)
    return _to_case_page(request, *outcome)


async def _drop(what) -> None:
    if isinstance(what, MultipartWithFiles):
        await run_in_threadpool(what.discard)


def _add_once(request: Request, kind: str, values: FormData, token: str, case_id: int | None, what):
    """(case id, receipt) once added, or None if the reference and code name no case."""
    with session_scope(request.app.state.engine) as session:
        if case_id is None:
            case = _case_for(session, values.get("reference", "").strip()[:40], values.get("code", "").strip()[:200])
        else:
            case = session.get(Case, case_id)
        if case is None:
            _drop_now(what)
            return None
        limited = _limited(limit_reporter_additions, request, case.id)  # shared with the API's reporter token
        if limited is not None:
            field = "evidence" if kind == "evidence" else _IDENTIFIER_NAMES[0]
            raise _Refused({field: limited.detail}, limited.status, limited.headers)
        receipt = _receipt(request, case.id, token)

        def add() -> tuple[int, dict]:
            count = (
                _keep_files(request, session, case, what)
                if kind == "evidence"
                else _keep_identifiers(request, session, case, what)
            )
            return 201, {"notice": _thanks(kind, count), "shown": False}

        once = {"scope": _ADDED_SCOPE, "idempotency_key": receipt, "fingerprint": _ADDED_SCOPE}
        try:
            result = run_once(session, **once, caller_secret=receipt, work=add)
        except EvidenceRefused as refusal:  # past the case's evidence quota: nothing of it is kept
            raise _Refused({"evidence": refusal.message}, refusal.status) from None
        if result.replayed:  # the same form again: what it added is not added twice
            _drop_now(what)
        session.commit()
        return case.id, receipt


def _drop_now(what) -> None:
    if isinstance(what, MultipartWithFiles):
        what.discard()


def _keep_files(request: Request, session, case: Case, received: MultipartWithFiles) -> int:
    intake: EvidenceIntake = request.app.state.evidence_intake
    return len(
        intake.add_files(session, case.id, received.files, Contributor(f"reporter:{case.id}", _request_id(request)))
    )


def _keep_identifiers(request: Request, session, case: Case, inputs: list[IdentifierInput]) -> int:
    settings = request.app.state.settings
    policy = UrgencyPolicy(recall_window=settings.recall_window, deadline_window=settings.deadline_window)
    stored = add_identifiers(session, case, inputs, now=utc_now(), policy=policy)
    record_audit_event(
        session,
        actor=f"reporter:{case.id}",
        action="identifiers.add",
        case_id=case.id,
        request_id=_request_id(request),
        detail={"count": len(stored)},
    )
    return len(stored)


def _thanks(kind: str, count: int) -> str:
    if kind == "evidence":
        return f"Thank you. {count} {'file was' if count == 1 else 'files were'} added to your report."
    return f"Thank you. {count} {'detail was' if count == 1 else 'details were'} added to your report."


def _receipt(request: Request, case_id: int, token: str) -> str:
    # One form token, one addition to one case: a repeat of the post finds the first one's result.
    message = f"status-receipt\x00{case_id}\x00{token}".encode()
    return hmac.new(request.app.state.link_secret, message, "sha256").hexdigest()[:40]


def _case_id_from_pass(request: Request, token: str | None) -> int | None:
    subject = verify(request.app.state.link_secret, _PASS, token or "")
    return int(subject) if subject and subject.isdigit() else None


def _request_id(request: Request) -> str | None:
    return getattr(request.state, "request_id", None)


async def _small_form(request: Request) -> FormData:
    settings = request.app.state.settings
    if media_type_of(request) != URLENCODED:
        return FormData()
    try:
        raw = await read_bounded(request, settings.max_body_bytes)
        return FormData(parse_urlencoded(raw, settings.max_form_fields))
    except ProblemError:
        return FormData()


# --- pages ----------------------------------------------------------------------------------------


def _lookup_page(request: Request, *, reference: str, errors: dict[str, str] | None, status: int, headers=None):
    page = TEMPLATES.get_template("status_lookup.html").render(
        reference=reference,
        errors=FormErrors(errors, ["reference", "code"]) if errors else None,
        exit_url=request.app.state.settings.report_exit_url,
        helplines=for_audience(request.app.state.content.support_services, None),
    )
    return HTMLResponse(page, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _again_page(request: Request, kind: str, values, errors: dict[str, str], *, status: int, headers=None) -> Response:
    """What was sent, back on a page of its own to send again: with the pass if it still holds, else
    asking for the reference and code. Typed details are kept; files must be chosen again."""
    settings = request.app.state.settings
    case_id = _case_id_from_pass(request, values.get("pass"))
    ask_code = case_id is None
    inputs = ["reference", "code"] if ask_code else []
    inputs += ["evidence"] if kind == "evidence" else _IDENTIFIER_NAMES
    page = TEMPLATES.get_template("status_again.html").render(
        kind=kind,
        values=values,
        reference=values.get("reference", "").strip()[:40],
        errors=FormErrors(errors, inputs),
        ask_code=ask_code,
        pass_token=_pass_for(request, case_id) if case_id is not None else None,
        form_token=issue_form_token(request.app.state.link_secret, time.time()),
        identifier_questions=identifier_questions(),
        max_files=settings.evidence_max_files,
        exit_url=settings.report_exit_url,
        helplines=for_audience(request.app.state.content.support_services, None),
    )
    return HTMLResponse(page, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _pass_for(request: Request, case_id: int) -> str:
    lifetime = request.app.state.settings.report_status_session_seconds
    return sign(request.app.state.link_secret, _PASS, str(case_id), lifetime)


def _status_page(request: Request, session, case: Case, *, notice, errors, values, status: int) -> Response:
    content = request.app.state.content
    settings = request.app.state.settings
    under_18 = any(flag.get("code") == FlagCode.under_18.value for flag in case.flags)
    files = session.exec(select(func.count()).select_from(Evidence).where(Evidence.case_id == case.id)).one()
    page = TEMPLATES.get_template("status.html").render(
        case=case,
        status_words=STATUS_WORDS[CaseStatus(case.status)],
        files=files,
        notice=notice,
        errors=FormErrors(errors, ["evidence", *_IDENTIFIER_NAMES]) if errors else None,
        values=values,
        identifier_questions=identifier_questions(),
        pass_token=_pass_for(request, case.id),
        # Each form its own token: sending one twice adds once; the other form is still fresh.
        evidence_token=issue_form_token(request.app.state.link_secret, time.time()),
        identifiers_token=issue_form_token(request.app.state.link_secret, time.time()),
        next_steps=[section for slug in case.next_steps if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, Audience.under_18 if under_18 else Audience.adult),
        under_18=under_18,
        max_files=settings.evidence_max_files,
        exit_url=settings.report_exit_url,
    )
    return HTMLResponse(page, status_code=status, headers=PAGE_HEADERS)
