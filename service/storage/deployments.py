"""Which deployment this database belongs to: the id its migration made once, kept in the database."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import select

from service.storage.database import session_scope
from service.storage.models import Deployment


class DeploymentMissing(Exception):
    """The database has no deployment id: its migrations have not been run."""


def deployment_id(engine: Engine) -> str:
    with session_scope(engine) as session:
        found = session.exec(select(Deployment.id)).all()
    if len(found) != 1:
        raise DeploymentMissing(
            "the database has no deployment id (or more than one): run `intake db upgrade` on it first"
        )
    return found[0]
