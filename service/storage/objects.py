"""Where evidence bytes live: any S3-compatible store over boto3, or a local folder.

Both take bytes in order, never needing a whole file at once, and both can take back an upload
that failed part way, so that nothing half-made is ever left behind.
"""

from __future__ import annotations

import os
import secrets
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import boto3
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    ConnectionClosedError,
    ConnectTimeoutError,
    EndpointConnectionError,
    ReadTimeoutError,
)

READ_CHUNK = 1024 * 1024


class ObjectStoreUnavailable(Exception):
    """The store can't be reached just now; the caller should try again later."""


class ObjectChanged(Exception):
    """The object is no longer the version recorded when it was verified: it must not be served."""


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    modified_at: datetime


@dataclass(frozen=True)
class PresignedRequest:
    method: str
    url: str
    headers: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class StoredVersion:
    """What the store holds under a key once written: its size, and a tag that changes whenever the
    bytes could have (S3's ETag; a local file's inode, modification time and size)."""

    size: int
    etag: str


@dataclass
class OpenedObject:
    etag: str
    size: int
    chunks: Iterator[bytes]


# Every key a deployment writes starts with `deployments/<its id>/`: deployments that share a folder or a
# bucket (a SQLite trial beside a PostgreSQL one, staging beside production) then never list, sweep or
# delete each other's objects. Keys written before this (`evidence/...`, `uploads/...`) stay valid where a
# row names them; nothing lists them, since nothing can tell which deployment they belong to.
DEPLOYMENTS_FOLDER = "deployments/"


def deployment_prefix(deployment_id: str) -> str:
    if not deployment_id.isalnum():
        raise ValueError("a deployment id is letters and digits")
    return f"{DEPLOYMENTS_FOLDER}{deployment_id}/"


class ObjectOfAnotherDeployment(Exception):
    """A key under another deployment's prefix: this deployment never deletes it."""


class ObjectUpload(ABC):
    """One object being written. `write` in order, then `complete`; `abort` undoes everything."""

    @abstractmethod
    def write(self, chunk: bytes) -> None: ...

    @abstractmethod
    def complete(self) -> StoredVersion:
        """Make the object visible; returns the size and tag of what the store holds."""

    @abstractmethod
    def abort(self) -> None:
        """Remove whatever was written, complete or not. Safe to call more than once."""


class ObjectStore(ABC):
    """One deployment's view of a store: it writes, lists and deletes only under its own prefix, which
    comes from the deployment id kept in its database (read the first time it is needed)."""

    def __init__(self, deployment_id: Callable[[], str]) -> None:
        self._deployment_id = deployment_id
        self._prefix: str | None = None

    @property
    def prefix(self) -> str:
        if self._prefix is None:
            self._prefix = deployment_prefix(self._deployment_id())
        return self._prefix

    def new_evidence_key(self) -> str:
        """Opaque and random: never the filename, the case or anything else that says what it holds."""
        return f"{self.prefix}evidence/{secrets.token_hex(16)}"

    def new_upload_key(self) -> str:
        """Where a client's direct upload lands: never the key evidence is kept under, which only the
        service writes, so that no upload URL, however long it stays valid, can reach evidence."""
        return f"{self.prefix}uploads/{secrets.token_hex(16)}"

    def is_ours(self, key: str) -> bool:
        return key.startswith(self.prefix)

    def delete(self, key: str) -> None:
        """Delete one object this deployment wrote (or, before prefixes, one its rows name); never one
        under another deployment's prefix, whatever a row or a caller says."""
        if key.startswith(DEPLOYMENTS_FOLDER) and not self.is_ours(key):
            raise ObjectOfAnotherDeployment(key)
        self._delete(key)

    def list_objects(self) -> Iterator[StoredObject]:
        """This deployment's objects only: those under its prefix."""
        return self._list_under(self.prefix)

    @abstractmethod
    def _delete(self, key: str) -> None: ...

    @abstractmethod
    def _list_under(self, prefix: str) -> Iterator[StoredObject]: ...

    @abstractmethod
    def start_upload(self, key: str) -> ObjectUpload: ...

    @abstractmethod
    def open(self, key: str, etag: str | None = None) -> OpenedObject:
        """One version of the object, opened before a byte is read: with `etag`, only that version,
        else ObjectChanged. The bytes that follow are that version's, whatever is written meanwhile."""

    def read(self, key: str, etag: str | None = None) -> Iterator[bytes]:
        return self.open(key, etag).chunks

    def local_path(self, key: str) -> Path | None:
        """Where the object is on this machine's disk, for a reader that wants a path (the video frame
        hasher); None where the store is elsewhere."""
        return None

    @abstractmethod
    def copy(self, source_key: str, target_key: str, size: int) -> None:
        """A copy the client who wrote `source_key` can't reach; made inside the store."""

    @abstractmethod
    def size_of(self, key: str) -> int | None:
        """The stored size, or None if there is no such object."""

    @abstractmethod
    def is_reachable(self) -> bool: ...

    def presigned_put(self, key: str, size: int, expires_in: int) -> PresignedRequest | None:
        """A request the client can send the bytes with directly, or None where the store has none."""
        return None

    def abort_stale_uploads(self, older_than: datetime) -> int:
        """Abort this deployment's uploads that a killed process left unfinished; returns how many."""
        return 0


# --- local folder ---------------------------------------------------------------------------


class LocalObjectStore(ObjectStore):
    """Objects as files under one folder; partial uploads sit apart until complete."""

    def __init__(self, root: Path, deployment_id: Callable[[], str]) -> None:
        super().__init__(deployment_id)
        self.root = root
        self.partial = root / ".partial"
        self.partial.mkdir(parents=True, exist_ok=True)

    def _path(self, key: str) -> Path:
        if ".." in key or key.startswith("/"):
            raise ValueError("bad object key")
        return self.root / key

    def start_upload(self, key: str) -> ObjectUpload:
        return _LocalUpload(self._path(key), self.partial / f"{key.replace('/', '_')}.{secrets.token_hex(4)}")

    def open(self, key: str, etag: str | None = None) -> OpenedObject:
        handle = self._path(key).open("rb")
        status = os.fstat(handle.fileno())
        version = _local_etag(status)
        if etag is not None and version != etag:
            handle.close()
            raise ObjectChanged(key)
        return OpenedObject(version, status.st_size, _file_chunks(handle))

    def local_path(self, key: str) -> Path | None:
        return self._path(key)

    def copy(self, source_key: str, target_key: str, size: int) -> None:
        # A second name for the same file: nothing is written into an existing file here (uploads
        # go to a new file that is renamed into place), so the copy keeps these bytes whatever
        # later happens under the source name.
        target = self._path(target_key)
        target.parent.mkdir(parents=True, exist_ok=True)
        os.link(self._path(source_key), target)

    def size_of(self, key: str) -> int | None:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            return None

    def _delete(self, key: str) -> None:
        self._path(key).unlink(missing_ok=True)

    def _list_under(self, prefix: str) -> Iterator[StoredObject]:
        for path in sorted(self._path(prefix).rglob("*")):
            if path.is_file():
                relative = path.relative_to(self.root).as_posix()
                stat = path.stat()
                yield StoredObject(relative, stat.st_size, datetime.fromtimestamp(stat.st_mtime, UTC))

    def is_reachable(self) -> bool:
        return self.root.is_dir() and os.access(self.root, os.W_OK)

    def abort_stale_uploads(self, older_than: datetime) -> int:
        removed = 0
        # Partial files are named after their key (see start_upload): this deployment's start with its prefix.
        for path in self.partial.glob(f"{self.prefix.replace('/', '_')}*"):
            if datetime.fromtimestamp(path.stat().st_mtime, UTC) < older_than:
                path.unlink(missing_ok=True)
                removed += 1
        return removed


def _local_etag(status: os.stat_result) -> str:
    return f"{status.st_ino:x}-{status.st_mtime_ns:x}-{status.st_size:x}"


def _file_chunks(handle) -> Iterator[bytes]:
    with handle:
        while chunk := handle.read(READ_CHUNK):
            yield chunk


LOCAL_WRITE_BUFFER_BYTES = 1024 * 1024


class _LocalUpload(ObjectUpload):
    def __init__(self, final: Path, partial: Path) -> None:
        self.final = final
        self.partial = partial
        # Owner-only: evidence may be images of children.
        descriptor = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        # Network-sized chunks gathered into MiB writes: one system call per MiB, not per packet.
        self.handle = os.fdopen(descriptor, "wb", buffering=LOCAL_WRITE_BUFFER_BYTES)

    def write(self, chunk: bytes) -> None:
        self.handle.write(chunk)

    def complete(self) -> StoredVersion:
        self.handle.flush()
        os.fsync(self.handle.fileno())
        os.fchmod(self.handle.fileno(), 0o400)  # never written again: read-only even to its owner
        self.handle.close()
        self.final.parent.mkdir(parents=True, exist_ok=True)
        os.replace(self.partial, self.final)  # atomic: the object appears whole or not at all
        status = self.final.stat()
        return StoredVersion(status.st_size, _local_etag(status))

    def abort(self) -> None:
        if not self.handle.closed:
            self.handle.close()
        self.partial.unlink(missing_ok=True)
        self.final.unlink(missing_ok=True)


# --- S3 ---------------------------------------------------------------------------------------

# S3's CopyObject takes objects up to 5 GiB; larger ones are copied in parts of this size.
MAX_SINGLE_COPY_BYTES = 5 * 1024**3


def _body_chunks(body) -> Iterator[bytes]:
    try:
        while chunk := body.read(READ_CHUNK):
            yield chunk
    finally:
        body.close()


_UNAVAILABLE = (EndpointConnectionError, ConnectionClosedError, ConnectTimeoutError, ReadTimeoutError)


@dataclass(frozen=True)
class S3Settings:
    bucket: str
    endpoint_url: str | None = None
    region: str = "us-east-1"
    access_key_id: str | None = None
    secret_access_key: str | None = None
    server_side_encryption: str | None = None  # "AES256" or "aws:kms"
    kms_key_id: str | None = None
    part_bytes: int = 5 * 1024 * 1024  # S3's smallest part: more parts in flight for the same memory
    parts_in_flight: int = 4
    max_attempts: int = 4


class S3ObjectStore(ObjectStore):
    def __init__(self, settings: S3Settings, deployment_id: Callable[[], str]) -> None:
        super().__init__(deployment_id)
        self.settings = settings
        self.bucket = settings.bucket
        # Shared by all uploads: boto3 clients are thread-safe, and parts from many files interleave.
        self.part_senders = ThreadPoolExecutor(max_workers=8, thread_name_prefix="s3-part")
        self.client = boto3.session.Session().client(
            "s3",
            endpoint_url=settings.endpoint_url,
            region_name=settings.region,
            aws_access_key_id=settings.access_key_id,
            aws_secret_access_key=settings.secret_access_key,
            # Retries with exponential backoff for throttling and passing network faults.
            config=Config(
                retries={"max_attempts": settings.max_attempts, "mode": "standard"},
                connect_timeout=5,
                read_timeout=60,
                s3={"addressing_style": "path"},
                signature_version="s3v4",
                # Not every S3-compatible store takes the newer CRC checksums; the SHA-256 taken at
                # intake and re-checked on read is the integrity check that matters here.
                request_checksum_calculation="when_required",
                response_checksum_validation="when_required",
            ),
        )

    def _encryption(self) -> dict[str, str]:
        if not self.settings.server_side_encryption:
            return {}
        extra = {"ServerSideEncryption": self.settings.server_side_encryption}
        if self.settings.kms_key_id:
            extra["SSEKMSKeyId"] = self.settings.kms_key_id
        return extra

    def call(self, operation: str, **kwargs):
        try:
            return getattr(self.client, operation)(Bucket=self.bucket, **kwargs)
        except _UNAVAILABLE as error:
            raise ObjectStoreUnavailable(str(type(error).__name__)) from None
        except ClientError as error:
            status = error.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
            if status >= 500:
                raise ObjectStoreUnavailable(f"S3 answered {status}") from None
            raise
        except BotoCoreError as error:
            raise ObjectStoreUnavailable(str(type(error).__name__)) from None

    def start_upload(self, key: str) -> ObjectUpload:
        return _S3Upload(self, key)

    def open(self, key: str, etag: str | None = None) -> OpenedObject:
        try:
            answer = self.call("get_object", Key=key, **({"IfMatch": etag} if etag else {}))
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("PreconditionFailed", "412"):
                raise ObjectChanged(key) from None
            raise
        return OpenedObject(answer["ETag"], answer["ContentLength"], _body_chunks(answer["Body"]))

    def copy(self, source_key: str, target_key: str, size: int) -> None:
        source = {"Bucket": self.bucket, "Key": source_key}
        if size <= MAX_SINGLE_COPY_BYTES:
            self.call("copy_object", Key=target_key, CopySource=source, **self._encryption())
            return
        started = self.call("create_multipart_upload", Key=target_key, **self._encryption())
        parts = []
        try:
            for number, start in enumerate(range(0, size, MAX_SINGLE_COPY_BYTES), start=1):
                end = min(start + MAX_SINGLE_COPY_BYTES, size) - 1
                answer = self.call(
                    "upload_part_copy",
                    Key=target_key,
                    UploadId=started["UploadId"],
                    PartNumber=number,
                    CopySource=source,
                    CopySourceRange=f"bytes={start}-{end}",
                )
                parts.append({"PartNumber": number, "ETag": answer["CopyPartResult"]["ETag"]})
            self.call(
                "complete_multipart_upload",
                Key=target_key,
                UploadId=started["UploadId"],
                MultipartUpload={"Parts": parts},
            )
        except BaseException:
            self.call("abort_multipart_upload", Key=target_key, UploadId=started["UploadId"])
            raise

    def size_of(self, key: str) -> int | None:
        try:
            return self.call("head_object", Key=key)["ContentLength"]
        except ClientError as error:
            if error.response.get("Error", {}).get("Code") in ("404", "NoSuchKey", "NotFound"):
                return None
            raise

    def _delete(self, key: str) -> None:
        self.call("delete_object", Key=key)

    def _list_under(self, prefix: str) -> Iterator[StoredObject]:
        token: dict[str, str] = {}
        while True:
            page = self.call("list_objects_v2", Prefix=prefix, **token)
            for item in page.get("Contents", []):
                yield StoredObject(item["Key"], item["Size"], item["LastModified"])
            if not page.get("IsTruncated"):
                return
            token = {"ContinuationToken": page["NextContinuationToken"]}

    def is_reachable(self) -> bool:
        try:
            self.call("head_bucket")
            return True
        except (ObjectStoreUnavailable, ClientError):
            return False

    def ensure_bucket(self) -> None:
        """Create the bucket if it is missing (embedded and test set-ups; deployments make theirs)."""
        if not self.is_reachable():
            self.call("create_bucket")

    def presigned_put(self, key: str, size: int, expires_in: int) -> PresignedRequest:
        params = {"Bucket": self.bucket, "Key": key, "ContentLength": size, **self._encryption()}
        url = self.client.generate_presigned_url("put_object", Params=params, ExpiresIn=expires_in)
        headers = {"Content-Length": str(size)}
        if self.settings.server_side_encryption:
            headers["x-amz-server-side-encryption"] = self.settings.server_side_encryption
        return PresignedRequest("PUT", url, headers)

    def abort_stale_uploads(self, older_than: datetime) -> int:
        aborted = 0
        for upload in self.call("list_multipart_uploads", Prefix=self.prefix).get("Uploads", []):
            if upload["Initiated"] < older_than:
                self.call("abort_multipart_upload", Key=upload["Key"], UploadId=upload["UploadId"])
                aborted += 1
        return aborted


class _S3Upload(ObjectUpload):
    """Small objects go up in one PUT; larger ones as a multipart upload of `part_bytes` parts, sent in
    the background while the next part arrives. At most `parts_in_flight` parts are held at once, so
    memory stays bounded however large the file."""

    def __init__(self, store: S3ObjectStore, key: str) -> None:
        self.store = store
        self.key = key
        self.pending: list[bytes] = []  # chunks of the next part, joined once when it is full
        self.pending_bytes = 0
        self.upload_id: str | None = None
        self.sending: list[Future] = []
        self.completed = False

    def write(self, chunk: bytes) -> None:
        part_bytes = self.store.settings.part_bytes
        while chunk:
            room = part_bytes - self.pending_bytes
            self.pending.append(chunk[:room])
            self.pending_bytes += min(room, len(chunk))
            chunk = chunk[room:]
            if self.pending_bytes == part_bytes:
                self._send_part(self._take_pending())

    def _take_pending(self) -> bytes:
        part = b"".join(self.pending)
        self.pending, self.pending_bytes = [], 0
        return part

    def _send_part(self, part: bytes) -> None:
        if self.upload_id is None:
            started = self.store.call("create_multipart_upload", Key=self.key, **self.store._encryption())
            self.upload_id = started["UploadId"]
        in_flight = [future for future in self.sending if not future.done()]
        if len(in_flight) >= self.store.settings.parts_in_flight:
            wait(in_flight, return_when=FIRST_COMPLETED)
        for future in self.sending:
            if future.done():
                future.result()  # a failed part fails the upload now, not at the end
        number = len(self.sending) + 1
        self.sending.append(self.store.part_senders.submit(self._upload_part, number, part))

    def _upload_part(self, number: int, part: bytes) -> dict:
        answer = self.store.call("upload_part", Key=self.key, UploadId=self.upload_id, PartNumber=number, Body=part)
        return {"PartNumber": number, "ETag": answer["ETag"]}

    def complete(self) -> int:
        if self.upload_id is None:
            self.store.call("put_object", Key=self.key, Body=self._take_pending(), **self.store._encryption())
        else:
            if self.pending_bytes:
                self._send_part(self._take_pending())
            parts = [future.result() for future in self.sending]
            self.store.call(
                "complete_multipart_upload", Key=self.key, UploadId=self.upload_id, MultipartUpload={"Parts": parts}
            )
        self.completed = True
        try:
            stored = self.store.call("head_object", Key=self.key)
        except ClientError:
            return StoredVersion(-1, "")
        return StoredVersion(stored["ContentLength"], stored["ETag"])

    def abort(self) -> None:
        self.pending, self.pending_bytes = [], 0
        for future in self.sending:
            future.cancel()
        wait(self.sending)
        for attempt in range(3):
            try:
                if self.upload_id is not None and not self.completed:
                    self.store.call("abort_multipart_upload", Key=self.key, UploadId=self.upload_id)
                    self.upload_id = None
                self.store.call("delete_object", Key=self.key)
                return
            except (ObjectStoreUnavailable, ClientError):
                # Left for `intake evidence sweep`, which finds objects and uploads with no row.
                time.sleep(0.2 * (attempt + 1))
