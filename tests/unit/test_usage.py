"""Declared usage events and auth attempts: counted when allowed, refused without a new series."""

from __future__ import annotations

import math
from collections.abc import Iterator

import pytest
from prometheus_client import REGISTRY

import lightkeeper
from lightkeeper import catalogue
from lightkeeper.sdk import usage as usage_module
from lightkeeper.sdk.settings import SettingsError, load_settings

USAGE = catalogue.USAGE_EVENTS.name
DROPPED = catalogue.USAGE_EVENTS_DROPPED.name
AUTH = catalogue.AUTH_ATTEMPTS.name
DECLARED = {"content_item_created": {"plan": ["free", "pro", "team"]}, "login_succeeded": {}}


@pytest.fixture(autouse=True)
def _fresh_declarations() -> Iterator[None]:
    usage_module.reset()
    yield
    usage_module.reset()  # other tests count free-form names


def _configure(environment: str = "prod", **settings: object) -> None:
    usage_module.configure(load_settings(environment=environment, **settings))  # type: ignore[arg-type]


def _value(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


def _series_with(event: str) -> list[dict[str, str]]:
    return [
        s.labels
        for metric in REGISTRY.collect()
        for s in metric.samples
        if s.name == USAGE and s.labels.get("event") == event
    ]


def test_undeclared_names_are_free_form_as_before() -> None:
    before = _value(USAGE, event="organization_created")
    lightkeeper.usage("organization_created")
    lightkeeper.usage("organization_created", 2)
    assert _value(USAGE, event="organization_created") - before == 3


def test_declared_events_count_by_label_and_exist_at_zero_before_use() -> None:
    _configure(usage_events=DECLARED)
    assert _value(USAGE, event="content_item_created", plan="team") == 0  # exposed for "quiet" alerts
    assert {s["plan"] for s in _series_with("content_item_created")} == {"free", "pro", "team"}

    lightkeeper.usage("content_item_created", plan="pro")
    lightkeeper.usage("login_succeeded")

    assert _value(USAGE, event="content_item_created", plan="pro") == 1
    assert _value(USAGE, event="login_succeeded", plan="") == 1  # an empty label is absent in PromQL


def test_keyword_order_does_not_matter() -> None:
    lightkeeper.declare_usage({"payment_processed": {"plan": ["pro"], "outcome": ["success", "failure"]}})
    lightkeeper.usage("payment_processed", plan="pro", outcome="failure")
    lightkeeper.usage("payment_processed", outcome="failure", plan="pro")
    assert _value(USAGE, event="payment_processed", plan="pro", outcome="failure") == 2


@pytest.mark.parametrize(
    ("call", "reason"),
    [
        (lambda: lightkeeper.usage("content_itme_created", plan="pro"), "unknown_event"),
        (lambda: lightkeeper.usage("content_item_created", plan="enterprise"), "unknown_value"),
        (lambda: lightkeeper.usage("content_item_created"), "missing_label"),
        (lambda: lightkeeper.usage("content_item_created", plan="pro", org="acme"), "unknown_label"),
        (lambda: lightkeeper.usage("Content Item!"), "invalid_name"),
        (lambda: lightkeeper.usage("login_succeeded", -1), "invalid_amount"),
        (lambda: lightkeeper.usage("login_succeeded", math.nan), "invalid_amount"),
    ],
)
def test_production_drops_and_counts_what_the_declaration_does_not_allow(call: object, reason: str) -> None:
    _configure(usage_events=DECLARED)  # prod: lenient
    before_dropped = _value(DROPPED, reason=reason)
    before_series = len([s for m in REGISTRY.collect() for s in m.samples if s.name == USAGE])

    call()  # type: ignore[operator]

    assert _value(DROPPED, reason=reason) - before_dropped == 1
    after_series = len([s for m in REGISTRY.collect() for s in m.samples if s.name == USAGE])
    assert after_series == before_series, "a refused call must never add a series"
    assert _value(USAGE, event="login_succeeded", plan="") == 0


@pytest.mark.parametrize("environment", ["test", "dev"])
def test_tests_and_development_raise_and_still_count(environment: str) -> None:
    _configure(environment, usage_events=DECLARED)
    before = _value(DROPPED, reason="unknown_value")

    with pytest.raises(
        lightkeeper.UsageError, match="plan is not one of the declared values free, pro, team"
    ):
        lightkeeper.usage("content_item_created", plan="user-4711")

    assert _value(DROPPED, reason="unknown_value") - before == 1


def test_an_undeclared_value_is_not_echoed_since_it_may_be_an_identifier() -> None:
    _configure("test", usage_events=DECLARED)
    with pytest.raises(lightkeeper.UsageError) as raised:
        lightkeeper.usage("content_item_created", plan="alice@example.com")
    assert "alice" not in str(raised.value)


def test_strict_is_a_setting_that_overrides_the_environment() -> None:
    _configure("prod", usage_events=DECLARED, usage_strict=True)
    with pytest.raises(lightkeeper.UsageError):
        lightkeeper.usage("nope")
    _configure("dev", usage_events=DECLARED, usage_strict=False)
    lightkeeper.usage("nope")  # dropped, not raised


def test_instrument_reads_the_declaration_and_code_declarations_add_to_it() -> None:
    async def app(scope: object, receive: object, send: object) -> None:
        pass

    lightkeeper.declare_usage(["feedback_report_submitted"])
    lightkeeper.instrument(
        app, environment="test", usage_events=["workspace_created"], configure_logging=False
    )

    lightkeeper.usage("workspace_created")
    lightkeeper.usage("feedback_report_submitted")
    with pytest.raises(lightkeeper.UsageError, match="not declared"):
        lightkeeper.usage("comment_created")


def test_the_environment_variable_declares_events_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTKEEPER_USAGE_EVENTS", '{"invite_created": {"channel": ["email", "link"]}}')
    _configure("test")
    lightkeeper.usage("invite_created", channel="link")
    assert _value(USAGE, event="invite_created", channel="link") == 1


def test_a_new_label_name_rebuilds_the_family_with_it() -> None:
    lightkeeper.declare_usage(["login_succeeded"])
    lightkeeper.usage("login_succeeded")
    lightkeeper.declare_usage({"approval_submitted": {"kind": ["post", "page"]}})
    lightkeeper.usage("approval_submitted", kind="post")
    lightkeeper.usage("login_succeeded")

    assert _value(USAGE, event="approval_submitted", kind="post") == 1
    assert _value(USAGE, event="login_succeeded", kind="") == 1  # counts restart with the new family


def test_undeclared_names_are_capped_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(usage_module, "MAX_UNDECLARED_EVENTS", 2)
    _configure("prod")
    lightkeeper.usage("first_event")
    lightkeeper.usage("second_event")
    before = _value(DROPPED, reason="too_many_events")
    lightkeeper.usage("third_event")
    assert _value(DROPPED, reason="too_many_events") - before == 1
    assert _series_with("third_event") == []


@pytest.mark.parametrize(
    ("declaration", "problem"),
    [
        ({"signup": {"user_id": ["1"]}}, "identifiers"),
        ({"signup": {"email": ["a"]}}, "identifiers"),
        ({"signup": {"event": ["a"]}}, "reserved"),
        ({"signup": {"plan": "free"}}, ""),  # pydantic and parse() word this one differently
        ({"signup": {"plan": [f"p{i}" for i in range(51)]}}, "at most 50"),
        ({"signup": {"plan": ["free", "free"]}}, "repeat"),
        ({"signup": {"plan": ["has space"]}}, "category"),
        ({"Signup": {}}, "lowercase"),
        ("signup", ""),
    ],
)
def test_bad_declarations_fail_at_start_up_naming_the_setting(declaration: object, problem: str) -> None:
    with pytest.raises(SettingsError, match="usage_events") as raised:
        load_settings(usage_events=declaration)  # type: ignore[arg-type]
    assert problem in str(raised.value)
    with pytest.raises(ValueError, match=problem or None):
        lightkeeper.declare_usage(declaration)  # type: ignore[arg-type]


def test_auth_attempts_count_by_method_and_outcome() -> None:
    before = _value(AUTH, method="oauth", outcome="failure")
    lightkeeper.auth_attempt(outcome="failure", method="oauth")
    lightkeeper.auth_attempt("success")
    assert _value(AUTH, method="oauth", outcome="failure") - before == 1
    assert _value(AUTH, method="password", outcome="success") >= 1


def test_a_bad_auth_value_raises_in_tests_and_is_dropped_in_production() -> None:
    _configure("test")
    with pytest.raises(ValueError, match="outcome is one of success, failure, locked"):
        lightkeeper.auth_attempt(outcome="denied")  # type: ignore[arg-type]

    _configure("prod")
    before = _value(DROPPED, reason="invalid_auth")
    lightkeeper.auth_attempt(outcome="success", method="user-4711")  # type: ignore[arg-type]
    assert _value(DROPPED, reason="invalid_auth") - before == 1
    assert _value(AUTH, method="user-4711", outcome="success") == 0
