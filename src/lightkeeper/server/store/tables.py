"""Every table of the server on one MetaData (SQLAlchemy Core, no ORM).

Conventions the engine and HTTP layers rely on (README.md has the long form):
- every timestamp is a `UTCDateTime`: aware UTC datetimes in, aware UTC datetimes out;
- probe names are plain strings, not foreign keys: history (results, roll-ups,
  incidents) outlives a probe deleted through the admin API (`probes.deleted_at`);
- ids are 64-bit on PostgreSQL and SQLite's rowid (the only autoincrementing type there).
"""

from __future__ import annotations

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Column,
    Float,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    text,
)

from lightkeeper.server.store.types import UTCDateTime

NAME = 200  # probe names, titles: long enough for people, short enough for an index
metadata = MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "pk": "pk_%(table_name)s",
    }
)

Id = BigInteger().with_variant(Integer(), "sqlite")


def _id() -> Column[int]:
    return Column("id", Id, primary_key=True, autoincrement=True)


probes = Table(
    "probes",
    metadata,
    Column("name", String(NAME), primary_key=True),
    Column("source", String(8), nullable=False),  # "spec" | "api"
    Column("config", JSON, nullable=False),  # the Probe model dump
    Column("created_at", UTCDateTime, nullable=False),
    Column("updated_at", UTCDateTime, nullable=False),
    Column("deleted_at", UTCDateTime),
)

probe_state = Table(
    "probe_state",
    metadata,
    Column("probe", String(NAME), primary_key=True),
    Column("state", String(16), nullable=False, server_default="unknown"),
    Column("consecutive_failures", Integer, nullable=False, server_default="0"),
    Column("last_checked_at", UTCDateTime),
    Column("last_latency_ms", Float),
    Column("last_error", Text),
    Column("last_tls_expiry_seconds", Float),
    Column("next_run_at", UTCDateTime),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Index(None, "next_run_at"),
)

results = Table(
    "results",
    metadata,
    _id(),
    Column("probe", String(NAME), nullable=False),
    Column("checked_at", UTCDateTime, nullable=False),
    Column("ok", Boolean, nullable=False),
    Column("status", String(8), nullable=False),  # "up" | "down" | "no_data"
    Column("latency_ms", Float),
    Column("error", Text),
    Index(None, "probe", "checked_at"),
    Index(None, "checked_at"),
)

state_changes = Table(
    "state_changes",
    metadata,
    _id(),
    Column("probe", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("state", String(8), nullable=False),  # "up" | "down" | "no_data"
    Index(None, "probe", "at"),
    Index(None, "at"),
)

rollups = Table(
    "rollups",
    metadata,
    Column("probe", String(NAME), primary_key=True),
    Column("resolution", String(8), primary_key=True),  # "minute" | "hour" | "day" | "month"
    Column("bucket_start", UTCDateTime, primary_key=True),
    Column("checks", Integer, nullable=False),
    Column("failures", Integer, nullable=False),
    Column("latency_sum_ms", Float, nullable=False),
    Column("sketch", LargeBinary),  # lightkeeper.server.store.sketch encoding; NULL: no latency
    Column("up_seconds", Float, nullable=False),
    Column("down_seconds", Float, nullable=False),
    Column("no_data_seconds", Float, nullable=False),
    Column("maintenance_seconds", Float, nullable=False),
    Index(None, "resolution", "bucket_start"),
)

incidents = Table(
    "incidents",
    metadata,
    _id(),
    Column("probe", String(NAME), nullable=False),
    Column("started_at", UTCDateTime, nullable=False),
    Column("resolved_at", UTCDateTime),
    Column("cause", Text),
    Index(None, "probe", "started_at"),
    # at most one open incident per probe, enforced by the database (a restart or a
    # second replica can never open a duplicate)
    Index(
        "uq_incidents_open_probe",
        "probe",
        unique=True,
        sqlite_where=text("resolved_at IS NULL"),
        postgresql_where=text("resolved_at IS NULL"),
    ),
)

maintenance = Table(
    "maintenance",
    metadata,
    _id(),
    Column("title", String(NAME), nullable=False),
    Column("probes", JSON, nullable=False),  # list of names; empty = every probe
    Column("starts_at", UTCDateTime, nullable=False),  # one-off start, or first recurrence
    Column("ends_at", UTCDateTime),  # one-off end, or end of the recurrence (NULL: forever)
    Column("cron", String(NAME)),  # recurring windows: start times, in `timezone`
    Column("duration_seconds", Integer),  # length of each recurring window
    Column("timezone", String(64), nullable=False, server_default="UTC"),
)

outbox = Table(
    "outbox",
    metadata,
    _id(),
    Column("dedupe_key", String(NAME), nullable=False, unique=True),
    Column("kind", String(64), nullable=False),
    Column("payload", JSON, nullable=False),
    Column("created_at", UTCDateTime, nullable=False),
    Column("attempts", Integer, nullable=False, server_default="0"),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    Column("last_error", Text),
    Column("lease_owner", String(64)),
    Column("lease_expires_at", UTCDateTime),
    Index(None, "sent_at", "next_attempt_at"),
)

heartbeat_pings = Table(
    "heartbeat_pings",
    metadata,
    _id(),
    Column("probe", String(NAME), nullable=False),
    Column("at", UTCDateTime, nullable=False),
    Column("kind", String(8), nullable=False),  # "success" | "start" | "fail"
    Column("exit_code", Integer),
    Index(None, "probe", "at"),
)

admin_tokens = Table(
    "admin_tokens",
    metadata,
    _id(),
    Column("sha256", String(64), nullable=False, unique=True),
    Column("created_at", UTCDateTime, nullable=False),
)

instances = Table(
    "instances",
    metadata,
    Column("id", String(64), primary_key=True),
    Column("started_at", UTCDateTime, nullable=False),
    Column("heartbeat_at", UTCDateTime, nullable=False),
)

# --- LLM cost analytics (issue 13; owned by server/cost, revision 0002) ---------
LLM = 100  # provider, model and operation names: bounded labels, not free text

llm_events = Table(
    "llm_events",
    metadata,
    _id(),
    Column("event_id", String(64), nullable=False, unique=True),  # idempotent ingest
    Column("at", UTCDateTime, nullable=False),
    Column("provider", String(LLM), nullable=False),
    Column("model", String(LLM), nullable=False),
    Column("operation", String(LLM), nullable=False),
    Column("status", String(32), nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float),  # NULL: unpriced, never a guessed zero
    Column("price_source", String(LLM), nullable=False),
    Column("latency_seconds", Float, nullable=False),
    Column("user_hash", String(64)),
    Column("workspace_id", String(NAME)),
    Column("request_id", String(NAME)),
    Column("prompt_hash", String(64)),
    Index(None, "at"),
)

llm_daily = Table(
    "llm_daily",
    metadata,
    Column("day", String(10), primary_key=True),  # UTC day, YYYY-MM-DD
    Column("provider", String(LLM), primary_key=True),
    Column("model", String(LLM), primary_key=True),
    Column("operation", String(LLM), primary_key=True),
    Column("workspace_id", String(NAME), primary_key=True),  # "" for none
    Column("calls", BigInteger, nullable=False),
    Column("errors", BigInteger, nullable=False),
    Column("unpriced", BigInteger, nullable=False),
    Column("input_tokens", BigInteger, nullable=False),
    Column("output_tokens", BigInteger, nullable=False),
    Column("cache_read_tokens", BigInteger, nullable=False),
    Column("cache_write_tokens", BigInteger, nullable=False),
    Column("reasoning_tokens", BigInteger, nullable=False),
    Column("cost_usd", Float, nullable=False),
)

# --- Deployments (issue 14; owned by server/deploys, revision 0004) ----------
DEPLOY = 100  # environment, component and version names

deployments = Table(
    "deployments",
    metadata,
    _id(),
    Column("env", String(DEPLOY), nullable=False),
    Column("component", String(DEPLOY), nullable=False),
    Column("version", String(DEPLOY), nullable=False),
    Column("status", String(16), nullable=False),  # in_progress | success | failure | rolled_back
    Column("started_at", UTCDateTime),  # NULL: only a finish was reported
    Column("finished_at", UTCDateTime),
    Column("commit_at", UTCDateTime),
    Index(None, "env", "component", "version", unique=True),  # a retried start/finish is one deploy
    Index(None, "finished_at"),
)
