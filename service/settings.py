"""All configuration, read from the environment (`INTAKE_*`) once at start-up."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="INTAKE_", env_file=None, extra="ignore")

    data_dir: Path = Field(default=Path("var"), description="Where the embedded database and evidence live.")
    database_url: str | None = Field(
        default=None, description="SQLAlchemy URL; a SQLite file under data_dir when unset."
    )
    database_pool_size: int = 10
    worker_threads: int = Field(
        default=8, description="Threads for blocking work; more only adds GIL contention on a small machine."
    )
    content_dir: Path | None = Field(
        default=None, description="A deployment's own guidance and helplines, overriding the built-in ones."
    )

    max_body_bytes: int = Field(default=1024 * 1024, description="Largest JSON or form body without files.")
    max_form_fields: int = 500
    idempotency_retention: timedelta = timedelta(hours=24)
    guidance_max_age_seconds: int = 300
    recall_window: timedelta = timedelta(days=30)
    deadline_window: timedelta = timedelta(hours=72)
    log_level: str = "INFO"

    @property
    def resolved_database_url(self) -> str:
        if self.database_url:
            return self.database_url
        return f"sqlite:///{self.data_dir / 'intake.db'}"
