"""All configuration, read from the environment (`INTAKE_*`) once at start-up."""

from __future__ import annotations

import os
import re
from datetime import timedelta
from pathlib import Path
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from service.domain.perceptual import ImageMatchPolicy

_SOURCE_CHECKOUT = Path(__file__).resolve().parent.parent
RATE_FORMAT = re.compile(r"^\s*([1-9]\d*)\s*/\s*(second|minute|hour|day)\s*$")


def default_data_dir() -> Path:
    """The same folder whichever folder the CLI is run from: a checkout's own var/, or the user's data folder."""
    if (_SOURCE_CHECKOUT / "pyproject.toml").is_file():
        return _SOURCE_CHECKOUT / "var"
    return Path(os.environ.get("XDG_DATA_HOME") or Path.home() / ".local" / "share") / "intake"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", env_file=None, extra="ignore")

    development: bool = Field(
        default=False,
        description="A developer's own machine: a missing link secret is generated once and kept under data_dir. "
        "Never set it where real reports arrive.",
    )
    data_dir: Path = Field(
        default_factory=lambda: default_data_dir(),
        description="Where the embedded database, evidence and development secret live: var/ in a source "
        "checkout, else ~/.local/share/intake. A relative path is taken from the folder the service starts in, "
        "once, and then used as an absolute path.",
    )
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; a SQLite file under data_dir when unset."
    )
    database_pool_size: int = Field(
        default=5,
        ge=1,
        description="Database connections each worker process keeps open, in each of its pools: one for the "
        "event loop's hot path, one for the routes in worker threads, and on PostgreSQL a third, the driver's own, "
        "for the one statement that keeps a new case. Every worker of every replica has its own: "
        "replicas × workers × 3 × (pool size + overflow) must stay under PostgreSQL's max_connections.",
    )
    database_max_overflow: int = Field(
        default=5, ge=0, description="Connections a worker may open beyond its pool under a burst, then close."
    )
    workers: int = Field(
        default=1, ge=1, description="Processes `intake serve` runs; about one per CPU core (--workers overrides)."
    )
    key_cache_seconds: float = Field(
        default=2.0,
        ge=0,
        le=5,
        description="How long this process trusts an API key it has read before reading it again: a revoked key "
        "stops working within this time (at once for reporting a case, whose write checks the key itself).",
    )
    worker_threads: int = Field(
        default=8, description="Threads for blocking work; more only adds GIL contention on a small machine."
    )
    content_dir: Path | None = Field(
        default=None, description="A deployment's own guidance and helplines, overriding the built-in ones."
    )

    max_body_bytes: int = Field(default=1024 * 1024, description="Largest JSON or form body without files.")
    max_form_fields: int = Field(default=500, description="Most fields in one form post.")
    idempotency_retention: timedelta = Field(
        default=timedelta(hours=24), description="How long an Idempotency-Key's answer is kept for retries."
    )
    guidance_max_age_seconds: int = Field(default=300, description="How long clients may cache guidance.")
    recall_window: timedelta = Field(
        default=timedelta(days=30), description="A payment this recent and not collected may still be recalled."
    )
    deadline_window: timedelta = Field(
        default=timedelta(hours=72), description="A threatened deadline this close makes the case urgent."
    )
    log_level: str = Field(default="INFO", description="DEBUG, INFO, WARNING or ERROR (libraries: WARNING at least).")
    webhook_url: str | None = Field(default=None, description="Where urgent-case alerts are POSTed; off if unset.")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 key for the alert signature.")
    webhook_max_attempts: int = Field(default=15, description="Tries before an alert is given up (and logged).")
    webhook_first_backoff: timedelta = Field(default=timedelta(seconds=5), description="Doubles per failed try.")
    webhook_poll_seconds: float = Field(default=5.0, description="How often the outbox is checked for retries.")
    retention_period: timedelta = Field(
        default=timedelta(days=6 * 365), description="How long a closed case is kept before it may be erased."
    )
    page_size: int = Field(default=50, description="Cases or audit events in a page when none is asked for.")
    max_page_size: int = Field(default=200, description="The most a caller may ask for in one page.")

    rate_case_creation_per_key: str = Field(
        default="600/minute", description="Reports one API key may send: '<count>/<second|minute|hour|day>' or 'off'."
    )
    rate_case_creation_per_address: str = Field(
        default="20/minute", description="Reports from one client address (a person, or a force's web server)."
    )
    rate_publishable_case_creation_per_key: str = Field(
        default="60/minute", description="Reports one publishable (browser) key may send: tighter than a secret key."
    )
    trusted_proxies: str | None = Field(
        default=None,
        description="Addresses of reverse proxies whose X-Forwarded-For names the client (comma-separated); "
        "unset: the connecting address is the client, which behind a proxy makes every visitor one address.",
    )
    cors_cache_seconds: float = Field(
        default=30.0, description="How long the origins of publishable keys are remembered before being read again."
    )
    rate_guidance_per_address: str = Field(default="300/minute", description="Guidance reads from one address.")
    rate_report_status_per_address: str = Field(
        default="10/minute",
        description="Tries of a reference and private code on /report/status from one address: right or wrong alike.",
    )
    rate_additions_per_key: str = Field(
        default="600/minute",
        description="Additions (evidence posts, direct-upload tickets and completions, identifier posts) one "
        "secret submitter key may send to the cases it submitted.",
    )
    rate_additions_per_case: str = Field(
        default="30/minute",
        description="Additions one case's reporter may send, through the API with the reporter token or on the "
        "/report/status page.",
    )
    rate_status_additions_per_address: str = Field(
        default="30/minute",
        description="Posts to the /report/status page's add-evidence and add-details forms from one address, "
        "counted before the body is read.",
    )
    report_status_session_seconds: int = Field(
        default=1800,
        description="How long the /report/status page lets a reporter add to their case before asking again.",
    )
    rate_limit_storage_url: str = Field(
        default="memory://",
        description="Where rate-limit counters live: memory:// counts in each process (one process only); "
        "redis://host:6379/0 shares them between every worker and replica, as a deployment of several needs.",
    )
    metrics_bind: str | None = Field(
        default=None,
        description="host:port of a separate listener for Prometheus, e.g. 127.0.0.1:9464, with no key needed "
        "(bind it where only the scraper reaches). Unset: /metrics on the API's port, for admin keys only.",
    )

    # What `intake serve` allows one connection, so that slow or oversized clients can't hold the server.
    http_max_header_bytes: int = Field(
        default=16 * 1024, ge=1024, description="Request line and headers together; past it the client gets 400."
    )
    http_max_headers: int = Field(default=100, ge=10, description="Header fields in one request; past it, 431.")
    http_header_seconds: float = Field(
        default=10.0, gt=0, description="Time to send a request's line and headers, from connecting or the last answer."
    )
    http_body_idle_seconds: float = Field(
        default=30.0, gt=0, description="Longest pause while a request body is being sent before it is cut off."
    )
    http_keep_alive_seconds: float = Field(default=5.0, gt=0, description="How long an idle connection is kept open.")
    http_max_concurrency: int = Field(
        default=1000, ge=1, description="Connections and requests one worker takes at once; past it, 503."
    )

    report_form_enabled: bool = Field(default=True, description="Serve the reference report form at /report.")
    form_police_force: str | None = Field(
        default=None,
        description="The police force every report from the form goes to (a slug from GET /v1/police-forces); "
        "unset: the form asks where the person lives (optional).",
    )
    report_form_token_lifetime: timedelta = Field(
        default=timedelta(hours=4), description="How long a form page may be left open before it must be sent again."
    )
    report_exit_url: str = Field(
        default="https://www.bbc.co.uk/weather",
        description="Where 'Leave this site' goes: somewhere ordinary, in case someone is watching.",
    )

    evidence_store: Literal["local", "s3"] = Field(default="local", description="Where evidence bytes go.")
    evidence_dir: Path | None = Field(
        default=None, description="The local evidence folder; data_dir/evidence if unset."
    )
    evidence_max_bytes: int = Field(default=2 * 1024**3, description="Largest single evidence file (413 past it).")
    evidence_max_files: int = Field(default=20, ge=1, description="Most files in one upload request.")
    evidence_case_max_files: int = Field(
        default=200,
        ge=1,
        description="Most evidence files one case may hold, counting direct uploads asked for and not yet "
        "completed or expired (413 past it).",
    )
    evidence_case_max_bytes: int = Field(
        default=10 * 1024**3,
        ge=1,
        description="Most bytes of evidence one case may hold, counting direct uploads asked for (at their "
        "declared size) until they are completed or expire (413 past it).",
    )
    anonymous_evidence_max_bytes: int = Field(
        default=256 * 1024**2,
        ge=1,
        description="Largest single file in a report from the /report form or a publishable key, which anyone "
        "can send (secret keys and reporters: evidence_max_bytes).",
    )
    anonymous_evidence_max_files: int = Field(
        default=10, ge=1, description="Most files in one report from the /report form or a publishable key."
    )
    anonymous_evidence_total_bytes: int = Field(
        default=1024**3,
        ge=1,
        description="Most bytes of files in one report from the /report form or a publishable key, all together.",
    )
    evidence_link_seconds: int = Field(default=300, description="How long an analyst's content link works.")
    evidence_upload_seconds: int = Field(default=900, description="How long a direct upload URL works.")
    sweep_grace: timedelta = Field(default=timedelta(hours=1), description="Objects younger than this are in flight.")
    link_secret: str | None = Field(
        default=None,
        description="Signs content links, local direct uploads and the form's CSRF tokens: at least 32 random "
        "characters (e.g. `openssl rand -hex 32`), the same in every worker and replica. Required unless development.",
    )
    public_url: str | None = Field(
        default=None,
        description="The address the public reaches the service at, e.g. https://reports.example.police.uk: "
        "links and the form's same-origin check use its scheme and host, never a request's Host header.",
    )

    image_hash_max_bytes: int = Field(
        default=64 * 1024 * 1024,
        description="Images up to this size get a PDQ perceptual hash at intake (held in memory only while hashed).",
    )
    image_match_max_distance: int = Field(
        default=31, ge=0, le=64, description="PDQ hashes this many bits apart or fewer (of 256) are the same image."
    )
    cluster_alert_min_victims: int = Field(
        default=5, ge=2, description="A case joining a cluster of this many victims (or any child victim) alerts."
    )
    stix_tlp: Literal["clear", "green", "amber", "amber+strict", "red"] = Field(
        default="amber", description="The TLP 2.0 marking on every object of a STIX export."
    )
    stix_producer: str = Field(default="Sextortion case intake", description="Who a STIX export says made it.")
    image_match_min_quality: int = Field(
        default=50, ge=0, le=100, description="PDQ hashes of lower quality (flat, near-blank images) never match."
    )
    video_matching: bool = Field(
        default=True,
        description="Hash still frames of video evidence (vPDQ) to match them against images and other videos, "
        "where the optional `video` extra (vpdq) is installed; without it, videos are kept but not matched.",
    )
    video_hash_max_frames: int = Field(
        default=120,
        ge=1,
        le=3600,
        description="Most frames hashed per video (one a second from the start): a longer video is matched on "
        "its first part.",
    )
    video_hash_cpu_seconds: float = Field(
        default=20.0,
        gt=0,
        description="CPU time one video's frame hashing may take (in a child process, at low priority): a video "
        "that needs more is kept, matched on the frames hashed within it.",
    )

    s3_bucket: str = Field(default="intake-evidence", description="The evidence bucket.")
    s3_endpoint_url: str | None = Field(default=None, description="e.g. http://minio:9000; AWS when unset.")
    s3_region: str = Field(default="us-east-1", description="The bucket's region.")
    s3_access_key_id: str | None = Field(default=None, description="Unset: boto3's own credential chain.")
    s3_secret_access_key: str | None = Field(default=None, description="The secret of s3_access_key_id.")
    s3_server_side_encryption: str | None = Field(default=None, description="AES256 or aws:kms.")
    s3_kms_key_id: str | None = Field(default=None, description="The KMS key, with aws:kms encryption.")
    s3_part_bytes: int = Field(default=5 * 1024 * 1024, ge=5 * 1024 * 1024, description="Multipart part size.")
    s3_parts_in_flight: int = Field(
        default=4, ge=1, description="Parts sent at once; memory is about this times the part size."
    )
    s3_create_bucket: bool = Field(default=False, description="Create the bucket at start if missing.")

    @field_validator(
        "rate_case_creation_per_key",
        "rate_case_creation_per_address",
        "rate_publishable_case_creation_per_key",
        "rate_guidance_per_address",
        "rate_report_status_per_address",
        "rate_additions_per_key",
        "rate_additions_per_case",
        "rate_status_additions_per_address",
    )
    @classmethod
    def _rate(cls, text: str) -> str:
        if text.strip().lower() != "off" and not RATE_FORMAT.match(text):
            raise ValueError("a rate looks like 30/minute (per second, minute, hour or day) or off")
        return text

    @field_validator("data_dir", "evidence_dir", "content_dir")
    @classmethod
    def _absolute(cls, folder: Path | None) -> Path | None:
        return folder.expanduser().absolute() if folder is not None else None

    @property
    def image_matching(self) -> ImageMatchPolicy:
        return ImageMatchPolicy(max_distance=self.image_match_max_distance, min_quality=self.image_match_min_quality)

    @property
    def resolved_evidence_dir(self) -> Path:
        return self.evidence_dir or self.data_dir / "evidence"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'intake.db'}"
