"""Fuzz the admin and read API from the served OpenAPI with schemathesis: never a 5xx.

Both valid and invalid inputs are generated (wrong types, missing fields, huge values,
odd characters), with and without the admin token; only a server error fails the test.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import schemathesis
from hypothesis import HealthCheck, settings
from pydantic import SecretStr
from schemathesis.checks import not_a_server_error

from lightkeeper.server.config import ServerConfig
from lightkeeper.server.http import auth
from lightkeeper.server.http.app import create_app
from lightkeeper.server.store.db import make_engine, upgrade
from lightkeeper.spec.server import ServerSection
from tests.server.http import seed
from tests.server.http.conftest import ADMIN, TOKEN


def _schema() -> schemathesis.BaseSchema:
    # schemathesis collects its cases from a schema object at import time, so the app and
    # its SQLite file are made here (the folder is removed when the interpreter exits)
    folder = Path(_FOLDER.name)
    engine = make_engine(f"sqlite:///{folder / 'fuzz.db'}")
    upgrade(engine)
    auth.ensure_admin_token(engine, TOKEN)
    seed.probe(engine, "web")
    seed.probe(engine, "beat", kind="heartbeat")
    config = ServerConfig(admin_token=SecretStr(TOKEN), server=ServerSection())
    return schemathesis.openapi.from_asgi("/openapi.json", create_app(config, engine, instrument=False))


_FOLDER = tempfile.TemporaryDirectory(prefix="lightkeeper-fuzz-")
schema = _schema()


@schema.parametrize()
@settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))
def test_no_server_errors_with_the_token(case: schemathesis.Case) -> None:
    response = case.call(headers=ADMIN)
    case.validate_response(response, checks=[not_a_server_error])


@schema.parametrize()
@settings(max_examples=5, deadline=None, suppress_health_check=list(HealthCheck))
def test_admin_routes_refuse_anonymous_callers(case: schemathesis.Case) -> None:
    response = case.call()
    case.validate_response(response, checks=[not_a_server_error])
    admin = case.operation.method.upper() in ("POST", "PUT", "DELETE") and case.path.startswith("/api/")
    if admin and case.method.upper() == case.operation.method.upper():  # not a mutated method (405)
        assert response.status_code == 401
