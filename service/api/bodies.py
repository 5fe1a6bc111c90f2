"""Reading request bodies: JSON, plain HTML forms, and multipart forms, all streamed and bounded.

How a form's fields map onto a case is worked out from the domain model in service.api.form_fields.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import parse_qsl

from fastapi import Request, Response
from fastapi.routing import APIRoute
from python_multipart.exceptions import MultipartParseError
from python_multipart.multipart import MultipartParser, parse_options_header

from service.api.problems import ProblemError, validation_problem

JSON = "application/json"
URLENCODED = "application/x-www-form-urlencoded"
MULTIPART = "multipart/form-data"
FORM_MEDIA_TYPES = (JSON, URLENCODED, MULTIPART)


def media_type_of(request: Request) -> str:
    content_type = request.headers.get("content-type", "")
    return (_known_media_type if len(content_type) <= _CACHED_LENGTH else _media_type)(content_type)


def _media_type(content_type: str) -> str:
    media_type, _ = parse_options_header(content_type)
    return media_type.decode("latin-1").lower()


# Clients send the same few Content-Type and Content-Disposition values again and again: each is
# parsed once (python-multipart's parser is pure Python), not once per request or per form field.
# Only short values are kept, so what the caches hold stays small whatever is sent.
_CACHED_LENGTH = 200
_known_media_type = lru_cache(maxsize=256)(_media_type)


def unsupported_media_type(accepted: tuple[str, ...], given: str | None = None) -> ProblemError:
    """415 naming what to send; when the client sent no Content-Type at all, it says that first."""
    missing = "The Content-Type header is missing. " if given == "" else ""
    return ProblemError(
        415,
        f"{missing}Send the body as one of: {', '.join(accepted)}.",
        headers={"Accept-Post": ", ".join(accepted)},
    )


def refuse_json_sent_as_form(raw: bytes) -> None:
    """A JSON text sent as a form (what `curl -d` does without -H) would be read as one strange field
    and answered with "required" errors for everything in it: say what happened instead."""
    if raw.lstrip()[:1] in (b"{", b"["):
        raise ProblemError(
            415,
            f"This body is JSON but its Content-Type says it is a form ({URLENCODED}): "
            f"send it with Content-Type: {JSON}.",
            headers={"Accept-Post": ", ".join(FORM_MEDIA_TYPES)},
        )


async def read_bounded(request: Request, limit: int) -> bytes:
    """The whole body, refused with 413 as soon as it passes `limit` bytes."""
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise too_large(limit)
    chunks: list[bytes] = []
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > limit:
            raise too_large(limit)
        chunks.append(chunk)
    return b"".join(chunks)


def too_large(limit: int) -> ProblemError:
    return ProblemError(413, f"The request is too large: the limit is {limit} bytes.")


class _DuplicateKey(ValueError):
    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key


def _refuse_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Parsers disagree on which of two equal keys wins (first, last, error): a proxy or partner that
    # checked one value must never see the service keep the other.
    as_dict = dict(pairs)
    if len(as_dict) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise _DuplicateKey(key)
            seen.add(key)
    return as_dict


def parse_json(raw: bytes) -> Any:
    if not raw.strip():
        raise validation_problem([{"field": "body", "message": "The body is empty: send a JSON object."}])
    try:
        return json.loads(raw, object_pairs_hook=_refuse_duplicate_keys)
    except _DuplicateKey as duplicate:
        message = "This field is given twice in the same object: send it once."
        raise validation_problem([{"field": duplicate.key[:200] or "body", "message": message}]) from None
    except (UnicodeDecodeError, ValueError) as error:
        message = (
            f"The body is not valid JSON: {error}."
            if isinstance(error, json.JSONDecodeError)
            else "The body is not valid UTF-8 JSON."
        )
        raise validation_problem([{"field": "body", "message": message}]) from None
    except RecursionError:
        raise validation_problem([{"field": "body", "message": "The JSON is nested too deeply."}]) from None


def parse_urlencoded(raw: bytes, max_fields: int) -> list[tuple[str, str]]:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise validation_problem([{"field": "body", "message": "The form is not valid UTF-8."}]) from None
    try:
        return parse_qsl(text, keep_blank_values=True, strict_parsing=False, max_num_fields=max_fields)
    except ValueError:
        raise ProblemError(413, f"The form has too many fields: the limit is {max_fields}.") from None


# --- multipart --------------------------------------------------------------------------------


@dataclass
class FilePart:
    field_name: str
    filename: str


class FileSink:
    """Where a file part's bytes go as they arrive. Implementations must not keep them whole."""

    async def write(self, chunk: bytes) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def finish(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError

    async def abort(self) -> None:  # pragma: no cover - interface
        raise NotImplementedError


FileHandler = Callable[[FilePart], Awaitable[FileSink]]


@dataclass
class _Part:
    headers: dict[str, str] = field(default_factory=dict)
    data: bytearray = field(default_factory=bytearray)
    sink: FileSink | None = None
    name: str = ""
    filename: str | None = None
    skip: bool = False


async def parse_multipart(  # noqa: C901 - one streaming loop, so every sink it opened is aborted in one place
    request: Request,
    *,
    max_field_bytes: int,
    max_fields: int,
    on_file: FileHandler,
    fields: list[tuple[str, str]] | None = None,
) -> list[tuple[str, str]]:
    """Fields of a multipart body, with each file part streamed to the sink `on_file` gives.

    Nothing of a file is held beyond one network chunk; if anything fails, every sink opened so
    far is aborted before the error goes up. Fields are appended to `fields` as they complete, so
    a caller that passes its own list still has what was read before a failure (the form keeps it).
    """
    _, options = parse_options_header(request.headers.get("content-type", ""))
    boundary = options.get(b"boundary")
    if not boundary:
        raise validation_problem([{"field": "body", "message": "The multipart body has no boundary."}])

    events: list[tuple[str, Any]] = []
    header_field = bytearray()
    header_value = bytearray()

    def on_header_field(data: bytes, start: int, end: int) -> None:
        header_field.extend(data[start:end])

    def on_header_value(data: bytes, start: int, end: int) -> None:
        header_value.extend(data[start:end])

    # Header values stay latin-1 (every byte kept as is) until the name and filename are read as
    # UTF-8 below: browsers send UTF-8 names, and the options parser re-encodes as latin-1.
    def on_header_end() -> None:
        events.append(
            ("header", (bytes(header_field).decode("latin-1").lower(), bytes(header_value).decode("latin-1")))
        )
        header_field.clear()
        header_value.clear()

    callbacks = {
        "on_part_begin": lambda: events.append(("begin", None)),
        "on_header_field": on_header_field,
        "on_header_value": on_header_value,
        "on_header_end": on_header_end,
        "on_headers_finished": lambda: events.append(("headers_done", None)),
        "on_part_data": lambda data, start, end: events.append(("data", data[start:end])),
        "on_part_end": lambda: events.append(("end", None)),
    }
    try:
        parser = MultipartParser(boundary, callbacks)  # type: ignore[arg-type]
    except ValueError:  # RFC 2046: a boundary is 1 to 70 characters; the parser takes up to 256
        raise validation_problem([{"field": "body", "message": "The multipart boundary is too long."}]) from None
    fields = [] if fields is None else fields
    sinks: list[FileSink] = []
    part = _Part()
    field_bytes = 0
    skipped_parts = 0
    completed = False
    try:
        async for chunk in _body_chunks(request):
            try:
                parser.write(chunk)
            except MultipartParseError:
                raise validation_problem([{"field": "body", "message": "The multipart body is malformed."}]) from None
            for kind, payload in events:
                if kind == "begin":
                    part = _Part()
                elif kind == "header":
                    part.headers[payload[0]] = payload[1]
                elif kind == "headers_done":
                    part.name, part.filename = _disposition(part.headers)
                    # A browser sends an empty, nameless part for a file input left empty: no file. It
                    # still counts as a field, with its bytes, so a body cannot hold them unbounded.
                    part.skip = part.filename == ""
                    if part.filename is not None and not part.skip:
                        part.sink = await on_file(FilePart(part.name, part.filename))
                        sinks.append(part.sink)
                    elif len(fields) + skipped_parts >= max_fields:
                        raise ProblemError(413, f"The form has too many fields: the limit is {max_fields}.")
                    skipped_parts += part.skip
                elif kind == "data":
                    if part.sink is not None:
                        await part.sink.write(payload)
                    else:
                        field_bytes += len(payload)
                        if field_bytes > max_field_bytes:
                            raise too_large(max_field_bytes)
                        if not part.skip:
                            part.data.extend(payload)
                elif kind == "end":
                    if part.skip:
                        continue
                    if part.sink is not None:
                        await part.sink.finish()
                    else:
                        fields.append((part.name, _utf8(part.name, bytes(part.data))))
            events.clear()
        parser.finalize()
        completed = True
    finally:
        if not completed:
            for sink in sinks:
                await sink.abort()
    return fields


async def _body_chunks(request: Request) -> AsyncIterator[bytes]:
    async for chunk in request.stream():
        if chunk:
            yield chunk


def _disposition(headers: dict[str, str]) -> tuple[str, str | None]:
    value = headers.get("content-disposition", "")
    return (_known_name_and_filename if len(value) <= _CACHED_LENGTH else _name_and_filename)(value)


def _name_and_filename(content_disposition: str) -> tuple[str, str | None]:
    disposition, options = parse_options_header(content_disposition)
    if disposition != b"form-data" or b"name" not in options:
        raise validation_problem([{"field": "body", "message": "A multipart part has no form-data name."}])
    name = options[b"name"].decode("utf-8", "replace")
    filename = options.get(b"filename")
    return name, (filename.decode("utf-8", "replace") if filename is not None else None)


_known_name_and_filename = lru_cache(maxsize=256)(_name_and_filename)


def _utf8(name: str, raw: bytes) -> str:
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError:
        raise validation_problem([{"field": name, "message": "This is not valid UTF-8 text."}]) from None


class StrictJsonRoute(APIRoute):
    """A route whose JSON body FastAPI reads for a model reads it through `parse_json`, like every
    other route: duplicate keys refused, every problem a 422 naming the body."""

    def get_route_handler(self) -> Callable[[Request], Awaitable[Response]]:
        handle = super().get_route_handler()
        if self.body_field is None:
            return handle

        async def handle_strictly(request: Request) -> Response:
            media_type = media_type_of(request)
            if media_type == JSON or media_type.endswith("+json"):
                raw = await request.body()
                if raw:
                    request._json = parse_json(raw)  # what FastAPI's request.json() then returns
            return await handle(request)

        return handle_strictly
