"""Engine, sessions, schema creation and the demo tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from examples.saas_app.models import (
    Base,
    ContentItem,
    ContentStatus,
    Membership,
    Organization,
    User,
    Workspace,
)
from examples.saas_app.security import hash_password

# The demo tenant. `lightkeeper demo` logs in with these accounts.
DEMO_PASSWORD = "demo-password"
DEMO_USERS: tuple[tuple[str, str, str], ...] = (
    ("alice@example.com", "Alice Admin", "owner"),
    ("bob@example.com", "Bob Editor", "member"),
    ("carol@example.com", "Carol Reviewer", "member"),
)


def make_engine(url: str) -> Engine:
    parsed = make_url(url)
    if parsed.drivername == "postgresql":
        # psycopg 3 is what the `postgres` extra installs; SQLAlchemy would pick psycopg2.
        parsed = parsed.set(drivername="postgresql+psycopg")
    if parsed.get_backend_name() == "sqlite":
        engine = create_engine(parsed, connect_args={"timeout": 15})
        event.listen(engine, "connect", _sqlite_pragmas)
        return engine
    return create_engine(parsed, pool_pre_ping=True, connect_args={"connect_timeout": 5})


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets readers and the single writer work side by side under concurrent requests.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


# "A day ago" and "a week ago" as one row, for the workflow aggregates of
# examples/lightkeeper.yaml: date arithmetic is the one thing SQLite and PostgreSQL spell
# differently, so it lives here and the spec's SQL runs on both. Each side compares in
# the form the app's timestamps are stored in: SQLite holds UTC as text, PostgreSQL a
# timestamp without time zone in the session's time zone.
CUTOFFS_VIEW = "workflow_cutoffs"
_CUTOFFS_SQL = {
    "sqlite": f"CREATE VIEW IF NOT EXISTS {CUTOFFS_VIEW} AS "
    "SELECT datetime('now', '-1 day') AS day_ago, datetime('now', '-7 days') AS week_ago",
    "postgresql": f"CREATE OR REPLACE VIEW {CUTOFFS_VIEW} AS "
    "SELECT LOCALTIMESTAMP - interval '1 day' AS day_ago, LOCALTIMESTAMP - interval '7 days' AS week_ago",
}
# Serializes CREATE OR REPLACE VIEW between workers starting on one PostgreSQL database.
_SCHEMA_LOCK = 7_428_001


def init_database(engine: Engine) -> None:
    """Create the tables, the cut-offs view and, on an empty database, the demo tenant."""
    Base.metadata.create_all(engine)
    with engine.begin() as conn:
        if engine.dialect.name == "postgresql":
            conn.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _SCHEMA_LOCK})
        conn.execute(text(_CUTOFFS_SQL[engine.dialect.name]))
    with Session(engine) as session:
        if session.scalar(select(Organization.id).limit(1)) is not None:
            return
        org = Organization(name="Acme Publishing")
        marketing = Workspace(organization=org, name="Marketing")
        Workspace(organization=org, name="Documentation")
        password_hash = hash_password(DEMO_PASSWORD)
        users = [User(email=email, name=name, password_hash=password_hash) for email, name, _ in DEMO_USERS]
        session.add_all([org, *users])
        session.flush()
        for user, (_, _, role) in zip(users, DEMO_USERS, strict=True):
            session.add(Membership(user_id=user.id, organization_id=org.id, role=role))
        session.add(
            ContentItem(
                workspace_id=marketing.id,
                author_id=users[1].id,
                title="Spring launch announcement",
                body="We are excited to announce...",
                status=ContentStatus.REVIEW,
            )
        )
        try:
            session.commit()
        except IntegrityError:
            # Another worker seeded the same empty database at the same moment.
            session.rollback()


def get_session(request: Request) -> Iterator[Session]:
    with request.app.state.sessions() as session:
        yield session


SessionDep = Annotated[Session, Depends(get_session)]
