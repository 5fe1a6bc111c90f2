"""Settings as an operator meets them: one plain line per bad variable, and the table in docs/settings.md.

`python -m service.configuration > docs/settings.md` writes the table; a test holds the file to it.
"""

from __future__ import annotations

import types
import typing
from datetime import timedelta
from pathlib import Path

from pydantic import ValidationError
from pydantic.fields import FieldInfo

from service.settings import Settings

PREFIX = "INTAKE_"


class SettingsRefused(Exception):
    """Every bad setting, one line each, naming the variable, what it was given and what would do."""


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as error:
        raise SettingsRefused("\n".join(_lines(error))) from None


def _lines(error: ValidationError) -> list[str]:
    lines = []
    for problem in error.errors(include_url=False):
        name = str(problem["loc"][0]) if problem["loc"] else ""
        field = Settings.model_fields.get(name)
        variable = PREFIX + name.upper()
        given = problem.get("input")
        shown = f"{given!r}" if isinstance(given, str) else "(not a value)"
        reason = problem["msg"].removeprefix("Value error, ")
        example = f" For example: {variable}={value_format(name, field)[1]}" if field else ""
        lines.append(f"{variable}={shown}: {reason}.{example}")
    return lines


def value_format(name: str, field: FieldInfo) -> tuple[str, str]:
    """How a value is written, and an example of one."""
    kind = _plain(field.annotation)
    if name.startswith("rate_") and kind is str and name != "rate_limit_storage_url":
        return "a count per second, minute, hour or day, or off", "30/minute"
    if kind is timedelta:
        return "a duration: ISO 8601 (P30D, PT1H) or seconds", "P30D"
    if kind is bool:
        return "true or false", "true"
    if kind is int:
        return "a whole number", str(field.default) if isinstance(field.default, int) else "10"
    if kind is float:
        return "a number", str(field.default) if isinstance(field.default, float) else "5.0"
    if kind is Path:
        return "a folder", "/srv/intake"
    if typing.get_origin(kind) is typing.Literal:
        choices = typing.get_args(kind)
        return "one of " + ", ".join(map(str, choices)), str(choices[0])
    return "text", _TEXT_EXAMPLES.get(name, "...")


_TEXT_EXAMPLES = {
    "database_url": "postgresql+psycopg://intake:secret@db:5432/intake",
    "link_secret": "$(openssl rand -hex 32)",
    "public_url": "https://reports.example.police.uk",
    "trusted_proxies": "127.0.0.1,10.0.0.0/8",
    "rate_limit_storage_url": "redis://redis:6379/0",
    "metrics_bind": "127.0.0.1:9464",
    "webhook_url": "https://alerts.example.police.uk/intake",
    "s3_endpoint_url": "http://minio:9000",
}


def _plain(annotation):
    """`int | None` → int."""
    if isinstance(annotation, types.UnionType) or typing.get_origin(annotation) is typing.Union:
        kinds = [kind for kind in typing.get_args(annotation) if kind is not type(None)]
        return kinds[0] if len(kinds) == 1 else annotation
    return annotation


def _default(name: str, field: FieldInfo) -> str:
    if name == "data_dir":
        return "var/ in a source checkout, else ~/.local/share/intake"
    value = field.get_default(call_default_factory=True)
    if value is None:
        return "unset"
    if isinstance(value, timedelta):
        if value < timedelta(days=1):
            return f"{value.total_seconds():g} s"
        return f"{value.days} day{'s' if value.days > 1 else ''}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def settings_table() -> str:
    rows = [
        "# Settings",
        "",
        "Every setting is an environment variable. `intake` reads them once at start and refuses to start",
        "with one line per bad value, naming the variable. Generated from `service/settings.py` by",
        "`python -m service.configuration`; do not edit by hand.",
        "",
        "| Variable | Default | Format | Meaning |",
        "| --- | --- | --- | --- |",
    ]
    for name, field in Settings.model_fields.items():
        written, _ = value_format(name, field)
        meaning = (field.description or "").replace("|", "\\|").replace("\n", " ")
        rows.append(f"| `{PREFIX}{name.upper()}` | {_default(name, field)} | {written} | {meaning} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    print(settings_table(), end="")
