"""Test data for `lightkeeper.sdk.redact`: secrets in many shapes, and ordinary log events.

Secrets are generated from a fixed seed at import time: the corpus is deterministic,
and no string in this file looks like a live credential to secret scanners.

`SECRET_CASES` places each secret where real services leak them (log kwargs,
exception text, URLs, DSNs, header lists, nested request dicts, bytes). A secret is
only placed where it is recognisable: under a key that names it, next to a
``key=``/``Authorization:`` marker, or in a shape that identifies it by itself (JWT,
``sk-...``, ``AKIA...``). An opaque random string under an innocent key cannot be
told from a request id by any redactor and is not claimed here.

`NORMAL_EVENTS` are log events a SaaS backend emits every day (access logs, business
events, SQL, LLM usage with token counts, Celery, health); none holds a secret, so
any change the redactor makes to them is a false positive.
"""

from __future__ import annotations

import base64
import json
import random
import string
from dataclasses import dataclass
from typing import Any

_rng = random.Random(20240501)
_B62 = string.ascii_letters + string.digits
_UPPER_DIGITS = string.ascii_uppercase + string.digits


def _rand(n: int, alphabet: str = _B62) -> str:
    return "".join(_rng.choice(alphabet) for _ in range(n))


def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _jwt(subject: str) -> str:
    header = _b64url(json.dumps({"alg": "HS256", "typ": "JWT"}).encode())
    payload = _b64url(json.dumps({"sub": subject, "iat": 1714550400, "scope": "items:write"}).encode())
    return f"{header}.{payload}.{_rand(43, _B62 + '-_')}"


def _pem() -> str:
    body = "\n".join(_rand(64, _B62 + "+/") for _ in range(6))
    return f"-----BEGIN RSA PRIVATE KEY-----\n{body}\n-----END RSA PRIVATE KEY-----"


# --------------------------------------------------------------------- secrets

PASSWORDS = ["Tr0ub4dor&3", "correct-horse-battery-9", "P@ssw0rd!2024", "hunter2hunter2", "s3cr3t-Db-pw"]
OPAQUE_TOKENS = [_rand(40, _B62 + "-_") for _ in range(4)]
JWTS = [_jwt(f"user_{n}") for n in range(3)]
OPENAI_KEYS = [f"sk-{_rand(48)}", f"sk-proj-{_rand(56, _B62 + '_-')}"]
ANTHROPIC_KEYS = [f"sk-ant-api03-{_rand(93, _B62 + '_-')}AA"]
AWS_KEY_IDS = [f"AKIA{_rand(16, _UPPER_DIGITS)}", f"ASIA{_rand(16, _UPPER_DIGITS)}"]
AWS_SECRET_KEYS = [_rand(40, _B62 + "/+")]
GITHUB_TOKENS = [f"ghp_{_rand(36)}", f"github_pat_{_rand(22)}_{_rand(59)}"]
SLACK_TOKENS = [f"xoxb-{_rand(12, string.digits)}-{_rand(13, string.digits)}-{_rand(24)}"]
STRIPE_KEYS = [f"sk_live_{_rand(24)}", f"rk_live_{_rand(24)}"]
GOOGLE_KEYS = [f"AIza{_rand(35, _B62 + '_-')}"]
PRIVATE_KEYS = [_pem()]
SESSION_IDS = [_rand(32, string.ascii_lowercase + string.digits) for _ in range(2)]

SELF_IDENTIFYING = [
    *JWTS,
    *OPENAI_KEYS,
    *ANTHROPIC_KEYS,
    *AWS_KEY_IDS,
    *GITHUB_TOKENS,
    *SLACK_TOKENS,
    *STRIPE_KEYS,
    *GOOGLE_KEYS,
]
"""Secrets whose shape alone identifies them, wherever they appear."""

ALL_SECRETS = [
    *PASSWORDS,
    *OPAQUE_TOKENS,
    *SELF_IDENTIFYING,
    *AWS_SECRET_KEYS,
    *PRIVATE_KEYS,
    *SESSION_IDS,
]

EMAILS = ["alice.martin@example.com", "bob+billing@acme-corp.io"]


@dataclass(frozen=True)
class SecretCase:
    """One log event carrying `secrets`; none of them may survive redaction."""

    shape: str
    event: dict[str, Any]
    secrets: tuple[str, ...]


def _access(path: str, **extra: Any) -> dict[str, Any]:
    return {
        "event": "request",
        "method": "GET",
        "route": "/callback",
        "path": path,
        "status_code": 200,
        "duration_ms": 3.2,
        **extra,
    }


def _secret_cases() -> list[SecretCase]:
    cases: list[SecretCase] = []

    def add(shape: str, event: dict[str, Any], *secrets: str) -> None:
        cases.append(SecretCase(shape, event, secrets))

    sensitive_keys = [
        "password",
        "db_password",
        "PGPASSWORD",
        "passwd",
        "user.pwd",
        "client_secret",
        "refreshToken",
        "access_token",
        "X-Api-Key",
        "apiKey",
        "AWS_SECRET_ACCESS_KEY",
        "private_key",
        "credentials",
        "session",
        "sessionid",
        "x-auth-token",
        "csrf_token",
        "webhookSecret",
    ]
    pool = [*PASSWORDS, *OPAQUE_TOKENS, *AWS_SECRET_KEYS, *SESSION_IDS]
    for i, key in enumerate(sensitive_keys):
        secret = pool[i % len(pool)]
        add("kwarg under sensitive key", {"event": "user_updated", key: secret}, secret)
        add(
            "nested under sensitive key",
            {"event": "config_loaded", "config": {"database": {"options": [{key: secret}]}}},
            secret,
        )

    for i, secret in enumerate(SELF_IDENTIFYING):
        add("self-identifying value under innocent key", {"event": "debug", "note": secret}, secret)
        add("self-identifying value in message", {"event": f"upstream returned {secret} for org 42"}, secret)
        add(
            "self-identifying value in nested list",
            {"event": "job_payload", "payload": {"steps": [{"args": ("send", secret)}], "n": i}},
            secret,
        )

    for secret in [*OPAQUE_TOKENS, *JWTS]:
        add("authorization kwarg", {"event": "outbound_call", "Authorization": f"Bearer {secret}"}, secret)
        add("bearer in message", {"event": f"retrying with Bearer {secret} after 401"}, secret)
        add(
            "authorization header line in exception text",
            {"event": "http_error", "exception": f"HTTPError: 401\nAuthorization: Bearer {secret}\n"},
            secret,
        )
        add(
            "ASGI header list",
            {
                "event": "request_debug",
                "headers": [(b"host", b"api.example.com"), (b"authorization", f"Bearer {secret}".encode())],
            },
            secret,
        )
        add(
            "headers dict inside request",
            {
                "event": "sentry_like",
                "request": {"headers": {"Authorization": f"Bearer {secret}", "Accept": "*/*"}},
            },
            secret,
        )

    basic = base64.b64encode(f"admin:{PASSWORDS[0]}".encode()).decode()
    add("basic auth header", {"event": "outbound_call", "authorization": f"Basic {basic}"}, basic)
    add("basic auth in text", {"event": f"curl -H 'Authorization: Basic {basic}' https://x"}, basic)

    for secret in [*PASSWORDS, *OPAQUE_TOKENS]:
        add("query string in path", _access(f"/callback?state=xyz&token={secret}&page=2"), secret)
        add(
            "query string in url kwarg",
            {"event": "webhook", "url": f"https://api.example.com/v1?api_key={secret}"},
            secret,
        )
        add("key=value in message", {"event": f"login failed for bob password={secret} attempt=3"}, secret)
        add(
            "json text in message",
            {"event": "body", "raw": json.dumps({"user": "bob", "password": secret})},
            secret,
        )

    for password in PASSWORDS:
        for url in (
            f"postgresql://app:{password}@db.internal:5432/app",
            f"postgresql+asyncpg://app:{password}@10.0.0.5/app?sslmode=require",
            f"redis://:{password}@cache.internal:6379/0",
            f"amqp://guest:{password}@rabbit.internal:5672//",
        ):
            add("DSN in exception text", {"event": f"could not connect to {url}: timeout"}, password)
        add(
            "DSN in exception object",
            {"event": "db_down", "error": ConnectionError(f"postgresql://app:{password}@db/app refused")},
            password,
        )
        add(
            "DSN in health output",
            {"event": "health", "checks": {"postgres": {"error": f"mysql://u:{password}@h/db"}}},
            password,
        )

    for secret in AWS_SECRET_KEYS:
        add(
            "aws secret in text",
            {"event": f"boto config aws_secret_access_key={secret} region=eu-west-1"},
            secret,
        )
        add(
            "aws env dump",
            {"event": "env", "env": {"AWS_ACCESS_KEY_ID": AWS_KEY_IDS[0], "AWS_SECRET_ACCESS_KEY": secret}},
            secret,
            AWS_KEY_IDS[0],
        )

    for secret in SESSION_IDS:
        add(
            "cookie header",
            {"event": "request_debug", "headers": {"Cookie": f"sessionid={secret}; theme=dark"}},
            secret,
        )
        add("set-cookie text", {"event": f"Set-Cookie: sessionid={secret}; Path=/; HttpOnly"}, secret)
        add(
            "cookie bytes",
            {"event": "raw_headers", "raw": f"cookie: csrftoken=abc; sessionid={secret}".encode()},
            secret,
        )
        add(
            "header pair tuple",
            {"event": "resp", "headers": (("content-type", "text/html"), ("set-cookie", f"sid={secret}"))},
            secret,
        )

    for pem in PRIVATE_KEYS:
        add("PEM under innocent key", {"event": "cert_loaded", "material": pem}, pem)
        add("PEM in message", {"event": f"bad key:\n{pem}\nend"}, pem)
        add("PEM json-escaped", {"event": "dump", "blob": json.dumps({"k": pem})}, pem)

    for secret in [*OPENAI_KEYS, *ANTHROPIC_KEYS]:
        add(
            "llm client error",
            {
                "event": "llm_error",
                "exception": f"AuthenticationError: Incorrect API key provided: {secret}.",
            },
            secret,
        )
        add("llm key in bytes", {"event": "llm_debug", "body": f'{{"api_key": "{secret}"}}'.encode()}, secret)

    for secret in [GITHUB_TOKENS[0], OPAQUE_TOKENS[0]]:
        add(
            "token in git remote",
            {"event": f"git push https://x-access-token:{secret}@github.com/acme/app.git"},
            secret,
        )

    text_forms = [
        ("header-style text", "X-Api-Key: {s}"),
        ("yaml-style text", "db_password: {s}"),
        ("env-style text", "export AWS_SECRET_ACCESS_KEY={s}"),
        ("json key in text", '{{"refreshToken": "{s}", "user": 3}}'),
        ("double-encoded json", "{j}"),
        ("python repr in text", "Settings(debug=False, client_secret='{s}', region='eu')"),
    ]
    for i, (shape, template) in enumerate(text_forms):
        for secret in (PASSWORDS[i % len(PASSWORDS)], OPAQUE_TOKENS[i % len(OPAQUE_TOKENS)]):
            double = json.dumps(json.dumps({"password": secret}))
            add(shape, {"event": "config_echo", "text": template.format(s=secret, j=double)}, secret)

    @dataclass
    class Credentials:
        user: str
        password: str

    add(
        "object whose repr shows it",
        {"event": "connect", "creds": Credentials("app", PASSWORDS[1])},
        PASSWORDS[1],
    )
    add(
        "bytes keys and values",
        {"event": "scope", "headers": {b"authorization": f"Bearer {OPAQUE_TOKENS[2]}".encode()}},
        OPAQUE_TOKENS[2],
    )
    add(
        "set of secrets",
        {"event": "tokens_dump", "tokens_seen": frozenset(SELF_IDENTIFYING[:3])},
        *SELF_IDENTIFYING[:3],
    )
    add(
        "url fragment token",
        {"event": "spa", "url": f"https://app.example.com/cb#access_token={OPAQUE_TOKENS[1]}&x=1"},
        OPAQUE_TOKENS[1],
    )
    return cases


SECRET_CASES: list[SecretCase] = _secret_cases()


# --------------------------------------------------------------- normal events

_USER_AGENTS = [
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 14_4_1) AppleWebKit/605.1.15 (KHTML, like Gecko) "
    "Version/17.4.1 Safari/605.1.15",
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Mobile/15E148",
    "python-httpx/0.27.0",
    "curl/8.5.0",
    "kube-probe/1.29",
    "Prometheus/2.42.0",
    "okhttp/4.12.0",
]

_ROUTES = [
    ("GET", "/items/{item_id}", "/items/{}"),
    ("GET", "/orgs/{org_id}/workspaces", "/orgs/{}/workspaces"),
    ("POST", "/orgs/{org_id}/workspaces/{workspace_id}/items", "/orgs/{}/workspaces/7/items"),
    ("PATCH", "/items/{item_id}/status", "/items/{}/status"),
    ("POST", "/items/{item_id}/comments", "/items/{}/comments"),
    ("POST", "/approvals/{approval_id}/approve", "/approvals/{}/approve"),
    ("POST", "/login", "/login"),
    ("POST", "/password-reset", "/password-reset"),
    ("GET", "/sessions/count", "/sessions/count"),
    ("GET", "/search", "/search?q=monkey+keyboard&page={}"),
    ("GET", "/items", "/items?sort=author&order=desc&limit={}"),
    ("GET", "/reports/tokens", "/reports/tokens?period=2024-05&model=gpt-4o-mini&n={}"),
    ("GET", "/authors/{author_id}", "/authors/{}"),
    ("DELETE", "/items/{item_id}", "/items/{}"),
    ("GET", "unmatched", "/wp-admin/setup-config.php?step={}"),
]

_STATUSES = [200, 200, 200, 201, 204, 301, 400, 401, 403, 404, 409, 422, 429, 500, 503]


def _hex(n: int) -> str:
    return _rand(n, "0123456789abcdef")


def _uuid() -> str:
    h = _hex(32)
    return f"{h[:8]}-{h[8:12]}-4{h[13:16]}-a{h[17:20]}-{h[20:]}"


def _timestamp(i: int) -> str:
    return f"2024-05-{1 + i % 28:02d}T{i % 24:02d}:{i % 60:02d}:{(i * 7) % 60:02d}.{_rand(6, string.digits)}Z"


def access_events(n: int, start: int = 0) -> list[dict[str, Any]]:
    """Access-log events as the middleware emits them; ids and paths differ per `start`."""
    events = []
    for i in range(start, start + n):
        method, route, path = _ROUTES[i % len(_ROUTES)]
        status = _STATUSES[i % len(_STATUSES)]
        traced = i % 3 == 0
        events.append(
            {
                "timestamp": _timestamp(i),
                "level": "warning" if status >= 500 else "info",
                "logger": "lightkeeper.access",
                "event": "request",
                "service": "api",
                "environment": "prod",
                "version": "1.4.2",
                "request_id": _hex(32) if i % 2 else _uuid(),
                "trace_id": _hex(32) if traced else None,
                "span_id": _hex(16) if traced else None,
                "method": method,
                "route": route,
                "path": path.format(100 + i),
                "status_code": status,
                "duration_ms": round(0.4 + (i * 37 % 900) / 7, 3),
                "client_ip": f"10.{i % 256}.{(i * 3) % 256}.{(i * 7) % 256}"
                if i % 5
                else "2001:db8::8a2e:370:7334",
                "user_agent": _USER_AGENTS[i % len(_USER_AGENTS)],
            }
        )
    return events


_BUSINESS = [
    {"event": "user_signup", "plan": "pro", "user_id": 4812, "referrer": "google"},
    {"event": "user_login", "method": "password", "success": True, "user_id": 4812},
    {
        "event": "user_login",
        "method": "sso",
        "provider": "okta",
        "success": False,
        "reason": "invalid credentials",
    },
    {"event": "password_reset_requested", "user_id": 77, "channel": "email"},
    {
        "event": "password_changed",
        "user_id": 77,
        "password_changed_at": "2024-05-02T10:00:00Z",
        "password_strength": 4,
    },
    {"event": "password_reset_completed", "user_id": 77, "password_reset": True},
    {"event": "session_started", "user_id": 91, "session_count": 3, "session_duration_ms": 0},
    {"event": "session_expired", "user_id": 91, "sessions": 2, "idle_seconds": 1800},
    {"event": "org_created", "org_id": 12, "name": "Acme Corp", "seats": 25},
    {"event": "workspace_created", "org_id": 12, "workspace_id": 7, "name": "Marketing"},
    {"event": "content_item_status_changed", "item_id": 5531, "from": "draft", "to": "in_review"},
    {"event": "comment_added", "item_id": 5531, "author": "alice", "author_id": 3, "length": 214},
    {"event": "approval_granted", "approval_id": 88, "approver": "bob", "authority": "workspace_admin"},
    {"event": "subscription_renewed", "org_id": 12, "amount_cents": 4900, "currency": "EUR"},
    {"event": "invoice_paid", "invoice_id": "in_1PBx42", "amount_cents": 12900, "attempt": 1},
    {"event": "profile_updated", "user_id": 5, "fields": ["display_name", "passport_country", "timezone"]},
    {"event": "kyc_checked", "user_id": 5, "passport_country": "FR", "result": "clear"},
    {"event": "token_refreshed", "user_id": 5, "token_type": "Bearer", "token_expires_in": 3600},
    {"event": "api_key_rotated", "org_id": 12, "rotated_keys": 2, "api_key_count": 3},
    {"event": "feature_flag_evaluated", "flag": "new_editor", "variant": "on", "keyboard_layout": "azerty"},
    {"event": "export_finished", "rows": 12000, "format": "csv", "duration_ms": 812.5, "secret_count": 0},
    {
        "event": "auth_provider_configured",
        "auth_provider": "google",
        "auth_method": "oidc",
        "mfa_enabled": True,
    },
    {"event": "csrf_check_passed", "route": "/settings", "csrf_valid": True},
    {"event": "upload_received", "item_id": 9, "bytes": 48213, "content_type": "image/png"},
    {"event": "webhook_delivered", "endpoint_host": "hooks.partner.io", "status_code": 200, "attempts": 1},
    {"event": "rate_limited", "client_ip": "203.0.113.9", "limit": 100, "window_seconds": 60},
    {"event": "cache_miss", "cache": "item_detail", "key": "item:5531:v3"},
    {"event": "search_performed", "query": "monkey keyboard secretary", "results": 14},
    {
        "event": "audit",
        "actor": "alice",
        "action": "role_changed",
        "target": "bob",
        "changes": {"role": ["viewer", "editor"]},
    },
    {
        "event": "feedback",
        "text": "The secretary said the token economy talk was great; author signed copies.",
    },
]

_SQL = [
    "SELECT id, author, title FROM posts WHERE workspace_id = %(workspace_id)s ORDER BY created_at DESC",
    "UPDATE sessions SET last_seen_at = now() WHERE id = $1",
    "INSERT INTO password_resets (user_id, requested_at) VALUES ($1, $2)",
    "SELECT count(*) FROM api_tokens WHERE expires_at < now()",
    "DELETE FROM sessions WHERE expires_at < :cutoff",
    "SELECT u.id FROM users u WHERE u.email_verified AND u.password_hash IS NOT NULL",
    "UPDATE users SET password_hash = %(password_hash)s, password_changed_at = now() WHERE id = %(id)s",
    "SELECT * FROM auth_tokens WHERE token = $1 AND revoked = false",
    "SELECT token_count, prompt_tokens FROM llm_usage WHERE org_id = ?",
    "UPDATE api_keys SET secret = :secret WHERE id = :id",
]

_LLM_MODELS = [("openai", "gpt-4o-mini"), ("openai", "gpt-4.1"), ("anthropic", "claude-3-5-sonnet-20241022")]

_CELERY = [
    "Task tasks.send_welcome_email[{uuid}] received",
    "Task tasks.generate_report[{uuid}] succeeded in 1.23s: {{'rows': 120}}",
    "Task tasks.sync_usage_tokens[{uuid}] retry: Retry in 10s: ConnectionError()",
    "Task tasks.cleanup_sessions[{uuid}] succeeded in 0.05s: 14",
    "Task tasks.rotate_api_keys[{uuid}] raised unexpected: TimeoutError('broker did not answer in 5.0s')",
    "celery@worker-{n} ready.",
    "Connected to redis://redis.internal:6379/1",
    "mingle: sync with 2 nodes",
]

_MESSAGES = [
    "connection refused: db.internal:5432",
    "timeout after 2.0s talking to redis://cache.internal:6379/0",
    "password too short (min 12 characters)",
    "token expired, asking the client to refresh",
    "session expired, redirecting to /login?next=/items/42",
    "JWT validation failed: signature mismatch",
    "Invalid credentials for user 4812",
    "Basic plan purchased by org 12",
    "Basic authentication is disabled for this workspace",
    "Bearer of bad news: deploy 1.4.3 failed its health check",
    "secretary: Jane Doe approved the request",
    "author: alice, authority: workspace_admin, keyboard: us-intl",
    "monkey patching the keyboard handler for tests",
    "sk-learn-compatible estimator loaded",
    "task-queue-consumer-00001234 started",
    "prompt_tokens=512 completion_tokens=128 total_tokens=640 max_tokens=1024",
    "rate limit: 90000 tokens per minute reached for org 12",
    "password_reset_requested for user 42 via email",
    "Loaded 3 secrets from the vault mount at /v1/kv",
    "scrape of /metrics took 12.3ms",
    "migrating: 0004_add_token_count_to_usage",
    "GET https://api.partner.io/v2/orders?page=3&per_page=100 -> 200 in 84ms",
    "retrying in 0.5s (attempt 2/5): httpx.ConnectTimeout",
    "health: postgres ok in 1.2ms, redis ok in 0.4ms",
    "the passport office in Lyon is closed on Mondays",
    "cookie consent banner shown to 14% of visitors",
    "pinned: true, opinion: positive, design: v2",
    "x-api-version: 2024-01-01",
    "worker booted (pid: 4242)",
    'Traceback (most recent call last):\n  File "app.py", line 12, in handler\nValueError: item 42 not found',
]


def _normal_events() -> list[dict[str, Any]]:
    events: list[dict[str, Any]] = access_events(120)
    for i in range(60):
        base = dict(_BUSINESS[i % len(_BUSINESS)])
        base.update(request_id=_uuid(), level="info", timestamp=_timestamp(i))
        events.append(base)
    for i in range(40):
        events.append(
            {
                "event": "slow_query" if i % 2 else "query",
                "statement": _SQL[i % len(_SQL)],
                "duration_ms": 1000 + i * 13 if i % 2 else 3 + i,
                "operation": _SQL[i % len(_SQL)].split()[0].lower(),
                "table": "posts",
            }
        )
    for i in range(50):
        provider, model = _LLM_MODELS[i % len(_LLM_MODELS)]
        prompt, completion = 100 + i * 17, 20 + i * 3
        event: dict[str, Any] = {
            "event": "llm_request",
            "provider": provider,
            "model": model,
            "operation": "chat" if i % 4 else "embeddings",
            "latency_ms": 200.0 + i * 11,
            "cost_usd": round((prompt * 0.15 + completion * 0.6) / 1e6, 8),
            "user_hash": _hex(16),
            "usage": {"total_tokens": prompt + completion},
        }
        if provider == "openai":
            event.update(
                prompt_tokens=prompt, completion_tokens=completion, max_tokens=1024, tokenizer="o200k_base"
            )
        else:
            event.update(
                input_tokens=prompt,
                output_tokens=completion,
                cache_read_input_tokens=i,
                stop_reason="end_turn",
            )
        if i % 5 == 0:
            event.update(token_count=prompt + completion, tokens_used=prompt + completion, tokens=prompt)
        events.append(event)
    for i in range(40):
        template = _CELERY[i % len(_CELERY)]
        events.append(
            {
                "event": template.format(uuid=_uuid(), n=i % 4),
                "logger": "celery.app.trace" if "Task" in template else "celery.worker",
                "task_name": "tasks.generate_report",
                "task_id": _uuid(),
                "queue": "default",
                "hostname": f"celery@worker-{i % 4}",
                "retries": i % 3,
                "eta": None,
                "runtime": round(0.05 + i / 10, 2),
            }
        )
    for i in range(30):
        events.append(
            {"event": _MESSAGES[i % len(_MESSAGES)], "level": "warning", "logger": "app", "attempt": i}
        )
    for i in range(10):
        events.append(
            {
                "event": "health_check",
                "check": ["postgres", "redis", "celery", "billing_api"][i % 4],
                "status": "ok" if i % 3 else "failing",
                "latency_ms": 1.5 + i,
                "error": None if i % 3 else "connection refused (db.internal:5432)",
            }
        )
    events.append(
        {
            "event": "lightkeeper_started",
            "settings": {
                "service": "api",
                "metrics_path": "/metrics",
                "metrics_token": None,
                "log_level": "INFO",
                "health_timeout_seconds": 2.0,
                "sentry_dsn": None,
            },
        }
    )
    return events


NORMAL_EVENTS: list[dict[str, Any]] = _normal_events()

NESTED_BUSINESS_EVENT: dict[str, Any] = {
    "event": "content_item_published",
    "request_id": "9f1c0e2a7b6d4c3e8a1f0b2c3d4e5f60",
    "org": {"id": 12, "name": "Acme Corp", "plan": "pro"},
    "workspace": {
        "id": 7,
        "name": "Marketing",
        "members": [{"id": 3, "role": "editor"}, {"id": 4, "role": "viewer"}],
    },
    "item": {
        "id": 5531,
        "title": "Q2 launch plan",
        "status": "published",
        "tags": ["launch", "q2", "marketing"],
        "author": {"id": 3, "name": "alice"},
        "stats": {"words": 1240, "comments": 8, "approvals": 2},
    },
    "llm": {"model": "gpt-4o-mini", "prompt_tokens": 512, "completion_tokens": 128, "cost_usd": 0.00015},
    "duration_ms": 41.7,
}
"""A richer application event, used by the benchmark next to the access-log line."""


# ------------------------------------------------------------------- measuring


def render(event: dict[str, Any]) -> str:
    """What a JSON log sink writes: objects fall back to their repr, as structlog's does."""
    return json.dumps(_plain(event), default=repr)


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k if isinstance(k, str) else repr(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    return value


def leaked(case: SecretCase, rendered: str) -> list[str]:
    """The case's secrets still readable in `rendered`: whole, or any line of it.

    Lines are checked on their own because a multi-line secret (a PEM block) shows
    up with its newlines escaped once or twice by nested JSON encoding.
    """
    return [
        secret
        for secret in case.secrets
        if any(piece in rendered for piece in (secret, *(line for line in secret.split() if len(line) >= 12)))
    ]


def changed_fields(before: dict[str, Any], after: dict[str, Any]) -> list[str]:
    """Fields a redactor altered in an event that holds no secret: false positives."""
    return [key for key in before if render({"v": before[key]}) != render({"v": after.get(key)})]
