"""/report/status: the reporter's way back in, with the reference and private code from the confirmation.

Server-rendered, no JavaScript. A wrong reference and a wrong code get the same answer, and every try
counts against a per-address limit, right or wrong. Once in, the page shows the case's status in plain
words, its advice and helplines, and lets the reporter add evidence and offender details with the same
rules, limits and audit as the API (the actor is the case's reporter, as with the reporter token).
The page holds a short-lived signed pass for that, never the private code itself.
"""

from __future__ import annotations

from fastapi import APIRouter, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import HTMLResponse, Response
from pydantic import ValidationError
from sqlalchemy import func
from sqlmodel import select
from starlette.datastructures import FormData

from service.api.bodies import MULTIPART, URLENCODED, media_type_of, parse_urlencoded, read_bounded
from service.api.form_questions import IDENTIFIER_QUESTIONS
from service.api.problems import ProblemError, field_errors
from service.api.ratelimit import limit_report_status_tries, limit_reporter_additions, limit_status_additions
from service.api.report_form import PAGE_HEADERS, TEMPLATES, FormErrors, from_this_site
from service.api.signing import sign, verify
from service.api.uploads import MultipartWithFiles, receive_multipart
from service.domain.cases import MAX_LIST, IdentifierInput
from service.domain.guidance import Audience, for_audience
from service.domain.identifiers import IdentifierType
from service.domain.reference import canonical_reference
from service.domain.urgency import FlagCode, UrgencyPolicy
from service.evidence_intake import Contributor, EvidenceIntake
from service.linking import add_identifiers
from service.storage.audit import record_audit_event
from service.storage.cases import find_case
from service.storage.database import session_scope
from service.storage.evidence import EvidenceRefused
from service.storage.keys import find_case_id_by_reporter_token
from service.storage.models import Case, Evidence, utc_now

router = APIRouter(include_in_schema=False)

_SIGNED_PURPOSE = "report-status"
NOT_FOUND = (
    "We couldn't find a report with that reference and private code. Check both and try again: the "
    "reference looks like 7KQM-X4TR-9PZC and the code starts with irt_."
)
_STATUS_WORDS = {
    "received": "We have received your report. It is waiting to be looked at by the police.",
    "triaged": "Your report has been looked at, and is being dealt with.",
    "assigned": "Your report has been given to an officer, who is working on it.",
    "closed": "Your report has been closed. If something new happens, you can still add to it here, or "
    "make a new report.",
}


_STATUS_FIELDS = ["evidence", *(kind.value for kind, _, _ in IDENTIFIER_QUESTIONS), "username.platform"]


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
    try:
        limit_report_status_tries(request)
    except ProblemError as limited:
        wait = (limited.headers or {}).get("Retry-After", "60")
        message = f"Too many tries from your connection. Wait {wait} seconds, then try again."
        return _lookup_page(request, reference=reference, errors={"form": message}, status=429, headers=limited.headers)
    if not from_this_site(request):
        return _lookup_page(request, reference=reference, errors={"form": _CROSS_SITE}, status=403)
    return await run_in_threadpool(_open_case, request, reference, fields.get("code", "").strip()[:200])


_CROSS_SITE = "This was sent from another website, so it was not accepted. Enter your reference and code here."


def _open_case(request: Request, reference: str, code: str) -> Response:
    with session_scope(request.app.state.engine) as session:
        case = _case_for(session, reference, code)
        if case is None:
            return _lookup_page(request, reference=reference, errors={"reference": NOT_FOUND}, status=404)
        record_audit_event(
            session,
            actor=f"reporter:{case.id}",
            action="case.read",
            case_id=case.id,
            request_id=request.state.request_id,
        )
        session.commit()
        return _status_page(request, session, case, notice=None, errors=None, values={}, status=200)


def _case_for(session, reference: str, code: str) -> Case | None:
    """The case only if the code is this case's private code: both lookups run whatever the input, so a
    wrong reference and a wrong code cost the same and answer the same."""
    canonical = canonical_reference(reference) or ""
    case_id = find_case_id_by_reporter_token(session, code) if code else None
    case = find_case(session, canonical) if canonical else None
    return case if case is not None and case_id == case.id else None


@router.post("/report/status/evidence", response_class=HTMLResponse)
async def status_add_evidence(request: Request) -> Response:
    _enabled(request)
    if media_type_of(request) != MULTIPART or not from_this_site(request):
        return _lookup_page(request, reference="", errors={"form": _CROSS_SITE}, status=403)
    limited = _limited(limit_status_additions, request)
    refusals: list[EvidenceRefused] = []
    received = MultipartWithFiles(fields=[])
    try:
        # When limited, the body is still read for the page's pass, and its files are read past, never stored.
        await receive_multipart(
            request, file_field="evidence", refusals=refusals, received=received, keep_files=limited is None
        )
    except ProblemError as problem:
        await run_in_threadpool(received.discard)
        return await run_in_threadpool(_after_add, request, FormData(received.fields), {"evidence": problem.detail})
    values = FormData(received.fields)
    if limited is not None:
        return await run_in_threadpool(_after_add, request, values, {"evidence": limited.detail}, limited=limited)
    if refusals or not received.files:
        await run_in_threadpool(received.discard)
        message = " ".join(dict.fromkeys(r.message for r in refusals)) or "Choose at least one file to add."
        return await run_in_threadpool(_after_add, request, values, {"evidence": message}, refusals)
    try:
        return await run_in_threadpool(_after_add, request, values, None, [], received)
    except BaseException:
        await run_in_threadpool(received.discard)
        raise


def _limited(limit, *arguments) -> ProblemError | None:
    """A rate limit's refusal, to show on the page rather than as a problem document."""
    try:
        limit(*arguments)
    except ProblemError as refused:
        return refused
    return None


@router.post("/report/status/identifiers", response_class=HTMLResponse)
async def status_add_identifiers(request: Request) -> Response:
    _enabled(request)
    if media_type_of(request) != URLENCODED or not from_this_site(request):
        return _lookup_page(request, reference="", errors={"form": _CROSS_SITE}, status=403)
    limited = _limited(limit_status_additions, request)
    fields = await _small_form(request)
    return await run_in_threadpool(_add_identifiers, request, fields, limited)


def _add_identifiers(request: Request, fields: FormData, limited: ProblemError | None) -> Response:
    typed = [
        (name, value.strip())
        for name, value in fields.multi_items()
        if name in IdentifierType.__members__ and isinstance(value, str) and value.strip()
    ]
    platforms = [value for name, value in fields.multi_items() if name == "username.platform" and value.strip()]
    data = [
        {"type": name, "value": value, **({"platform": platforms[0]} if name == "username" and platforms else {})}
        for name, value in typed
    ]
    errors: dict[str, str] = {}
    inputs: list[IdentifierInput] = []
    for (name, _), item in zip(typed, data, strict=True):
        try:
            inputs.append(IdentifierInput.model_validate(item))
        except ValidationError as error:
            errors.setdefault(name, field_errors(list(error.errors()), drop_prefix=())[0]["message"])
    if not typed:
        errors["profile_url"] = "Fill in at least one of the details below."
    if len(typed) > MAX_LIST:
        errors["profile_url"] = f"Add at most {MAX_LIST} details at a time."
    with session_scope(request.app.state.engine) as session:
        case = _case_from_pass(request, session, fields.get("pass"))
        if case is None:
            return _lookup_page(request, reference="", errors={"form": _SESSION_EXPIRED}, status=403)
        limited = limited or _limited(limit_reporter_additions, request, case.id)
        if limited is not None:
            errors = {"profile_url": limited.detail}
            return _status_page(
                request, session, case, notice=None, errors=errors, values=fields, status=429, headers=limited.headers
            )
        if errors:
            return _status_page(request, session, case, notice=None, errors=errors, values=fields, status=422)
        settings = request.app.state.settings
        policy = UrgencyPolicy(recall_window=settings.recall_window, deadline_window=settings.deadline_window)
        stored = add_identifiers(session, case, inputs, now=utc_now(), policy=policy)
        record_audit_event(
            session,
            actor=f"reporter:{case.id}",
            action="identifiers.add",
            case_id=case.id,
            request_id=request.state.request_id,
            detail={"count": len(stored)},
        )
        session.commit()
        notice = (
            f"Thank you. {len(stored)} {'detail was' if len(stored) == 1 else 'details were'} added to your report."
        )
        return _status_page(request, session, case, notice=notice, errors=None, values={}, status=201)


_SESSION_EXPIRED = "This page was open for a long time. For your safety, enter your reference and private code again."


def _after_add(
    request: Request,
    values: FormData,
    errors: dict[str, str] | None,
    refusals: list[EvidenceRefused] | None = None,
    received: MultipartWithFiles | None = None,
    *,
    limited: ProblemError | None = None,
) -> Response:
    with session_scope(request.app.state.engine) as session:
        case = _case_from_pass(request, session, values.get("pass"))
        if case is None:
            if received is not None:
                received.discard()
            return _lookup_page(request, reference="", errors={"form": _SESSION_EXPIRED}, status=403)
        limited = limited or (_limited(limit_reporter_additions, request, case.id) if received else None)
        if limited is not None:
            if received is not None:
                received.discard()
            errors = {"evidence": limited.detail}
        if errors or received is None:
            status = limited.status if limited else refusals[0].status if refusals else 422
            headers = limited.headers if limited else None
            return _status_page(
                request, session, case, notice=None, errors=errors, values={}, status=status, headers=headers
            )
        intake: EvidenceIntake = request.app.state.evidence_intake
        reporter = Contributor(f"reporter:{case.id}", request.state.request_id)
        try:
            rows = intake.keep_files(session, case.id, received.files, reporter)
        except EvidenceRefused as refusal:  # past the case's quota
            received.discard()
            errors = {"evidence": refusal.message}
            return _status_page(request, session, case, notice=None, errors=errors, values={}, status=refusal.status)
        notice = f"Thank you. {len(rows)} {'file was' if len(rows) == 1 else 'files were'} added to your report."
        return _status_page(request, session, case, notice=notice, errors=None, values={}, status=201)


def _case_from_pass(request: Request, session, token: str | None) -> Case | None:
    subject = verify(request.app.state.link_secret, _SIGNED_PURPOSE, token or "")
    return session.get(Case, int(subject)) if subject and subject.isdigit() else None


async def _small_form(request: Request) -> FormData:
    settings = request.app.state.settings
    if media_type_of(request) != URLENCODED:
        return FormData()
    try:
        raw = await read_bounded(request, settings.max_body_bytes)
        return FormData(parse_urlencoded(raw, settings.max_form_fields))
    except ProblemError:
        return FormData()


def _lookup_page(request: Request, *, reference: str, errors: dict[str, str] | None, status: int, headers=None):
    page = TEMPLATES.get_template("status_lookup.html").render(
        reference=reference,
        errors=FormErrors(errors, ["reference", "code"]) if errors else None,
        exit_url=request.app.state.settings.report_exit_url,
        helplines=for_audience(request.app.state.content.support_services, None),
    )
    return HTMLResponse(page, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})


def _status_page(
    request: Request, session, case: Case, *, notice, errors, values, status: int, headers=None
) -> Response:
    content = request.app.state.content
    settings = request.app.state.settings
    under_18 = any(flag.get("code") == FlagCode.under_18.value for flag in case.flags)
    files = session.exec(select(func.count()).select_from(Evidence).where(Evidence.case_id == case.id)).one()
    page = TEMPLATES.get_template("status.html").render(
        case=case,
        status_words=_STATUS_WORDS.get(case.status, case.status),
        files=files,
        notice=notice,
        errors=FormErrors(errors, _STATUS_FIELDS) if errors else None,
        values=values,
        identifier_questions=IDENTIFIER_QUESTIONS,
        pass_token=sign(
            request.app.state.link_secret, _SIGNED_PURPOSE, str(case.id), settings.report_status_session_seconds
        ),
        next_steps=[section for slug in case.next_steps if (section := content.section(slug)) is not None],
        helplines=for_audience(content.support_services, Audience.under_18 if under_18 else Audience.adult),
        under_18=under_18,
        max_files=settings.evidence_max_files,
        exit_url=settings.report_exit_url,
    )
    return HTMLResponse(page, status_code=status, headers={**PAGE_HEADERS, **(headers or {})})
