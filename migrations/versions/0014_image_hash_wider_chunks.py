"""image hash index: 11 chunks of 23-24 bits instead of 16 of 16

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-27 22:20:00

At a million stored hashes, 16-bit chunks make some 4,000 candidates per lookup to fetch and check;
23-24-bit chunks about 300, for about 3,100 index probes (service.domain.perceptual). The chunks
are worked out again from each stored hash.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0014"
down_revision = "0013"
branch_labels = None
depends_on = None

OLD_CHUNKS = [f"chunk_{position:02d}" for position in range(16)]
WIDTHS = {
    16: (16,) * 16,
    11: (24, 24, 24, 23, 23, 23, 23, 23, 23, 23, 23),
}
BATCH = 5_000


def upgrade() -> None:
    _rechunk(11)


def downgrade() -> None:
    _rechunk(16)


def _rechunk(count: int) -> None:
    widths = WIDTHS[count]
    for chunk in OLD_CHUNKS:
        op.execute(f"DROP INDEX IF EXISTS ix_image_hash_{chunk}")
    existing = {column["name"] for column in sa.inspect(op.get_bind()).get_columns("image_hash")}
    wanted = [f"chunk_{position:02d}" for position in range(count)]
    for name in sorted(existing - set(wanted)):
        if name.startswith("chunk_"):
            op.drop_column("image_hash", name)
    for name in wanted:
        if name not in existing:  # filled in below, before anything may read it
            op.add_column("image_hash", sa.Column(name, sa.Integer(), nullable=False, server_default="0"))
            with op.batch_alter_table("image_hash") as batch:
                batch.alter_column(name, server_default=None)
    connection = op.get_bind()
    hashes = sa.table("image_hash", sa.column("evidence_id"), sa.column("pdq_hash"), *map(sa.column, wanted))
    update = (
        hashes.update()
        .where(hashes.c.evidence_id == sa.bindparam("target"))
        .values(**{name: sa.bindparam(name) for name in wanted})
    )
    rows = connection.execute(sa.select(hashes.c.evidence_id, hashes.c.pdq_hash)).all()
    for start in range(0, len(rows), BATCH):
        connection.execute(
            update,
            [
                {"target": evidence_id, **_chunks(pdq_hash, widths)}
                for evidence_id, pdq_hash in rows[start : start + BATCH]
            ],
        )
    for name in wanted:
        op.create_index(f"ix_image_hash_{name}", "image_hash", [name], unique=False)


def _chunks(pdq_hash: str, widths: tuple[int, ...]) -> dict[str, int]:
    value, shift, chunks = int(pdq_hash, 16), 256, {}
    for position, width in enumerate(widths):
        shift -= width
        chunks[f"chunk_{position:02d}"] = (value >> shift) & ((1 << width) - 1)
    return chunks
