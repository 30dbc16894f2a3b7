"""A service's own redaction keys and patterns reach every sink: log lines, /health,
span attributes, Sentry events; bad ones stop start-up with a message naming the setting."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
import structlog
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor, SpanExportResult
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Route

import lightkeeper
from lightkeeper import health, redaction
from lightkeeper.sdk import error_reporting, redact, tracing
from lightkeeper.sdk.settings import SettingsError
from lightkeeper.testing import capture_logs

TENANT = "tn-7f3a9c"
"""Opaque: no built-in rule can tell it from an id, only the service's own key can."""
INVOICE = "ACME-12345678"
"""The service's own secret shape, matched by its own pattern."""
KEYS = ["x-tenant-ref"]
PATTERNS = ["ACME-[0-9]{8}"]
TOKEN = "metrics-token-51d0"
SECRETS = (TENANT, INVOICE)


@pytest.fixture(autouse=True)
def default_rules() -> Iterator[None]:
    redact.configure()
    yield
    redact.configure()


@pytest.fixture
def custom_rules() -> None:
    redaction.configure(keys=KEYS, patterns=PATTERNS)


def nested_payload() -> dict[str, Any]:
    return {
        "X-TENANT-REF": TENANT,
        "batch": [{"tenantRef": "no", "x_tenant_ref": TENANT}, ("X-Tenant-Ref", TENANT)],
        "billing": {"meta": {"x.tenant.ref": TENANT}},
        "note": f"invoice {INVOICE} paid",
    }


def assert_no_secret(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, secret
    assert redact.MASK in text


def test_without_custom_rules_the_built_in_rules_miss_these_secrets() -> None:
    payload = nested_payload()
    assert redaction.redact(payload) == payload
    assert redaction.redact_text(f"x-tenant-ref={TENANT} {INVOICE}") == f"x-tenant-ref={TENANT} {INVOICE}"


def test_custom_key_any_case_any_separators_nested_in_lists_and_dicts(custom_rules: None) -> None:
    out = redaction.redact(nested_payload())
    assert out == {
        "X-TENANT-REF": redact.MASK,
        "batch": [{"tenantRef": "no", "x_tenant_ref": redact.MASK}, ("X-Tenant-Ref", redact.MASK)],
        "billing": {"meta": {"x.tenant.ref": redact.MASK}},
        "note": f"invoice {redact.MASK} paid",
    }
    assert redaction.is_secret_key("XTenantRef") and redaction.is_secret_key("billing.x_tenant_ref_v2")
    assert not redaction.is_secret_key("tenant")


def test_custom_key_and_pattern_in_free_text_and_urls(custom_rules: None) -> None:
    assert redaction.redact_text(f"lookup failed: X-Tenant-Ref: {TENANT}") == (
        f"lookup failed: X-Tenant-Ref: {redact.MASK}"
    )
    assert redaction.redact_text(INVOICE) == redact.MASK  # short: the cheap shortcuts do not skip it
    assert redaction.redact_url(f"https://h/p?x_tenant_ref={TENANT}&page=2") == (
        f"https://h/p?x_tenant_ref={redact.MASK}&page=2"
    )
    assert redaction.redact_headers([(b"x-tenant-ref", TENANT.encode())]) == [("x-tenant-ref", redact.MASK)]


def test_a_custom_key_made_of_hex_letters_is_still_found_in_hex_looking_text() -> None:
    redaction.configure(keys=["cafe"])
    assert redaction.redact_text("cafe: 0123456789abcdef") == f"cafe: {redact.MASK}"


def make_app(**settings: Any) -> Starlette:
    async def home(_: Any) -> PlainTextResponse:
        return PlainTextResponse("ok")

    def tenant_directory() -> bool:
        raise ConnectionError(f"tenant lookup failed x-tenant-ref={TENANT} for {INVOICE}")

    app = Starlette(routes=[Route("/", home), Route("/invoices/{ref}", home)])
    checks = [health.check(tenant_directory, name="tenants")]
    lightkeeper.instrument(
        app, service="svc", checks=checks, redact_keys=KEYS, redact_patterns=PATTERNS, **settings
    )
    return app


def get(app: Starlette, path: str, headers: dict[str, str] | None = None) -> httpx.Response:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://t") as client:
            return await client.get(path, headers=headers)

    return asyncio.run(go())


def test_structlog_lines_through_instrument_settings() -> None:
    make_app()
    with capture_logs() as logs:
        structlog.get_logger("billing").info("invoice_synced", **nested_payload())
    (line,) = [line for line in logs if line["event"] == "invoice_synced"]
    assert_no_secret(json.dumps(line))
    assert line["X-TENANT-REF"] == redact.MASK
    assert line["batch"][0] == {"tenantRef": "no", "x_tenant_ref": redact.MASK}


def test_rendered_request_line_masks_custom_rules(capsys: pytest.CaptureFixture[str]) -> None:
    app = make_app(flush_interval_ms=0)
    agent = f"billing-bot x-tenant-ref={TENANT}"
    assert get(app, f"/invoices/{INVOICE}", {"user-agent": agent}).status_code == 200
    lightkeeper.sdk.logs.flush_access_lines()
    (line,) = [json.loads(text) for text in capsys.readouterr().out.splitlines() if '"http_request"' in text]
    assert line["path"] == f"/invoices/{redact.MASK}"
    assert line["user_agent"] == f"billing-bot x-tenant-ref={redact.MASK}"


def test_health_detail_masks_custom_rules() -> None:
    with capture_logs():
        app = make_app(metrics_token=TOKEN)
        response = get(app, "/health", {"authorization": f"Bearer {TOKEN}"})
    assert response.status_code == 503
    assert "tenant lookup failed" in response.text  # the detail is shown to this caller
    assert_no_secret(response.text)


def finished_span(attributes: dict[str, Any]) -> ReadableSpan:
    exporter = InMemorySpanExporter()
    provider = TracerProvider()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    span = provider.get_tracer("t").start_span(f"sync {INVOICE}")
    span.set_attributes(attributes)
    span.end()
    (found,) = exporter.get_finished_spans()
    return found


class Keep:
    def __init__(self) -> None:
        self.spans: list[ReadableSpan] = []

    def export(self, spans: Any) -> Any:
        self.spans.extend(spans)
        return SpanExportResult.SUCCESS

    def shutdown(self) -> None:
        pass

    def force_flush(self, timeout_millis: int = 30000) -> bool:
        return True


def test_span_attributes_mask_custom_rules(custom_rules: None) -> None:
    original = finished_span(
        {
            "app.x_tenant_ref": TENANT,
            "http.request.header.x-tenant-ref": (TENANT,),
            "app.note": f"invoice {INVOICE}",
            "app.tenants": ("acme", INVOICE),
            "http.response.status_code": 200,
        }
    )
    kept = Keep()
    assert tracing.RedactingSpanExporter(lambda: kept).export([original]) is SpanExportResult.SUCCESS
    (sent,) = kept.spans
    attrs = dict(sent.attributes or {})
    assert attrs["app.x_tenant_ref"] == attrs["http.request.header.x-tenant-ref"] == redact.MASK
    assert attrs["app.note"] == f"invoice {redact.MASK}"
    assert attrs["app.tenants"] == ("acme", redact.MASK)
    assert attrs["http.response.status_code"] == 200
    assert sent.name == f"sync {redact.MASK}"
    assert_no_secret(repr((sent.name, attrs)))


def test_sentry_before_send_masks_custom_rules(custom_rules: None) -> None:
    event = {
        "level": "error",
        "request": {"url": f"https://api/x?x_tenant_ref={TENANT}", "headers": {"X-Tenant-Ref": TENANT}},
        "exception": {"values": [{"type": "ValueError", "value": f"no invoice {INVOICE}"}]},
        "extra": {"tenant": [{"x_tenant_ref": TENANT}]},
        "contexts": {"billing": {"invoice": INVOICE}},
    }
    sent = error_reporting.before_send(event, {})
    assert sent is not None
    assert_no_secret(repr(sent))
    assert sent["request"]["headers"]["X-Tenant-Ref"] == redact.MASK
    assert sent["exception"]["values"][0]["value"] == f"no invoice {redact.MASK}"


# ------------------------------------------------------------------ bad rules


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("redact_patterns", ["ok-[0-9]+", "ACME-([0-9"], "entry 2 is not a valid regular expression"),
        ("redact_patterns", ["x?"], "matches the empty string"),
        ("redact_keys", ["--"], "no letter or digit"),
    ],
)
def test_a_bad_rule_fails_at_instrument_naming_the_setting(
    setting: str, value: list[str], reason: str
) -> None:
    with pytest.raises(SettingsError) as raised:
        lightkeeper.instrument(Starlette(), **{setting: value})
    message = str(raised.value)
    assert f"{setting} (instrument() argument)" in message and reason in message
    assert "ACME-([0-9" not in message  # the rejected value is never echoed


def test_a_bad_pattern_from_the_environment_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTKEEPER_REDACT_PATTERNS", '["(unclosed"]')
    with pytest.raises(
        SettingsError, match="redact_patterns \\(environment variable LIGHTKEEPER_REDACT_PATTERNS\\)"
    ):
        lightkeeper.instrument(Starlette())


def test_rules_from_the_environment_apply(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTKEEPER_REDACT_KEYS", json.dumps(KEYS))
    monkeypatch.setenv("LIGHTKEEPER_REDACT_PATTERNS", json.dumps(PATTERNS))
    with capture_logs():
        lightkeeper.instrument(Starlette())
    assert redaction.redact({"X-Tenant-Ref": TENANT, "n": INVOICE}) == {
        "X-Tenant-Ref": redact.MASK,
        "n": redact.MASK,
    }


def test_a_rejected_configure_changes_nothing(custom_rules: None) -> None:
    with pytest.raises(ValueError, match="entry 1 is not a valid regular expression"):
        redaction.configure(keys=["other"], patterns=["("])
    assert redaction.is_secret_key("x-tenant-ref") and not redaction.is_secret_key("other")
    assert redaction.redact_text(INVOICE) == redact.MASK


# ------------------------------------------------------------------ caches


def test_configure_applies_to_keys_and_strings_seen_before() -> None:
    event = {"event": "sync", "member_no": "M-2201", "note": f"invoice {INVOICE} paid"}
    for _ in range(2):  # decided, then remembered as clean by every cache layer
        assert redact.structlog_processor(None, "info", dict(event)) == event
        assert redact.redact_field(event["note"]) == event["note"]
    assert not redact.is_sensitive_key("member_no")

    redaction.configure(keys=["member_no"], patterns=PATTERNS)
    assert redact.is_sensitive_key("member_no")
    assert redact.structlog_processor(None, "info", dict(event)) == {
        "event": "sync",
        "member_no": redact.MASK,
        "note": f"invoice {redact.MASK} paid",
    }
    assert redact.redact_field(event["note"]) == f"invoice {redact.MASK} paid"

    redaction.configure()  # and back: nothing stays masked from the old rules
    assert redact.structlog_processor(None, "info", dict(event)) == event
