"""Advice sections and helplines, as the service shows them to victims, parents and partners."""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import TypeVar

from pydantic import BaseModel, ConfigDict, Field, HttpUrl


class Audience(StrEnum):
    adult = "adult"
    under_18 = "under-18"
    parent = "parent"


class GuidanceSection(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", examples=["dont-pay"])
    title: str = Field(examples=["Don't pay"])
    summary: str
    body: str = Field(description="Markdown.")
    audiences: list[Audience]
    updated_at: date


class SupportService(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    slug: str = Field(pattern=r"^[a-z0-9]+(-[a-z0-9]+)*$", examples=["childline"])
    name: str = Field(examples=["Childline"])
    phone: str | None = Field(default=None, examples=["0800 1111"])
    url: HttpUrl | None = None
    audiences: list[Audience]
    description: str


Listed = TypeVar("Listed", GuidanceSection, SupportService)


def for_audience(items: list[Listed], audience: Audience | None) -> list[Listed]:
    if audience is None:
        return list(items)
    return [item for item in items if audience in item.audiences]
