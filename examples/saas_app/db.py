"""Engine, sessions, schema creation and the demo tenant."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Annotated, Any

from fastapi import Depends, Request
from sqlalchemy import Engine, create_engine, event, select
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


def init_database(engine: Engine) -> None:
    """Create the tables and, on an empty database, the demo tenant."""
    Base.metadata.create_all(engine)
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
