"""cluster totals: what each cluster of two or more cases adds up to, in all and per police force

Revision ID: 0013
Revises: 0012
Create Date: 2026-11-27 21:40:00

Kept as cases join, so that a list of clusters reads a page of clusters rather than every case in
them. Worked out here once from the cluster members already kept.
"""

from __future__ import annotations

from datetime import UTC
from decimal import Decimal

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0013"
down_revision = "0012"
branch_labels = None
depends_on = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
_LISTED = sa.text("size >= 2")
_ORDERS = {
    "harm": ("child_victims", "victims", "last_seen", "id"),
    "victims": ("victims", "child_victims", "last_seen", "id"),
    "last_seen": ("last_seen", "id"),
    "first_seen": ("first_seen", "id"),
}


def upgrade() -> None:
    op.add_column("cluster", sa.Column("victims", sa.Integer(), server_default="0", nullable=False))
    op.add_column("cluster", sa.Column("child_victims", sa.Integer(), server_default="0", nullable=False))
    op.add_column("cluster", sa.Column("money", _JSON, server_default=sa.text("'{}'"), nullable=False))
    op.add_column("cluster", sa.Column("first_seen", sa.DateTime(timezone=True), nullable=True))
    op.add_column("cluster", sa.Column("last_seen", sa.DateTime(timezone=True), nullable=True))
    for name, columns in _ORDERS.items():
        op.create_index(
            f"ix_cluster_by_{name}", "cluster", list(columns), postgresql_where=_LISTED, sqlite_where=_LISTED
        )
    forces = op.create_table(
        "cluster_force",
        sa.Column("cluster_id", sa.Integer(), nullable=False),
        sa.Column("police_force", sa.String(length=80), nullable=False),
        sa.Column("cases", sa.Integer(), nullable=False),
        sa.Column("victims", sa.Integer(), nullable=False),
        sa.Column("child_victims", sa.Integer(), nullable=False),
        sa.Column("money", _JSON, nullable=False),
        sa.Column("first_seen", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["cluster_id"], ["cluster.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("cluster_id", "police_force"),
    )
    op.create_index("ix_cluster_force_police_force", "cluster_force", ["police_force", "cluster_id"], unique=False)
    _work_out_totals(op.get_bind(), forces)


def _work_out_totals(connection, forces: sa.Table) -> None:
    members = sa.table(
        "cluster_member",
        sa.column("cluster_id"),
        sa.column("police_force"),
        sa.column("child_victim"),
        sa.column("money", _JSON),
        sa.column("reported_at", sa.DateTime(timezone=True)),
        sa.column("duplicate"),
    )
    per_cluster: dict[int, dict[str, dict]] = {}
    for cluster_id, force, child, money, reported_at, duplicate in connection.execute(sa.select(members)):
        if reported_at.tzinfo is None:  # SQLite keeps no offset; every timestamp is UTC
            reported_at = reported_at.replace(tzinfo=UTC)
        counted = not duplicate
        one_case = {
            "cases": 1,
            "victims": int(counted),
            "child_victims": int(counted and bool(child)),
            "money": {currency: Decimal(amount) for currency, amount in (money or {}).items()} if counted else {},
            "first": reported_at,
            "last": reported_at,
        }
        _add(per_cluster.setdefault(cluster_id, {}).setdefault(force or "", _nothing()), one_case)
    cluster = sa.table(
        "cluster",
        sa.column("id"),
        sa.column("size"),
        sa.column("victims"),
        sa.column("child_victims"),
        sa.column("money", _JSON),
        sa.column("first_seen", sa.DateTime(timezone=True)),
        sa.column("last_seen", sa.DateTime(timezone=True)),
    )
    force_rows, cluster_rows = [], []
    for cluster_id, by_force in per_cluster.items():
        whole = _nothing()
        for force, totals in by_force.items():
            _add(whole, totals)
            force_rows.append({"cluster_id": cluster_id, "police_force": force, **_row(totals)})
        if whole["cases"] < 2:  # a cluster of one keeps no totals: its member row is them
            force_rows = [row for row in force_rows if row["cluster_id"] != cluster_id]
        cluster_rows.append({"target": cluster_id, "size": whole["cases"], **_row(whole, with_cases=False)})
    if force_rows:
        connection.execute(forces.insert(), force_rows)
    if cluster_rows:
        names = ("size", "victims", "child_victims", "money", "first_seen", "last_seen")
        connection.execute(
            cluster.update()
            .where(cluster.c.id == sa.bindparam("target"))
            .values(**{name: sa.bindparam(name) for name in names}),
            cluster_rows,
        )


def _nothing() -> dict:
    return {"cases": 0, "victims": 0, "child_victims": 0, "money": {}, "first": None, "last": None}


def _add(totals: dict, more: dict) -> None:
    for name in ("cases", "victims", "child_victims"):
        totals[name] += more[name]
    for currency, amount in more["money"].items():
        totals["money"][currency] = totals["money"].get(currency, Decimal(0)) + amount
    totals["first"] = min(filter(None, (totals["first"], more["first"])))
    totals["last"] = max(filter(None, (totals["last"], more["last"])))


def _row(totals: dict, *, with_cases: bool = True) -> dict:
    row = {
        "victims": totals["victims"],
        "child_victims": totals["child_victims"],
        "money": {currency: str(amount) for currency, amount in sorted(totals["money"].items())},
        "first_seen": totals["first"],
        "last_seen": totals["last"],
    }
    return {"cases": totals["cases"], **row} if with_cases else row


def downgrade() -> None:
    op.drop_table("cluster_force")
    for name in _ORDERS:
        op.drop_index(f"ix_cluster_by_{name}", table_name="cluster")
    with op.batch_alter_table("cluster") as batch:
        for column in ("last_seen", "first_seen", "money", "child_victims", "victims"):
            batch.drop_column(column)
