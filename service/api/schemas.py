"""Response shapes shared by the case and identifier routers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from service.storage.models import Case, Identifier

Priority = Literal["normal", "high", "urgent"]
Status = Literal["received", "triaged", "assigned", "closed"]


class FlagOut(BaseModel):
    code: str = Field(examples=["under_18"])
    reason: str = Field(examples=["The victim is under 18: ..."])


class StoredIdentifier(BaseModel):
    type: str = Field(examples=["mtcn"])
    value: str = Field(description="As given.", examples=["123-456-7890"])
    normalized: str = Field(description="Canonical form, used to link cases.", examples=["1234567890"])
    platform: str | None = Field(default=None, examples=[None])
    handle: str | None = Field(default=None, examples=[None])
    created_at: datetime

    @classmethod
    def of(cls, row: Identifier) -> StoredIdentifier:
        return cls(
            type=row.type,
            value=row.value,
            normalized=row.normalized,
            platform=row.platform,
            handle=row.handle,
            created_at=row.created_at,
        )


class EvidenceSummary(BaseModel):
    id: str
    filename: str
    content_type: str = Field(description="Judged from the bytes, not the name.")
    size: int
    sha256: str
    received_at: datetime

    @classmethod
    def of(cls, row: Any) -> EvidenceSummary:
        return cls(
            id=row.id,
            filename=row.filename,
            content_type=row.content_type,
            size=row.size,
            sha256=row.sha256,
            received_at=row.received_at,
        )


class CaseCreated(BaseModel):
    reference: str = Field(
        description="Quote this in every contact. The last character is a check character.", examples=["7KQM-X4TR-9PZC"]
    )
    reporter_token: str = Field(
        description="Shown once: lets the reporter read the case and add to it.", examples=["irt_3q2…"]
    )
    status: Status = "received"
    priority: Priority = Field(examples=["urgent"])
    flags: list[FlagOut]
    next_steps: list[str] = Field(
        description="Guidance slugs that fit this case, most pressing first.",
        examples=[["support-services", "under-18", "dont-panic"]],
    )
    identifiers: list[StoredIdentifier]
    evidence: list[EvidenceSummary] = Field(default_factory=list, description="Files sent with the report.")
    created_at: datetime


class CaseForReporter(BaseModel):
    """What the reporter sees: the status, and what they told us."""

    view: Literal["reporter"] = "reporter"
    reference: str
    status: Status
    next_steps: list[str]
    submission: dict[str, Any] = Field(description="The report as submitted.")
    identifiers: list[StoredIdentifier]
    created_at: datetime
    updated_at: datetime


class CaseForAnalyst(CaseForReporter):
    """Everything about the case."""

    view: Literal["analyst"] = "analyst"  # type: ignore[assignment]
    priority: Priority
    flags: list[FlagOut]
    police_force: str | None
    submitted_by_key_id: str | None
    assigned_to: str | None = None
    version: int = Field(description="Also the ETag: send it back in If-Match when changing the case.")


def case_etag(version: int) -> str:
    """Strong, and the case's version: If-Match compares it to refuse lost updates."""
    return f'"v{version}"'


def case_for_reporter(case: Case, identifiers: list[Identifier]) -> CaseForReporter:
    return CaseForReporter(**_common(case, identifiers))


def case_for_analyst(case: Case, identifiers: list[Identifier]) -> CaseForAnalyst:
    return CaseForAnalyst(
        **_common(case, identifiers),
        priority=case.priority,
        flags=[FlagOut(**flag) for flag in case.flags],
        police_force=case.police_force,
        submitted_by_key_id=case.submitted_by_key_id,
        assigned_to=case.assigned_to,
        version=case.version,
    )


def _common(case: Case, identifiers: list[Identifier]) -> dict[str, Any]:
    return {
        "reference": case.reference,
        "status": case.status,
        "next_steps": case.next_steps,
        "submission": case.submission,
        "identifiers": [StoredIdentifier.of(row) for row in identifiers],
        "created_at": case.created_at,
        "updated_at": case.updated_at,
    }
