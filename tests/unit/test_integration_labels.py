"""Bounded label helpers and the lazy-import/patch helpers shared by the integrations."""

from __future__ import annotations

import os
import re
import sys
import types

import pytest

from lightkeeper.sdk.integrations import _labels, patching
from lightkeeper.sdk.integrations.requests import host_of
from lightkeeper.sdk.integrations.sqlalchemy import statement_for_log


@pytest.mark.parametrize(
    ("statement", "expected"),
    [
        ("SELECT 1", ("SELECT", "none")),
        ("select * from users where id = %(id_1)s", ("SELECT", "users")),
        ('SELECT * FROM "public"."Users" u JOIN orders o ON u.id = o.user_id', ("SELECT", "users")),
        ("INSERT INTO items (a, b) VALUES ($1, $2)", ("INSERT", "items")),
        ("INSERT INTO public.items SELECT * FROM staging", ("INSERT", "items")),
        ("UPDATE accounts SET balance = balance - ?", ("UPDATE", "accounts")),
        ("DELETE FROM sessions WHERE token = 'FROM secrets'", ("DELETE", "sessions")),
        ("WITH recent AS (SELECT * FROM events) SELECT * FROM recent", ("SELECT", "events")),
        (
            "WITH x AS (INSERT INTO audit (a) VALUES (1) RETURNING id) UPDATE accounts SET a = 1",
            ("UPDATE", "audit"),
        ),
        (
            "WITH RECURSIVE t(n) AS (VALUES (1) UNION ALL SELECT n + 1 FROM t) SELECT sum(n) FROM t",
            ("SELECT", "none"),
        ),
        ("SELECT * FROM generate_series(1, 3) g JOIN users u ON true", ("SELECT", "users")),
        ("SELECT * FROM (SELECT * FROM users) AS s", ("SELECT", "users")),
        ("CREATE TABLE IF NOT EXISTS widgets (id int)", ("CREATE", "widgets")),
        ("TRUNCATE TABLE widgets", ("TRUNCATE", "widgets")),
        ("  -- leading comment\n/* block */ select a from b", ("SELECT", "b")),
        ("SELECT pg_sleep(0.2)", ("SELECT", "none")),
        ("COPY measurements FROM STDIN", ("COPY", "measurements")),
        ("EXPLAIN ANALYZE SELECT * FROM foo", ("EXPLAIN", "foo")),
        ("BEGIN", ("BEGIN", "none")),
        ("", ("OTHER", "none")),
        ("hello world", ("OTHER", "none")),
        ("SELECT * FROM 'a literal'", ("SELECT", "none")),
        ('SELECT * FROM "weird table name"', ("SELECT", "other")),
        ("DO $$ BEGIN PERFORM 1 FROM inside_body; END $$", ("DO", "none")),
    ],
)
def test_sql_labels(statement: str, expected: tuple[str, str]) -> None:
    assert _labels.sql_labels(statement) == expected


def test_sql_literals_never_become_labels() -> None:
    secret = "hunter2-password"
    operation, table = _labels.sql_labels(f"SELECT * FROM users WHERE password = '{secret}'")
    assert secret not in operation + table
    # A literal where a table name would be is skipped, not used.
    assert _labels.sql_labels(f"SELECT * FROM '{secret}'")[1] == "none"


def test_sql_labels_are_cached_per_statement() -> None:
    statement = "SELECT id FROM cache_probe WHERE id = %(id)s"
    _labels.sql_labels(statement)
    hits = _labels.sql_labels.cache_info().hits
    _labels.sql_labels(statement)
    assert _labels.sql_labels.cache_info().hits == hits + 1
    assert _labels.sql_labels.cache_info().maxsize == _labels.SQL_CACHE_SIZE


def test_distinct_tables_are_capped(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_labels, "_tables", _labels.Capped(2))
    _labels.sql_labels.cache_clear()
    try:
        seen = [_labels.sql_labels(f"SELECT * FROM cap_table_{i}")[1] for i in range(5)]
    finally:
        _labels.sql_labels.cache_clear()
    assert seen == ["cap_table_0", "cap_table_1", "other", "other", "other"]


def test_capped_admits_known_values_after_the_limit() -> None:
    capped = _labels.Capped(2)
    assert [capped(v) for v in ("a", "b", "c", "a", "b", "d")] == ["a", "b", "other", "a", "b", "other"]
    assert len(capped) == 2


@pytest.mark.parametrize(
    ("url", "host"),
    [
        ("https://user:s3cret@API.Example.com:8443/v1/charge?token=abc#frag", "API.Example.com"),
        ("http://127.0.0.1:8000/path?api_key=sk-123", "127.0.0.1"),
        ("http://[::1]:8080/x", "::1"),
        ("https://example.com?q=user@evil.com", "example.com"),
        ("https://example.com#a@b", "example.com"),
    ],
)
def test_host_of_drops_userinfo_port_path_and_query(url: str, host: str) -> None:
    assert host_of(url) == host


def test_host_label_normalises_and_rejects_junk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(_labels, "_hosts", _labels.Capped(3))
    monkeypatch.setattr(_labels, "_host_cache", {})
    assert _labels.host_label("API.Example.COM.") == "api.example.com"
    assert _labels.host_label("[::1]") == "::1"
    assert _labels.host_label("bad host/with?query") == "other"
    assert _labels.host_label("") == "other"
    assert _labels.host_label(None) == "other"
    assert _labels.host_label("b.example") == "b.example"
    assert _labels.host_label("c.example") == "other"  # over the cap of 3
    assert _labels.host_label("api.example.com") == "api.example.com"


def test_http_method_and_status() -> None:
    assert _labels.http_method("get") == "GET"
    assert _labels.http_method(b"POST") == "POST"
    assert _labels.http_method("PROPFIND") == "OTHER"
    assert _labels.status_code(204) == "204"
    assert _labels.status_code(999) == "other"


@pytest.mark.parametrize(
    ("command", "label"),
    [
        ("get", "GET"),
        ("SET", "SET"),
        (b"hset", "HSET"),
        ("CLIENT SETNAME", "CLIENT"),
        ("user:42:password", "other"),
        ("FT.SEARCH", "other"),
        (42, "other"),
        ("", "other"),
    ],
)
def test_redis_command_label(command: object, label: str) -> None:
    assert _labels.redis_command(command) == label


def test_exception_type_and_task_name() -> None:
    assert _labels.exception_type(KeyError("user-secret")) == "KeyError"
    assert _labels.exception_type(TimeoutError) == "TimeoutError"
    assert _labels.task_name("billing.charge_card") == "billing.charge_card"
    assert _labels.task_name("name with spaces and 'quotes'") == "other"
    assert _labels.task_name(None) == "other"
    assert _labels.task_name("x" * 500) == "other"


def test_statement_for_log_masks_literals_keeps_placeholders() -> None:
    logged = statement_for_log(
        "SELECT * FROM users WHERE password = 'hunter2' AND pin = 4242"
        " AND id = $1 AND name = %(name)s AND t = :t1"
    )
    assert "hunter2" not in logged
    assert "4242" not in logged
    assert "$1" in logged and "%(name)s" in logged and ":t1" in logged
    assert len(statement_for_log("SELECT " + "x, " * 5000 + "1")) <= 2000


# --- patching ---------------------------------------------------------------------------


def test_require_names_the_extra_when_missing() -> None:
    with pytest.raises(patching.MissingDependencyError, match=r"pip install 'lightkeeper\[celery\]'"):
        patching.require(
            "celery",
            integration="celery",
            distribution="no-such-distribution-lk",
            minimum="1.0",
            below="2",
            extra="celery",
        )


def test_require_rejects_versions_outside_the_range() -> None:
    # pytest is installed; its version is certainly below 1000.
    with pytest.raises(patching.MissingDependencyError, match=re.escape("supports pytest>=1000.0,<1001")):
        patching.require("pytest", integration="test", distribution="pytest", minimum="1000.0", below="1001")
    with pytest.raises(patching.MissingDependencyError, match=re.escape("pip install 'pytest>=0.1,<1'")):
        patching.require("pytest", integration="test", distribution="pytest", minimum="0.1", below="1")
    assert (
        patching.require("pytest", integration="test", distribution="pytest", minimum="1", below="1000")
        is pytest
    )


def test_missing_library_error_from_public_entry_point(monkeypatch: pytest.MonkeyPatch) -> None:
    import importlib.metadata

    real = importlib.metadata.version

    def version(name: str) -> str:
        if name == "SQLAlchemy":
            raise importlib.metadata.PackageNotFoundError(name)
        return real(name)

    monkeypatch.setattr(importlib.metadata, "version", version)
    import lightkeeper

    with pytest.raises(ImportError, match=r"pip install 'lightkeeper\[sqlalchemy\]'"):
        lightkeeper.instrument_sqlalchemy(object())


@pytest.mark.parametrize(
    ("text", "parsed"),
    [
        ("5.3.4", (5, 3, 4)),
        ("2.0.0rc1", (2, 0, 0)),
        ("0.28", (0, 28)),
        ("1.0b2", (1, 0)),
        ("8.1.0.post1", (8, 1, 0)),
    ],
)
def test_version_tuple(text: str, parsed: tuple[int, ...]) -> None:
    assert patching._version_tuple(text) == parsed


class _Target:
    def call(self, value: int) -> int:
        return value * 2


class _Sub(_Target):
    pass


def _counting(calls: list[str], tag: str):  # type: ignore[no-untyped-def]
    def make(func):  # type: ignore[no-untyped-def]
        def wrapper(self, value):  # type: ignore[no-untyped-def]
            calls.append(tag)
            return func(self, value)

        return wrapper

    return make


def test_patch_class_is_idempotent_and_reversible() -> None:
    calls: list[str] = []
    assert patching.patch_class(_Target, "call", _counting(calls, "class"))
    assert not patching.patch_class(_Target, "call", _counting(calls, "class"))
    try:
        assert _Target().call(2) == 4
        assert calls == ["class"]
    finally:
        assert patching.unpatch_class(_Target, "call")
    assert not patching.unpatch_class(_Target, "call")
    _Target().call(1)
    assert calls == ["class"]


def test_unpatching_an_inherited_method_leaves_no_attribute() -> None:
    calls: list[str] = []
    patching.patch_class(_Sub, "call", _counting(calls, "sub"))
    assert "call" in vars(_Sub)
    patching.unpatch_class(_Sub, "call")
    assert "call" not in vars(_Sub)
    assert _Sub().call(3) == 6


def test_instance_and_class_patches_count_once() -> None:
    calls: list[str] = []
    one, other = _Target(), _Target()
    patching.patch_class(_Target, "call", _counting(calls, "class"))
    try:
        assert patching.patch_instance(one, "call", _counting(calls, "instance"))
        assert not patching.patch_instance(one, "call", _counting(calls, "instance"))
        assert one.call(1) == 2
        assert other.call(1) == 2
        assert calls == ["instance", "class"]
    finally:
        patching.unpatch_class(_Target, "call")
    assert patching.unpatch_instance(one, "call")
    assert "call" not in vars(one)


def test_tracing_seam_sees_past_and_future_targets() -> None:
    seen: list[object] = []
    first, second = types.SimpleNamespace(n=1), types.SimpleNamespace(n=2)
    patching.instrumented("seam-test", first)
    patching.on_instrument("seam-test", seen.append)
    patching.on_instrument("seam-test", seen.append)  # registering twice changes nothing
    patching.instrumented("seam-test", second)
    patching.instrumented("seam-test", None)
    assert seen == [first, second, None]
    patching.uninstrumented("seam-test", first)
    late: list[object] = []
    patching.on_instrument("seam-test", late.append)
    assert all(t is not first for t in late)
    assert any(t is second for t in late)


def test_integration_modules_do_not_import_their_library() -> None:
    # Importing the integration modules must not drag their libraries in: that happens
    # only when an instrument_* function is called.
    code = (
        "import sys, lightkeeper\n"
        "before = set(sys.modules)\n"
        "import lightkeeper.sdk.integrations.celery, lightkeeper.sdk.integrations.sqlalchemy\n"
        "import lightkeeper.sdk.integrations.redis, lightkeeper.sdk.integrations.requests\n"
        "import lightkeeper.sdk.integrations.httpx\n"
        "libs = ('celery', 'kombu', 'sqlalchemy', 'redis', 'requests', 'httpx')\n"
        "print(','.join(m for m in set(sys.modules) - before if m.split('.')[0] in libs))\n"
    )
    import subprocess

    # logfire (a benchmark anchor installed beside us) registers a pydantic plugin that
    # imports requests the first time any pydantic model is built: not ours to count.
    env = {**os.environ, "PYDANTIC_DISABLE_PLUGINS": "__all__"}
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True, env=env
    )
    assert out.stdout.strip() == ""
