"""Secrets in headers, query strings, bodies, log kwargs and nested dicts never reach the log."""

from __future__ import annotations

import io
import json
import time

import httpx
import structlog

from lightkeeper.sdk.logs import configure_logging
from lightkeeper.sdk.settings import load_settings
from tests.support.services import uvicorn_process

JWT = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0"
    ".SflKxwRJSMeKKF2QT4fwpMeJf36POk6yJV_adQssw5c"
)
OPENAI_KEY = "sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUvWx"
PASSWORD = "Tr0ub4dor&3-horse-battery"
COOKIE = "sessionid=9f8e7d6c5b4a39281706f5e4d3c2b1a0"
AWS_KEY = "AKIAIOSFODNN7EXAMPLE"
DSN_PASSWORD = "dsn-Pa55w0rd-xyz"
SECRETS = [JWT, OPENAI_KEY, PASSWORD, "9f8e7d6c5b4a39281706f5e4d3c2b1a0", AWS_KEY, DSN_PASSWORD]


def test_secrets_in_requests_never_reach_the_log_file() -> None:
    with uvicorn_process("tests.apps.core_app:app") as (port, log):
        response = httpx.post(
            f"http://127.0.0.1:{port}/login?token={OPENAI_KEY}&next=/home",
            json={"user": "ada", "password": PASSWORD},
            headers={"Authorization": f"Bearer {JWT}", "Cookie": COOKIE, "X-Api-Key": AWS_KEY},
        )
        assert response.status_code == 200
        httpx.get(f"http://127.0.0.1:{port}/items/1", params={"api_key": OPENAI_KEY})
        httpx.get(f"http://127.0.0.1:{port}/reset/{JWT}")
        time.sleep(0.3)
        text = log.read_text()
    events = [json.loads(x) for x in text.splitlines() if x.startswith("{")]
    assert any(e["event"] == "login_attempt" for e in events)  # the line exists, masked
    assert any(e.get("path", "").startswith("/reset/") for e in events)
    for secret in SECRETS:
        assert secret not in text, secret


def test_secrets_in_log_kwargs_and_nested_structures_are_masked() -> None:
    out = io.BytesIO()
    configure_logging(load_settings(), stream=out)
    log = structlog.get_logger()
    log.info("config_loaded", database_url=f"postgresql://app:{DSN_PASSWORD}@db/prod", api_key=OPENAI_KEY)
    log.info(
        "nested",
        payload={
            "user": {"credentials": {"password": PASSWORD}},
            "items": [{"auth": f"Bearer {JWT}"}, ("cookie", COOKIE), {"note": f"key is {AWS_KEY}"}],
        },
    )
    log.warning(f"free text with {OPENAI_KEY} inside")
    log.info("usage", token_count=1234, author="Ada", passport_country="FR")
    text = out.getvalue().decode()
    for secret in SECRETS:
        assert secret not in text, secret
    usage = json.loads(text.splitlines()[-1])
    assert usage["token_count"] == 1234 and usage["author"] == "Ada" and usage["passport_country"] == "FR"
