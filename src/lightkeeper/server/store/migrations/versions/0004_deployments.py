"""Deployments reported by CI: one row per (env, component, version), start and finish.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-11
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lightkeeper.server.store.types import UTCDateTime

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "deployments",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("env", sa.String(100), nullable=False),
        sa.Column("component", sa.String(100), nullable=False),
        sa.Column("version", sa.String(100), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("started_at", UTCDateTime()),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("commit_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_deployments"),
    )
    op.create_index(
        "ix_deployments_env_component_version", "deployments", ["env", "component", "version"], unique=True
    )
    op.create_index("ix_deployments_finished_at", "deployments", ["finished_at"])


def downgrade() -> None:
    op.drop_table("deployments")
