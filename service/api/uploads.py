"""Bridging the streamed multipart reader to evidence storage, which is blocking I/O."""

from __future__ import annotations

import contextlib
from collections.abc import Callable
from dataclasses import dataclass, field

from anyio import to_thread
from fastapi import Request
from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

from service.api.bodies import FilePart, FileSink, parse_multipart
from service.api.problems import ProblemError, validation_problem
from service.evidence_intake import Allowance
from service.settings import Settings
from service.storage.database import DatabaseUnreachable
from service.storage.evidence import EvidenceRefused, IncomingEvidence, ReceivedFile
from service.storage.objects import ObjectStoreUnavailable

# Hand bytes to the blocking store this many at a time: one thread hop per 2 MiB, not per packet.
HANDOFF_BYTES = 2 * 1024 * 1024


class EvidenceSink(FileSink):
    def __init__(self, incoming: IncomingEvidence) -> None:
        self.incoming = incoming
        self.pending: list[bytes] = []
        self.pending_bytes = 0

    async def write(self, chunk: bytes) -> None:
        self.pending.append(chunk)
        self.pending_bytes += len(chunk)
        if self.pending_bytes >= HANDOFF_BYTES:
            await self._hand_off()

    async def finish(self) -> None:
        await self._hand_off()
        await to_thread.run_sync(self.incoming.finish)

    async def abort(self) -> None:
        self.pending, self.pending_bytes = [], 0
        await to_thread.run_sync(self.incoming.abort)

    async def _hand_off(self) -> None:
        if self.pending:
            chunks, self.pending, self.pending_bytes = self.pending, [], 0
            await to_thread.run_sync(self._write_all, chunks)

    def _write_all(self, chunks: list[bytes]) -> None:
        # As they came: joining them first copied every byte once more.
        for chunk in chunks:
            self.incoming.write(chunk)


@dataclass
class MultipartWithFiles:
    fields: list[tuple[str, str]]
    incoming: list[IncomingEvidence] = field(default_factory=list)

    @property
    def files(self) -> list[ReceivedFile]:
        return [item.received for item in self.incoming if item.received is not None]

    def discard(self) -> None:
        """Remove every stored object: the request that brought them did not end in a record."""
        for item in self.incoming:
            item.abort()


class RefusalKeptSink(FileSink):
    """A file the store refuses (type, size) is dropped and its refusal noted, and reading goes on:
    the report form shows the refusal beside everything else the person typed, not instead of it."""

    def __init__(self, inner: EvidenceSink, refusals: list[EvidenceRefused]) -> None:
        self.inner = inner
        self.refusals = refusals
        self.refused = False

    async def write(self, chunk: bytes) -> None:
        if not self.refused:
            await self._guarded(self.inner.write(chunk))

    async def finish(self) -> None:
        if not self.refused:
            await self._guarded(self.inner.finish())

    async def abort(self) -> None:
        if not self.refused:
            await self.inner.abort()

    async def _guarded(self, step) -> None:
        try:
            await step
        except EvidenceRefused as refusal:
            self.refused = True
            self.refusals.append(refusal)
            await self.inner.abort()
        except ObjectStoreUnavailable:
            self.refused = True
            self.refusals.append(EvidenceRefused(503, self.inner.incoming.field, STORE_DOWN_MESSAGE))
            with contextlib.suppress(ObjectStoreUnavailable):
                await self.inner.abort()  # if it is still down, `intake evidence sweep` removes the part later


STORE_DOWN_MESSAGE = "We couldn't keep your files just now. Wait a minute, choose them again and send."


class DiscardingSink(FileSink):
    """A file read past and dropped: for a form that is refused anyway, whose typed answers are kept."""

    def __init__(self, max_bytes: int) -> None:
        self.remaining = max_bytes

    async def write(self, chunk: bytes) -> None:
        self.remaining -= len(chunk)
        if self.remaining < 0:
            raise ProblemError(413, "A file is larger than the limit.")

    async def finish(self) -> None:
        return None

    async def abort(self) -> None:
        return None


def _opened(
    open_incoming: Callable[[], IncomingEvidence], refusals: list[EvidenceRefused] | None, file_field: str
) -> IncomingEvidence | None:
    """A new file's place in the store, or None with a 503 refusal noted when the store, or the database its
    key prefix is read from the first time, is down and the caller keeps refusals (the forms, which still
    read what else was typed)."""
    try:
        return open_incoming()
    except (ObjectStoreUnavailable, OperationalError, PoolTimeoutError, DatabaseUnreachable):
        if refusals is None:
            raise
        refusals.append(EvidenceRefused(503, file_field, STORE_DOWN_MESSAGE))
        return None


async def receive_multipart(
    request: Request,
    *,
    file_field: str,
    refusals: list[EvidenceRefused] | None = None,
    keep_files: bool = True,
    received: MultipartWithFiles | None = None,
    allowance: Allowance | None = None,
) -> MultipartWithFiles:
    """Fields of a multipart body, with each `file_field` part streamed into evidence storage.

    On any failure every object already stored is removed before the error goes up. Given a
    `refusals` list, a refused file is noted there instead, and the rest of the body is still read.
    Without `keep_files`, files are read past and dropped. Given `received`, its fields fill as they
    are read, so the caller keeps them even when reading fails part way. `allowance`: how many files
    and bytes the caller may send (a secret key's or reporter's for a new case unless given); reading
    stops at it, so nothing past it is ever stored.
    """
    settings: Settings = request.app.state.settings
    received = received if received is not None else MultipartWithFiles(fields=[])
    allowance = allowance or request.app.state.evidence_intake.for_new_case(anonymous=False)

    def refuse(message: str, status: int) -> FileSink:
        if refusals is None:
            if status == 422:
                raise validation_problem([{"field": file_field, "message": message}])
            raise EvidenceRefused(status, file_field, message)
        refusals.append(EvidenceRefused(413, file_field, message))
        return DiscardingSink(allowance.max_file_bytes)

    async def on_file(part: FilePart) -> FileSink:
        if part.field_name != file_field:
            raise validation_problem([{"field": part.field_name, "message": f"Attach files as '{file_field}'."}])
        if not keep_files:
            return DiscardingSink(allowance.max_file_bytes)
        if len(received.incoming) >= allowance.max_files:
            return refuse(allowance.too_many_files, allowance.too_many_files_status)
        bytes_left = allowance.max_total_bytes - sum(item.size for item in received.incoming if item.received)
        if bytes_left <= 0:
            return refuse(allowance.too_many_bytes, 413)
        incoming = _opened(
            lambda: IncomingEvidence(
                request.app.state.objects,
                field=file_field,
                filename=part.filename,
                max_bytes=min(allowance.max_file_bytes, bytes_left),
                image_hash_max_bytes=settings.image_hash_max_bytes,
                video_hasher=request.app.state.evidence_intake.video_hasher,
                too_large=allowance.too_many_bytes if bytes_left < allowance.max_file_bytes else None,
            ),
            refusals,
            file_field,
        )
        if incoming is None:
            return DiscardingSink(allowance.max_file_bytes)
        received.incoming.append(incoming)
        sink = EvidenceSink(incoming)
        return RefusalKeptSink(sink, refusals) if refusals is not None else sink

    await parse_multipart(
        request,
        max_field_bytes=settings.max_body_bytes,
        max_fields=settings.max_form_fields,
        on_file=on_file,
        fields=received.fields,
    )
    return received
