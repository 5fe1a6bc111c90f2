"""What a deployment must get right before it takes a single report: its signing secret.

Every worker and replica signs and checks the same links and CSRF tokens, so the secret is
configuration, never a per-process random value; a guessable one lets anyone forge an analyst's
content link. Outside development the service refuses to start without a good one.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path

from service.api.forwarded import TrustedProxies, public_origin
from service.settings import Settings

MIN_SECRET_CHARACTERS = 32
LINK_SECRET_FILE = "link-secret"  # noqa: S105 - a file name, not a secret
# What people type when a template asks for a secret; any of these in it means it was never chosen.
_PLACEHOLDER_WORDS = ("change", "secret", "example", "placeholder", "password", "default", "xxxx", "todo", "fixme")


class DeploymentRefused(Exception):
    """A setting that makes the service unsafe to run; the message names the variable and the fix."""


def check_deployment(settings: Settings) -> bytes:
    """Refuse what would be unsafe to serve with; gives back the link secret every process must share."""
    try:
        TrustedProxies(settings.trusted_proxies)
    except ValueError as error:
        raise DeploymentRefused(
            f"INTAKE_TRUSTED_PROXIES={settings.trusted_proxies!r}: {error} (e.g. 127.0.0.1, 10.0.0.0/8)"
        ) from None
    if settings.public_url:
        try:
            public_origin(settings.public_url)
        except ValueError as error:
            raise DeploymentRefused(f"INTAKE_PUBLIC_URL: {error}") from None
    if settings.webhook_url and not settings.development and len(settings.webhook_secret or "") < 16:
        raise DeploymentRefused(
            "INTAKE_WEBHOOK_URL is set but INTAKE_WEBHOOK_SECRET is missing or shorter than 16 characters: "
            "receivers could not tell our alerts from forged ones"
        )
    return resolve_link_secret(settings)


def link_secret_problem(secret: str | None) -> str | None:
    """Why this secret must not sign anything, in a sentence; None when it is fit."""
    if not secret:
        return "INTAKE_LINK_SECRET is not set"
    if len(secret) < MIN_SECRET_CHARACTERS:
        return f"INTAKE_LINK_SECRET is {len(secret)} characters long; it needs at least {MIN_SECRET_CHARACTERS}"
    lowered = secret.lower()
    if any(word in lowered for word in _PLACEHOLDER_WORDS) or len(set(secret)) < 8:
        return "INTAKE_LINK_SECRET looks like a placeholder, not a random value"
    return None


def resolve_link_secret(settings: Settings) -> bytes:
    """The secret every process of this deployment signs with.

    In development with none configured, one is generated on first start and kept under the data
    folder, so that `make run`'s workers, restarts and CLI all agree.
    """
    problem = link_secret_problem(settings.link_secret)
    if problem is None:
        return settings.link_secret.encode()  # type: ignore[union-attr]
    if not settings.development:
        raise DeploymentRefused(
            f"{problem}. Set it to the same random value in every worker and replica, e.g. "
            f"INTAKE_LINK_SECRET=$(openssl rand -hex 32); on a developer's machine only, INTAKE_DEVELOPMENT=true "
            f"generates one under the data folder."
        )
    if settings.link_secret:
        return settings.link_secret.encode()  # development: the developer chose it, weak or not
    return _kept_secret(settings.data_dir.resolve() / LINK_SECRET_FILE)


def _kept_secret(path: Path) -> bytes:
    """Read the kept secret, or make it: written aside then linked into place, so that two workers
    starting together both end up with the one that won, never a half-written file."""
    with contextlib.suppress(FileNotFoundError):
        return _read(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    draft = path.with_name(f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}")
    descriptor = os.open(draft, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w") as file:
        file.write(secrets.token_hex(32))
    try:
        os.link(draft, path)
    except FileExistsError:
        pass
    finally:
        draft.unlink()
    return _read(path)


def _read(path: Path) -> bytes:
    secret = path.read_text().strip()
    if link_secret_problem(secret) is not None:
        raise DeploymentRefused(f"{path} does not hold a usable secret: delete it to have a new one made")
    return secret.encode()
