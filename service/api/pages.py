"""Paged answers: one shape for every list (its items and `next_cursor`) and one way to make and read the
opaque cursors they hand out, so a cursor one list never gave out is refused the same way everywhere."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import Query
from pydantic import BaseModel, Field, create_model

from service.api.problems import validation_problem

Cursor = Annotated[str | None, Query(max_length=200, description="`next_cursor` from the previous page.")]
PageSize = Annotated[
    int | None,
    Query(ge=1, description="How many to return; more than the server allows (200 unless set) gets that many."),
]

NEXT_CURSOR = Field(description="Pass as `cursor` for the next page; null on the last.")


def page_model(name: str, items: str, item: type[BaseModel]) -> type[BaseModel]:
    """The page of a list: `items` (its name in the contract, e.g. "cases") and `next_cursor`."""
    return create_model(name, **{items: (list[item], ...), "next_cursor": (str | None, NEXT_CURSOR)})


def page_size(settings, limit: int | None) -> int:
    return min(limit or settings.page_size, settings.max_page_size)


def encode_cursor(listing: str, position: dict) -> str:
    """An opaque cursor naming the list it was given out by (`listing`) and the position in it."""
    tagged = {"l": listing, **position}
    return base64.urlsafe_b64encode(json.dumps(tagged, separators=(",", ":")).encode()).decode().rstrip("=")


def foreign_cursor():
    return validation_problem([{"field": "cursor", "message": "This cursor is not one we gave out."}])


def decode_cursor(cursor: str) -> dict:
    try:
        decoded = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
        if not isinstance(decoded, dict):
            raise ValueError
        return decoded
    except ValueError:
        raise foreign_cursor() from None


# Positions we hand out are row ids and offsets (positive, and ids are 32-bit INTEGER columns) and aware
# timestamps: anything else was not made by us, and is refused before a database compares with it.
_LARGEST = 2**31 - 1


def row_id(value: Any) -> int:
    if type(value) is not int or not 0 < value <= _LARGEST:
        raise ValueError
    return value


def offset(value: Any) -> int:
    if type(value) is not int or not 0 <= value <= _LARGEST:
        raise ValueError
    return value


def moment(value: Any) -> datetime:
    when = datetime.fromisoformat(value)
    if when.tzinfo is None:
        raise ValueError
    return when.astimezone(UTC)


def read_cursor(cursor: str | None, listing: str, read):
    """The position `read` makes of a cursor's fields (None without a cursor); a cursor it can't read
    (another list's, a missing field, a wrong type) is a 422 naming `cursor`."""
    if cursor is None:
        return None
    position = decode_cursor(cursor)
    try:
        if position["l"] != listing:
            raise ValueError
        return read(position)
    except (KeyError, TypeError, ValueError, OverflowError):
        raise foreign_cursor() from None
