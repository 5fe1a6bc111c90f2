"""What an export of cases holds, in a documented, versioned column set, safe to open anywhere."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

EXPORT_VERSION = "1"
# Version 1. Add columns only at the end, and bump the version if any meaning changes.
EXPORT_COLUMNS = [
    "reference",
    "created_at",
    "updated_at",
    "status",
    "priority",
    "flags",
    "police_force",
    "assigned_to",
    "reporter_relationship",
    "victim_age",
    "victim_age_band",
    "victim_date_of_birth",
    "platforms",
    "first_contact_at",
    "deadline_at",
    "images_shared",
    "feels_unsafe",
    "consent_to_share",
    "payments_count",
    "identifiers",
    "account",
    "threats",
]
# A cell starting with one of these is a formula to Excel, LibreOffice and Google Sheets (CSV injection).
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def export_record(case: Mapping[str, Any]) -> dict[str, Any]:
    """One case as the export's columns, from its stored columns and its [type, normalized] identifiers."""
    submission = case["submission"]
    reporter = submission.get("reporter", {})
    victim = submission.get("victim", {})
    return {
        "reference": case["reference"],
        "created_at": case["created_at"].isoformat(),
        "updated_at": case["updated_at"].isoformat(),
        "status": case["status"],
        "priority": case["priority"],
        "flags": ";".join(flag["code"] for flag in case["flags"]),
        "police_force": case["police_force"],
        "assigned_to": case["assigned_to"],
        "reporter_relationship": reporter.get("relationship"),
        "victim_age": victim.get("age"),
        "victim_age_band": victim.get("age_band"),
        "victim_date_of_birth": victim.get("date_of_birth"),
        "platforms": ";".join(submission.get("platforms", [])),
        "first_contact_at": submission.get("first_contact_at"),
        "deadline_at": submission.get("deadline_at"),
        "images_shared": submission.get("images_shared"),
        "feels_unsafe": submission.get("feels_unsafe"),
        "consent_to_share": submission.get("consent_to_share"),
        "payments_count": len(submission.get("payments", [])),
        "identifiers": ";".join(sorted(f"{kind}:{normalized}" for kind, normalized in case["identifiers"] or [])),
        "account": submission.get("account"),
        "threats": submission.get("threats"),
    }


# NDJSON version 2: lists are JSON arrays, not ";"-joined text. Version 1 stays the default until then.
EXPORT_V1_SUNSET = "2027-06-30"


def export_record_v2(case: Mapping[str, Any]) -> dict[str, Any]:
    """One case for NDJSON version 2: version 1's fields, with flags, platforms and identifiers as arrays
    (identifiers as {type, normalized}), and the fields added since."""
    record = export_record(case)
    submission = case["submission"]
    identifiers = sorted((kind, normalized) for kind, normalized in case["identifiers"] or [])
    return {
        **record,
        "version": "2",
        "flags": [flag["code"] for flag in case["flags"]],
        "platforms": list(submission.get("platforms", [])),
        "identifiers": [{"type": kind, "normalized": normalized} for kind, normalized in identifiers],
        "images_fake_or_ai": submission.get("images_fake_or_ai"),
    }


def spreadsheet_safe(value: Any) -> str:
    """The cell as text, with a leading quote where a spreadsheet would otherwise run it as a formula."""
    if value is None:
        return ""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    return "'" + text if text.startswith(_FORMULA_STARTS) else text
