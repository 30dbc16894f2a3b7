"""SLO counter samples for embedded scraping (issue 12).

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lightkeeper.server.store.types import UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "slo_samples",
        sa.Column("id", sa.Integer(), primary_key=True, autoincrement=True),
        sa.Column("slo", sa.String(200), nullable=False),
        sa.Column("target", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("count", sa.Integer(), nullable=False),
        sa.Column("good", sa.LargeBinary(), nullable=False),
        sa.Column("total", sa.LargeBinary(), nullable=False),
    )
    op.create_index("ix_slo_samples_slo_at", "slo_samples", ["slo", "at", "target"], unique=True)


def downgrade() -> None:
    op.drop_index("ix_slo_samples_slo_at", table_name="slo_samples")
    op.drop_table("slo_samples")
