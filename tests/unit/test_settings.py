from __future__ import annotations

import pytest

from lightkeeper.sdk.settings import SettingsError, load_settings


def test_environment_is_read_and_keyword_arguments_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTKEEPER_SERVICE", "from-env")
    monkeypatch.setenv("LIGHTKEEPER_ENVIRONMENT", "staging")
    settings = load_settings(service="from-kwarg", environment=None)
    assert settings.service == "from-kwarg"
    assert settings.environment == "staging"  # None does not erase the environment value


def test_invalid_environment_value_names_the_setting_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIGHTKEEPER_LOG_INFO_SAMPLE_RATE", "1.5")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "log_info_sample_rate" in text and "LIGHTKEEPER_LOG_INFO_SAMPLE_RATE" in text


def test_invalid_keyword_names_the_argument_and_never_echoes_the_value() -> None:
    with pytest.raises(SettingsError) as err:
        load_settings(metrics_path="no-slash-token-abc123")
    assert "metrics_path" in str(err.value) and "instrument() argument" in str(err.value)
    assert "token-abc123" not in str(err.value)


def test_unknown_keyword_lists_the_known_settings() -> None:
    with pytest.raises(SettingsError, match="unknown lightkeeper setting"):
        load_settings(log_levle="INFO")


def test_bad_log_level_and_header_name_fail() -> None:
    with pytest.raises(SettingsError, match="log_level"):
        load_settings(log_level="LOUD")
    with pytest.raises(SettingsError, match="request_id_header"):
        load_settings(request_id_header="X Request:Id")


def test_trace_sampling_defaults_to_ten_percent_in_production() -> None:
    assert load_settings(environment="prod").effective_trace_sample_rate == 0.1
    assert load_settings(environment="dev").effective_trace_sample_rate == 1.0
    assert load_settings(environment="prod", trace_sample_rate=0.5).effective_trace_sample_rate == 0.5


def test_settings_repr_hides_secrets() -> None:
    settings = load_settings(metrics_token="tok-very-secret", sentry_dsn="https://key@o1.ingest.sentry.io/1")
    assert "tok-very-secret" not in repr(settings) and "key@" not in repr(settings)


@pytest.mark.parametrize("value", ["-1", "60000", "soon"])
def test_a_flush_interval_out_of_range_fails_naming_the_setting(
    monkeypatch: pytest.MonkeyPatch, value: str
) -> None:
    monkeypatch.setenv("LIGHTKEEPER_FLUSH_INTERVAL_MS", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "flush_interval_ms" in str(err.value) and "LIGHTKEEPER_FLUSH_INTERVAL_MS" in str(err.value)


def test_health_defaults_answer_inside_kubernetes_default_probe_timeout() -> None:
    settings = load_settings()
    assert settings.health_timeout_seconds <= settings.health_deadline_seconds < 1.0
    assert settings.health_details == "token"


def test_an_unknown_health_details_value_names_the_setting_and_the_variable(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIGHTKEEPER_HEALTH_DETAILS", "public")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "health_details" in text and "LIGHTKEEPER_HEALTH_DETAILS" in text
    assert "'always', 'token' or 'never'" in text
    for policy in ("always", "token", "never"):
        assert load_settings(health_details=policy).health_details == policy


def test_a_check_timeout_beyond_the_deadline_fails_naming_both_settings(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LIGHTKEEPER_HEALTH_TIMEOUT_SECONDS", "2")
    with pytest.raises(SettingsError) as err:
        load_settings()
    text = str(err.value)
    assert "LIGHTKEEPER_HEALTH_TIMEOUT_SECONDS" in text and "LIGHTKEEPER_HEALTH_DEADLINE_SECONDS" in text
    raised = load_settings(health_deadline_seconds=3.0)
    assert raised.health_timeout_seconds == 2.0 and raised.health_deadline_seconds == 3.0


def test_lowering_only_the_deadline_lowers_the_default_check_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("LIGHTKEEPER_HEALTH_DEADLINE_SECONDS", "0.5")
    settings = load_settings()
    assert settings.health_timeout_seconds == settings.health_deadline_seconds == 0.5
    with pytest.raises(SettingsError, match="health_timeout_seconds"):
        load_settings(health_timeout_seconds=0.7)


@pytest.mark.parametrize("value", ["0", "-1", "soon", "61"])
def test_a_bad_health_deadline_fails_naming_the_setting(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    monkeypatch.setenv("LIGHTKEEPER_HEALTH_DEADLINE_SECONDS", value)
    with pytest.raises(SettingsError) as err:
        load_settings()
    assert "health_deadline_seconds" in str(err.value) and "LIGHTKEEPER_HEALTH_DEADLINE_SECONDS" in str(
        err.value
    )
