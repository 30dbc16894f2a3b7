"""Every table of the first server release.

Written out in full rather than from `metadata.create_all`, so that later changes to
tables.py show up as new revisions instead of silently rewriting history.

Revision ID: 0001
Revises:
Create Date: 2026-12-02
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from lightkeeper.server.store.types import UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

Id = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
OPEN = sa.text("resolved_at IS NULL")


def _id() -> sa.Column[int]:
    return sa.Column("id", Id, primary_key=True, autoincrement=True)


def upgrade() -> None:
    op.create_table(
        "probes",
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("source", sa.String(8), nullable=False),
        sa.Column("config", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("deleted_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("name", name="pk_probes"),
    )
    op.create_table(
        "probe_state",
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("state", sa.String(16), nullable=False, server_default="unknown"),
        sa.Column("consecutive_failures", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("last_checked_at", UTCDateTime()),
        sa.Column("last_latency_ms", sa.Float()),
        sa.Column("last_error", sa.Text()),
        sa.Column("last_tls_expiry_seconds", sa.Float()),
        sa.Column("next_run_at", UTCDateTime()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("probe", name="pk_probe_state"),
    )
    op.create_index("ix_probe_state_next_run_at", "probe_state", ["next_run_at"])
    op.create_table(
        "results",
        _id(),
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("checked_at", UTCDateTime(), nullable=False),
        sa.Column("ok", sa.Boolean(), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("latency_ms", sa.Float()),
        sa.Column("error", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_results"),
    )
    op.create_index("ix_results_probe_checked_at", "results", ["probe", "checked_at"])
    op.create_index("ix_results_checked_at", "results", ["checked_at"])
    op.create_table(
        "state_changes",
        _id(),
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("state", sa.String(8), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_state_changes"),
    )
    op.create_index("ix_state_changes_probe_at", "state_changes", ["probe", "at"])
    op.create_index("ix_state_changes_at", "state_changes", ["at"])
    op.create_table(
        "rollups",
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("resolution", sa.String(8), nullable=False),
        sa.Column("bucket_start", UTCDateTime(), nullable=False),
        sa.Column("checks", sa.Integer(), nullable=False),
        sa.Column("failures", sa.Integer(), nullable=False),
        sa.Column("latency_sum_ms", sa.Float(), nullable=False),
        sa.Column("sketch", sa.LargeBinary()),
        sa.Column("up_seconds", sa.Float(), nullable=False),
        sa.Column("down_seconds", sa.Float(), nullable=False),
        sa.Column("no_data_seconds", sa.Float(), nullable=False),
        sa.Column("maintenance_seconds", sa.Float(), nullable=False),
        sa.PrimaryKeyConstraint("probe", "resolution", "bucket_start", name="pk_rollups"),
    )
    op.create_index("ix_rollups_resolution_bucket_start", "rollups", ["resolution", "bucket_start"])
    op.create_table(
        "incidents",
        _id(),
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("resolved_at", UTCDateTime()),
        sa.Column("cause", sa.Text()),
        sa.PrimaryKeyConstraint("id", name="pk_incidents"),
    )
    op.create_index("ix_incidents_probe_started_at", "incidents", ["probe", "started_at"])
    op.create_index(
        "uq_incidents_open_probe",
        "incidents",
        ["probe"],
        unique=True,
        sqlite_where=OPEN,
        postgresql_where=OPEN,
    )
    op.create_table(
        "maintenance",
        _id(),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("probes", sa.JSON(), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime()),
        sa.Column("cron", sa.String(200)),
        sa.Column("duration_seconds", sa.Integer()),
        sa.Column("timezone", sa.String(64), nullable=False, server_default="UTC"),
        sa.PrimaryKeyConstraint("id", name="pk_maintenance"),
    )
    op.create_table(
        "outbox",
        _id(),
        sa.Column("dedupe_key", sa.String(200), nullable=False),
        sa.Column("kind", sa.String(64), nullable=False),
        sa.Column("payload", sa.JSON(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False, server_default="0"),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.Column("last_error", sa.Text()),
        sa.Column("lease_owner", sa.String(64)),
        sa.Column("lease_expires_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_outbox"),
        sa.UniqueConstraint("dedupe_key", name="uq_outbox_dedupe_key"),
    )
    op.create_index("ix_outbox_sent_at_next_attempt_at", "outbox", ["sent_at", "next_attempt_at"])
    op.create_table(
        "heartbeat_pings",
        _id(),
        sa.Column("probe", sa.String(200), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("kind", sa.String(8), nullable=False),
        sa.Column("exit_code", sa.Integer()),
        sa.PrimaryKeyConstraint("id", name="pk_heartbeat_pings"),
    )
    op.create_index("ix_heartbeat_pings_probe_at", "heartbeat_pings", ["probe", "at"])
    op.create_table(
        "admin_tokens",
        _id(),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_admin_tokens"),
        sa.UniqueConstraint("sha256", name="uq_admin_tokens_sha256"),
    )
    op.create_table(
        "instances",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("heartbeat_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_instances"),
    )


def downgrade() -> None:
    for table in (
        "instances",
        "admin_tokens",
        "heartbeat_pings",
        "outbox",
        "maintenance",
        "incidents",
        "rollups",
        "state_changes",
        "results",
        "probe_state",
        "probes",
    ):
        op.drop_table(table)
