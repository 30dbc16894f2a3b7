"""LLM cost analytics: raw cost events (unique by event id) and their daily roll-up.

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-10
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lightkeeper.server.store.types import UTCDateTime

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
TOKENS = ("input_tokens", "output_tokens", "cache_read_tokens", "cache_write_tokens", "reasoning_tokens")


def upgrade() -> None:
    op.create_table(
        "llm_events",
        sa.Column("id", Id, primary_key=True, autoincrement=True),
        sa.Column("event_id", sa.String(64), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("status", sa.String(32), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOKENS),
        sa.Column("cost_usd", sa.Float()),
        sa.Column("price_source", sa.String(100), nullable=False),
        sa.Column("latency_seconds", sa.Float(), nullable=False),
        sa.Column("user_hash", sa.String(64)),
        sa.Column("workspace_id", sa.String(200)),
        sa.Column("request_id", sa.String(200)),
        sa.Column("prompt_hash", sa.String(64)),
        sa.PrimaryKeyConstraint("id", name="pk_llm_events"),
        sa.UniqueConstraint("event_id", name="uq_llm_events_event_id"),
    )
    op.create_index("ix_llm_events_at", "llm_events", ["at"])
    op.create_table(
        "llm_daily",
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("provider", sa.String(100), nullable=False),
        sa.Column("model", sa.String(100), nullable=False),
        sa.Column("operation", sa.String(100), nullable=False),
        sa.Column("workspace_id", sa.String(200), nullable=False),
        sa.Column("calls", sa.BigInteger(), nullable=False),
        sa.Column("errors", sa.BigInteger(), nullable=False),
        sa.Column("unpriced", sa.BigInteger(), nullable=False),
        *(sa.Column(name, sa.BigInteger(), nullable=False) for name in TOKENS),
        sa.Column("cost_usd", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("day", "provider", "model", "operation", "workspace_id", name="pk_llm_daily"),
    )


def downgrade() -> None:
    op.drop_table("llm_daily")
    op.drop_index("ix_llm_events_at", table_name="llm_events")
    op.drop_table("llm_events")
