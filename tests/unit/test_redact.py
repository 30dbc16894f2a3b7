"""Behaviour of the shared redaction: secrets never survive, ordinary events are untouched."""

from __future__ import annotations

import copy
import io
import json
from collections import namedtuple
from collections.abc import Iterator
from types import MappingProxyType
from typing import Any

import pytest
import structlog

from lightkeeper.sdk import redact
from lightkeeper.sdk.redact import (
    MASK,
    is_sensitive_key,
    redact_headers,
    redact_mapping,
    redact_text,
    redact_url,
    redact_value,
    structlog_processor,
)
from lightkeeper.sdk.redact import keys as key_rules
from lightkeeper.sdk.redact import text as text_rules
from tests.unit.redaction_corpus import (
    ALL_SECRETS,
    EMAILS,
    JWTS,
    NORMAL_EVENTS,
    OPAQUE_TOKENS,
    PASSWORDS,
    SECRET_CASES,
    SELF_IDENTIFYING,
    SecretCase,
    changed_fields,
    leaked,
    render,
)


def _process(event: dict[str, Any]) -> dict[str, Any]:
    result: dict[str, Any] = structlog_processor(None, "info", copy.deepcopy(event))
    return result


@pytest.fixture
def emails_redacted() -> Iterator[None]:
    redact.configure(redact_emails=True)
    try:
        yield
    finally:
        redact.configure(redact_emails=False)


# ------------------------------------------------------------------ the corpus


def test_corpus_is_large_and_meaningful() -> None:
    assert len(SECRET_CASES) >= 100
    assert len(NORMAL_EVENTS) >= 300
    assert len({case.shape for case in SECRET_CASES}) >= 30
    # Without redaction every case leaks: the leak check below can fail.
    for case in SECRET_CASES:
        assert leaked(case, render(case.event)) == list(case.secrets), case.shape
    for event in NORMAL_EVENTS:
        assert MASK not in render(event)


def _case_id(case: SecretCase) -> str:
    return case.shape.replace(" ", "-")


@pytest.mark.parametrize("case", SECRET_CASES, ids=_case_id)
def test_processor_masks_every_secret_case(case: SecretCase) -> None:
    assert leaked(case, render(_process(case.event))) == []


@pytest.mark.parametrize("case", SECRET_CASES, ids=_case_id)
def test_redact_value_masks_every_secret_case(case: SecretCase) -> None:
    assert leaked(case, render(redact_value(case.event))) == []


@pytest.mark.parametrize("event", NORMAL_EVENTS, ids=lambda e: str(e["event"])[:40])
def test_normal_events_are_left_alone(event: dict[str, Any]) -> None:
    assert changed_fields(event, _process(event)) == []
    assert render(redact_value(event)) == render(event)


def test_recall_is_total_and_false_positives_are_zero() -> None:
    caught = sum(not leaked(case, render(_process(case.event))) for case in SECRET_CASES)
    false_positives = sum(bool(changed_fields(e, _process(e))) for e in NORMAL_EVENTS)
    assert (caught / len(SECRET_CASES), false_positives) == (1.0, 0)


def test_known_clean_cache_never_holds_a_secret() -> None:
    for case in SECRET_CASES:
        _process(case.event)
        redact_value(case.event)
    remembered = "\n".join(text_rules._CLEAN)
    assert remembered  # the cache is in use: ordinary strings of these events are in it
    for case in SECRET_CASES:
        assert leaked(case, remembered) == [], case.shape


def _grams(text: str, n: int = 4) -> set[str]:
    return {text[i : i + n] for i in range(len(text) - n + 1)}


@pytest.mark.parametrize("case", SECRET_CASES, ids=_case_id)
def test_mask_never_echoes_part_of_a_secret(case: SecretCase) -> None:
    output = render(_process(case.event))
    context = render(case.event)
    for secret in case.secrets:
        for form in (secret, json.dumps(secret)[1:-1]):
            context = context.replace(form, " ")
    explained = _grams(context) | _grams(MASK)
    for secret in case.secrets:
        echoed = {gram for gram in _grams(secret) if gram in output} - explained
        assert not echoed, f"{case.shape}: fragments {sorted(echoed)[:5]} of the secret survived"


def test_mask_is_fixed_and_shares_nothing_with_secrets() -> None:
    assert MASK == "[REDACTED]"
    for secret in ALL_SECRETS:
        assert not _grams(secret) & _grams(MASK)


# ------------------------------------------------------------------------ keys


@pytest.mark.parametrize(
    "key",
    [
        "password",
        "Password",
        "db_password",
        "PGPASSWORD",
        "passwd",
        "pwd",
        "MYSQL_PWD",
        "passphrase",
        "token",
        "access_token",
        "refreshToken",
        "reset_token",
        "x-auth-token",
        "secret",
        "client_secret",
        "webhookSecret",
        "api_key",
        "apikey",
        "X-Api-Key",
        "apiKey",
        "access_key",
        "AWS_SECRET_ACCESS_KEY",
        "aws_access_key_id",
        "private_key",
        "privateKey",
        "session",
        "session_id",
        "sessionid",
        "PHPSESSID",
        "JSESSIONID",
        "connect.sid",
        "credentials",
        "authorization",
        "Proxy-Authorization",
        "auth",
        "basic_auth",
        "cookie",
        "Set-Cookie",
        "csrftoken",
        "X-XSRF-TOKEN",
        "x-amz-security-token",
        "X-Amz-Signature",
        "dsn",
        "sentry_dsn",
        "pin",
        "otp",
        "card_number",
        "cardNumber",
        "cvv",
        "api_key_hash",
        "refresh_tokens",
        "api_tokens",
    ],
)
def test_sensitive_keys(key: str) -> None:
    assert is_sensitive_key(key)


@pytest.mark.parametrize(
    "key",
    [
        "event",
        "token_count",
        "tokens_used",
        "prompt_tokens",
        "completion_tokens",
        "total_tokens",
        "max_tokens",
        "maxTokens",
        "cache_read_input_tokens",
        "gen_ai.usage.output_tokens",
        "reasoningTokens",
        "tokens",
        "tokenizer",
        "token_type",
        "token_expires_in",
        "author",
        "author_id",
        "authority",
        "authenticated",
        "passport_country",
        "passport",
        "bypass",
        "session_count",
        "session_duration_ms",
        "sessions",
        "keyboard",
        "keyboard_layout",
        "monkey",
        "secretary",
        "password_reset_requested",
        "password_changed_at",
        "password_strength",
        "auth_provider",
        "auth_method",
        "secret_count",
        "api_key_count",
        "cookie_name",
        "opinion",
        "design",
        "pinned",
        "hotpath",
        "jwt_algorithm",
        "request_id",
        "user_agent",
        "",
    ],
)
def test_ordinary_keys(key: str) -> None:
    assert not is_sensitive_key(key)


def test_key_cache_is_bounded() -> None:
    for i in range(3 * key_rules._KEY_CACHE_MAX):
        is_sensitive_key(f"field_{i}")
    assert len(key_rules._KEY_CACHE) <= key_rules._KEY_CACHE_MAX
    assert is_sensitive_key("db_password")


def test_key_anchors_cover_every_spelling_of_every_sensitive_key() -> None:
    # Free text is only searched for key=value pairs when it contains an anchor.
    for fragment in redact.SENSITIVE_KEY_FRAGMENTS:
        for spelling in {fragment.replace("_", sep) for sep in ("", "_", "-", ".", " ")}:
            assert key_rules.may_name_a_secret(spelling), spelling
    for word in redact.SENSITIVE_KEY_WORDS:
        assert key_rules.may_name_a_secret(word), word


def test_deny_lists_are_plain_data() -> None:
    names = (
        "SENSITIVE_KEY_FRAGMENTS",
        "SENSITIVE_KEY_WORDS",
        "SAFE_KEYS",
        "SAFE_KEY_SUFFIXES",
        "TOKEN_COUNT_QUALIFIERS",
    )
    for name in names:
        data = getattr(redact, name)
        assert data and all(isinstance(item, str) and item == item.lower() for item in data), name


# ------------------------------------------------------------------------ text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("postgresql://user:PASSWORD@host/db", "postgresql://user:[REDACTED]@host/db"),
        (
            "connect failed: postgresql+psycopg://app:p%40ss@db.internal:5432/app?sslmode=require",
            "connect failed: postgresql+psycopg://app:[REDACTED]@db.internal:5432/app?sslmode=require",
        ),
        ("redis://:hunter2hunter2@cache:6379/0 down", "redis://:[REDACTED]@cache:6379/0 down"),
        ("amqp://guest:p@ss@rabbit//", "amqp://guest:[REDACTED]@rabbit//"),
        ("GET /cb?token=abc&x=1", "GET /cb?token=[REDACTED]&x=1"),
        ("/cb?token=abc&x=1&password=&next=%2Fhome", "/cb?token=[REDACTED]&x=1&password=&next=%2Fhome"),
        (
            "/cb?next=/x?api_key=k1&v=eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxIn0.c2lnbmF0dXJl",
            "/cb?next=/x?api_key=[REDACTED]&v=[REDACTED]",
        ),
        ("/hooks/sk_live_0123456789abcdefABCD?x=1", "/hooks/[REDACTED]?x=1"),
        ("login failed password=hunter2 user=bob", "login failed password=[REDACTED] user=bob"),
        ('{"password": "hunter2", "max_tokens": 256}', '{"password": "[REDACTED]", "max_tokens": 256}'),
        ("Authorization: Bearer abc123def456ghi", "Authorization: [REDACTED]"),
        ("retry with bearer abc123def456ghi now", "retry with bearer [REDACTED] now"),
        ("Set-Cookie: sessionid=abc123; Path=/", "Set-Cookie: [REDACTED]"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG+bPxRfiCY", "aws_secret_access_key = [REDACTED]"),
        ("WHERE token = $1 AND password = %(pw)s", "WHERE token = $1 AND password = %(pw)s"),
        ("UPDATE t SET secret = 'plain' WHERE id = 1", "UPDATE t SET secret = '[REDACTED]' WHERE id = 1"),
        ("-----BEGIN PRIVATE KEY-----\nMIIE\n-----END PRIVATE KEY-----!", "[REDACTED]!"),
        ("-----BEGIN OPENSSH PRIVATE KEY-----\nb3BlbnNzaC1rZXk (truncated", "[REDACTED]"),
    ],
)
def test_redact_text(text: str, expected: str) -> None:
    assert redact_text(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "password_reset_requested",
        "The secretary reviewed the token economy; author and authority agree.",
        "monkey keyboard passport session",
        "Basic authentication is disabled",
        "Bearer of bad news",
        "sk-learn-compatible estimator",
        "task-queue-consumer-00001234",
        "https://api.partner.io/v2/orders?page=3&per_page=100",
        "http://db.internal:5432/app",
        "prompt_tokens=512 completion_tokens=128 max_tokens=1024",
        "2024-05-01T12:00:00.123456Z",
        "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----",
        "user alice.martin@example.com signed up",
        "",
    ],
)
def test_ordinary_text_is_returned_unchanged(text: str) -> None:
    assert redact_text(text) is text


@pytest.mark.parametrize("secret", SELF_IDENTIFYING)
def test_self_identifying_secrets_are_found_anywhere(secret: str) -> None:
    for text in (secret, f"x {secret} y", f"({secret})", f"key:{secret}", f'"{secret}"'):
        out = redact_text(text)
        assert secret not in out and MASK in out, text


def test_redact_text_accepts_non_strings() -> None:
    assert redact_text(ValueError(f"postgresql://u:{PASSWORDS[0]}@h/db")) == "postgresql://u:[REDACTED]@h/db"  # type: ignore[arg-type]


def test_emails_only_when_configured(emails_redacted: None) -> None:
    for email in [*EMAILS, "a@b.io"]:
        assert redact_text(f"invite sent to {email}.") == f"invite sent to {MASK}."
        assert _process({"event": "invite", "to": email})["to"] == MASK
        assert redact_value({"user": {"email": email}}) == {"user": {"email": MASK}}
    assert redact_text("postgresql://alice@db.example.com/app") == "postgresql://alice@db.example.com/app"


def test_emails_kept_by_default() -> None:
    for email in EMAILS:
        assert redact_text(f"invite sent to {email}") == f"invite sent to {email}"
        assert _process({"event": "invite", "to": email})["to"] == email


def test_configure_forgets_cached_clean_strings() -> None:
    text = f"invite for {EMAILS[0]} from the admin console"
    assert _process({"event": text})["event"] == text  # scanned, found clean, remembered
    redact.configure(redact_emails=True)
    try:
        assert EMAILS[0] not in _process({"event": text})["event"]
    finally:
        redact.configure(redact_emails=False)


# ------------------------------------------------------------------ structures


def test_nested_structures_by_key_and_by_value() -> None:
    event = {
        "request": {
            "headers": [("authorization", "Bearer abc123def456ghi"), ("accept", "json")],
            "query": {"api_key": "k1", "page": 2},
            "items": ({"note": JWTS[0]}, {"x": [{"password": "p", "ok": True}]}),
            "tags": {"a", "b"},
            "frozen": frozenset({OPAQUE_TOKENS[0][:5]}),
        },
        "password_set": True,
        "pin": 1234,
        "password": None,
        "count": 3,
        "ratio": 0.5,
    }
    out = redact_value(event)
    assert out == {
        "request": {
            "headers": [("authorization", MASK), ("accept", "json")],
            "query": {"api_key": MASK, "page": 2},
            "items": ({"note": MASK}, {"x": [{"password": MASK, "ok": True}]}),
            "tags": {"a", "b"},
            "frozen": frozenset({OPAQUE_TOKENS[0][:5]}),
        },
        "password_set": True,
        "pin": MASK,
        "password": None,
        "count": 3,
        "ratio": 0.5,
    }
    assert isinstance(out["request"]["items"], tuple)
    assert isinstance(out["request"]["frozen"], frozenset)


def test_input_is_never_mutated() -> None:
    event = {
        "event": f"token={OPAQUE_TOKENS[0]}",
        "nested": {"password": "p", "list": [{"token": "t"}, f"Bearer {OPAQUE_TOKENS[1]}"]},
        "raw": bytearray(b"password=hunter2"),
    }
    snapshot = copy.deepcopy(event)
    redact_value(event)
    redact_mapping(event)
    assert event == snapshot
    nested = event["nested"]
    processed = structlog_processor(None, "info", event)
    assert nested == snapshot["nested"]  # the application's own objects are never touched
    assert processed["nested"] is not nested


def test_cycles_are_cut_not_followed() -> None:
    a: dict[str, Any] = {"name": "a", "token": "t"}
    b: list[Any] = [a, "x"]
    a["b"] = b
    a["self"] = a
    out = redact_value(a)
    assert out["token"] == MASK
    assert out["self"] == "[REDACTED: cycle]"
    assert out["b"][0] == "[REDACTED: cycle]"
    assert out["b"][1] == "x"
    looped: list[Any] = []
    looped.append(looped)
    assert redact_value(looped) == ["[REDACTED: cycle]"]


def test_shared_references_are_not_mistaken_for_cycles() -> None:
    shared = {"password": "p", "id": 1}
    out = redact_value({"a": shared, "b": [shared, shared]})
    assert out == {"a": {"password": MASK, "id": 1}, "b": [{"password": MASK, "id": 1}] * 2}


def test_depth_is_limited_without_recursion_error() -> None:
    deep: dict[str, Any] = {"password": "p"}
    for _ in range(5000):
        deep = {"next": deep, "token": "t"}
    out = redact_value(deep)
    rendered = json.dumps(out)
    assert "[REDACTED: nested too deep]" in rendered
    assert '"t"' not in rendered and '"p"' not in rendered
    assert rendered.count('"next"') <= redact.MAX_DEPTH


def test_bytes_are_scanned_and_stay_bytes() -> None:
    assert redact_value(b"token=abc123&page=2") == b"token=[REDACTED]&page=2"
    assert redact_value(bytearray(b"ok")) == b"ok"
    assert redact_value(memoryview(b"password=x1")) == b"password=[REDACTED]"
    raw = b"\xff\xfe\x00 invalid utf-8 \xc3( password=hunter2 \x80"
    assert redact_value(raw) == b"\xff\xfe\x00 invalid utf-8 \xc3( password=[REDACTED] \x80"
    clean = bytes(range(256))
    assert redact_value(clean) is clean
    assert redact_value({b"authorization": b"Bearer x"}) == {b"authorization": MASK}


def test_namedtuples_and_mappings_keep_their_use() -> None:
    Header = namedtuple("Header", "name value")
    out = redact_value([Header("cookie", "sid=1"), Header("accept", "json")])
    assert out == [Header("cookie", MASK), Header("accept", "json")]
    assert isinstance(out[0], Header)
    assert redact_mapping(MappingProxyType({"secret": "s", "n": 1})) == {"secret": MASK, "n": 1}


def test_objects_are_kept_unless_their_repr_shows_a_secret() -> None:
    class Plain:
        def __repr__(self) -> str:
            return "Plain(id=3)"

    class Broken:
        def __repr__(self) -> str:
            raise RuntimeError("no repr")

    plain = Plain()
    assert redact_value({"obj": plain})["obj"] is plain
    error = ConnectionError(f"postgresql://app:{PASSWORDS[0]}@db/app refused")
    assert (
        redact_value({"error": error})["error"]
        == "ConnectionError('postgresql://app:[REDACTED]@db/app refused')"
    )
    assert redact_value({"obj": Broken()})["obj"] == "[REDACTED: unrepresentable]"


# ---------------------------------------------------------------- headers, URLs


def test_redact_headers() -> None:
    raw = [
        (b"host", b"api.example.com"),
        (b"authorization", b"Bearer abc123def456ghi"),
        (b"Cookie", b"sessionid=abc; theme=dark"),
        ("X-Api-Key", "k-123"),
        ("x-debug", f"token={OPAQUE_TOKENS[0]}"),
        (b"user-agent", b"curl/8.5.0 \xe9"),
    ]
    assert redact_headers(raw) == [
        ("host", "api.example.com"),
        ("authorization", MASK),
        ("Cookie", MASK),
        ("X-Api-Key", MASK),
        ("x-debug", f"token={MASK}"),
        ("user-agent", "curl/8.5.0 \xe9"),
    ]
    assert redact_headers({"Set-Cookie": "a=b", "Accept": "*/*"}) == [("Set-Cookie", MASK), ("Accept", "*/*")]
    assert redact_headers([]) == []


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://u:pw@host/p?token=t&page=2", "https://u:[REDACTED]@host/p?token=[REDACTED]&page=2"),
        ("postgresql://app:s3cr3t@db:5432/app", "postgresql://app:[REDACTED]@db:5432/app"),
        ("https://host/p?a=1&api%5Fkey=zz&b=%20x", "https://host/p?a=1&api%5Fkey=[REDACTED]&b=%20x"),
        ("https://host/p?q=Bearer+abc123def456ghi", "https://host/p?q=[REDACTED]"),
        ("https://app/cb#access_token=zz&state=1", "https://app/cb#access_token=[REDACTED]&state=1"),
        ("/callback?code=1&client_secret=s", "/callback?code=1&client_secret=[REDACTED]"),
        ("https://alice@host/p", "https://alice@host/p"),
        (f"https://{SELF_IDENTIFYING[-4]}@github.com/a.git", "https://[REDACTED]@github.com/a.git"),
        ("https://host/p?flag&x=&y=1", "https://host/p?flag&x=&y=1"),
        ("https://host/a@b/c?d=1", "https://host/a@b/c?d=1"),
        ("http://[::1/broken?password=x", "http://[::1/broken?password=[REDACTED]"),
        ("", ""),
    ],
)
def test_redact_url(url: str, expected: str) -> None:
    assert redact_url(url) == expected


# ------------------------------------------------------------------- structlog


def _pipeline(*processors: Any) -> tuple[Any, io.StringIO]:
    out = io.StringIO()
    logger = structlog.wrap_logger(
        structlog.PrintLogger(out),
        # render() names non-text keys (bytes header names) the way a lenient sink would
        processors=[
            *processors,
            structlog_processor,
            structlog.processors.JSONRenderer(lambda e, **_: render(e)),
        ],
        wrapper_class=structlog.BoundLogger,
    )
    return logger, out


def test_secrets_never_reach_a_rendered_structlog_line() -> None:
    log, out = _pipeline()
    for case in SECRET_CASES:
        fields = dict(case.event)
        message = fields.pop("event")
        log.info(message, **fields)
    lines = out.getvalue().splitlines()
    assert len(lines) == len(SECRET_CASES)
    for case, line in zip(SECRET_CASES, lines, strict=True):
        json.loads(line)
        assert leaked(case, line) == [], case.shape


def test_normal_events_render_unchanged_through_structlog() -> None:
    log, out = _pipeline()
    for event in NORMAL_EVENTS:
        fields = dict(event)
        log.info(fields.pop("event"), **fields)
    for event, line in zip(NORMAL_EVENTS, out.getvalue().splitlines(), strict=True):
        assert json.loads(line) == json.loads(render(event))


def test_event_text_is_scanned_but_never_masked_for_its_words() -> None:
    log, out = _pipeline()
    log.info("password_reset_requested", user_id=7)
    log.info(f"login failed password={PASSWORDS[0]}", token_count=12)
    first, second = (json.loads(line) for line in out.getvalue().splitlines())
    assert first == {"event": "password_reset_requested", "user_id": 7}
    assert second == {"event": f"login failed password={MASK}", "token_count": 12}


def test_exception_text_is_redacted_after_format_exc_info() -> None:
    log, out = _pipeline(structlog.processors.format_exc_info)
    try:
        raise ConnectionError(f"could not connect to postgresql://app:{PASSWORDS[2]}@db.internal/app")
    except ConnectionError:
        log.error("db_unavailable", exc_info=True, dsn=f"postgresql://app:{PASSWORDS[2]}@db.internal/app")
    line = out.getvalue()
    assert PASSWORDS[2] not in line
    record = json.loads(line)
    assert record["dsn"] == MASK
    assert "postgresql://app:[REDACTED]@db.internal/app" in record["exception"]


def test_a_field_that_was_clean_is_checked_again_when_it_changes() -> None:
    secret = f"see {JWTS[1]}"
    for value in ("hello", "hello", secret, "hello", secret):
        out = _process({"event": "x", "note": value, "ts": "2024-05-01T00:00:00Z"})
        assert out["note"] == ("see [REDACTED]" if value == secret else value)
    assert _process({"event": "x", "password": "hello"})["password"] == MASK


def test_processor_leaves_structlog_bookkeeping_alone() -> None:
    record = object()
    event = {"event": "x", "_record": record, "_from_structlog": False, "session": object()}
    out = structlog_processor(None, "info", event)
    assert out["_record"] is record and out["_from_structlog"] is False
    assert out["session"] == MASK


def test_processor_with_capture_logs() -> None:
    with structlog.testing.capture_logs(processors=[structlog_processor]) as captured:
        structlog.get_logger().info("user_login", password=PASSWORDS[3], method="password", tokens_used=42)
    assert captured == [
        {
            "event": "user_login",
            "password": MASK,
            "method": "password",
            "tokens_used": 42,
            "log_level": "info",
        }
    ]
