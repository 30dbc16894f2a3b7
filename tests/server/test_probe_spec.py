"""The `probes:` section: one model for the spec and the admin API, errors with file:line and a fix."""

from __future__ import annotations

import pytest
from pydantic import TypeAdapter, ValidationError

from lightkeeper.spec import models, probes
from lightkeeper.spec.loader import SpecError, parse_spec
from lightkeeper.spec.models import model_json_schema
from lightkeeper.spec.probes import HeartbeatProbe, HttpProbe, Probe

HEAD = "service: api\nenvironments:\n  prod: {targets: ['api:8000']}\n"


def problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(HEAD + text, "spec.yaml")
    return [str(p) for p in info.value.problems]


def test_valid_probes_load_with_defaults() -> None:
    spec = parse_spec(
        HEAD
        + """\
connectivity_check: {target: "1.1.1.1:53"}
probes:
  - name: api
    type: http
    target: https://api.example.com/health
    interval_seconds: 5
    headers: {Accept: application/json}
    headers_env: {Authorization: STATUS_TOKEN}
  - {name: db, type: postgres, target: "postgresql://app@db:5432/app", password_env: PGPASSWORD}
  - {name: cache, type: redis, target: "cache:6379", component: Cache, tags: [infra]}
  - {name: backup, type: heartbeat, cron: "0 2 * * *", timezone: Europe/Berlin, grace_seconds: 900}
"""
    )
    api, db, cache, backup = spec.probes
    assert isinstance(api, HttpProbe) and isinstance(backup, HeartbeatProbe)
    assert (api.component, api.timeout_seconds, api.retries, api.expected_status) == (
        "api",
        5,
        0,
        ["200-399"],
    )
    assert (db.interval_seconds, db.timeout_seconds) == (60, 10)
    assert (cache.component, cache.tags) == ("Cache", ["infra"])
    assert spec.connectivity_check is not None and spec.connectivity_check.target == "1.1.1.1:53"
    assert parse_spec(HEAD).probes == [] and parse_spec(HEAD).connectivity_check is None


def test_admin_api_json_validates_with_the_same_model() -> None:
    adapter: TypeAdapter[Probe] = TypeAdapter(Probe)
    probe = adapter.validate_json('{"name": "web", "type": "tcp", "target": "web:443", "retries": 2}')
    assert probe.retries == 2 and adapter.validate_python(probe.model_dump()) == probe
    with pytest.raises(ValidationError):
        adapter.validate_json('{"name": "", "type": "tcp", "target": "web:443"}')


def test_negative_interval_points_at_the_value() -> None:
    (problem,) = problems("probes:\n  - {name: a, type: tcp, target: 'x:1', interval_seconds: -1}\n")
    assert problem.startswith("spec.yaml:5:59: probes[0].interval_seconds: ")
    assert "write a number of at least 1" in problem


def test_unknown_type_lists_the_types() -> None:
    (problem,) = problems("probes:\n  - name: a\n    type: ftp\n    target: x\n")
    assert problem == (
        "spec.yaml:6:11: probes[0].type: this probe needs `type:` with one of"
        " http, tcp, dns, tls, postgres, redis, heartbeat"
    )


def test_missing_type_says_what_to_write() -> None:
    (problem,) = problems("probes:\n  - name: a\n    target: x\n")
    assert problem.startswith("spec.yaml:5:5: probes[0]: this probe needs `type:`")


def test_inline_authorization_header_is_refused_without_echoing_it() -> None:
    (problem,) = problems(
        "probes:\n  - name: a\n    type: http\n    target: http://x/\n    headers:\n"
        "      Authorization: Bearer abc123secret\n"
    )
    assert problem.startswith("spec.yaml:9:7: probes[0].headers: header 'Authorization' carries a credential")
    assert "headers_env: {Authorization: VARIABLE_NAME}" in problem
    assert "abc123secret" not in problem


@pytest.mark.parametrize("header", ["Cookie", "X-Api-Key", "X-Auth-Token"])
def test_other_credential_headers_are_refused(header: str) -> None:
    (problem,) = problems(
        f"probes:\n  - {{name: a, type: http, target: 'http://x/', headers: {{{header}: v}}}}\n"
    )
    assert f"header '{header}' carries a credential" in problem


def test_timeout_longer_than_interval() -> None:
    (problem,) = problems(
        "probes:\n  - name: a\n    type: tcp\n    target: x:1\n"
        "    interval_seconds: 5\n    timeout_seconds: 9\n"
    )
    assert problem == (
        "spec.yaml:9:22: probes[0].timeout_seconds: timeout_seconds (9) is longer than interval_seconds (5);"
        " write a timeout of at most the interval"
    )


def test_unknown_key_suggests_the_assertion() -> None:
    (problem,) = problems(
        "probes:\n  - name: a\n    type: http\n    target: http://x/\n    body_contain: ok\n"
    )
    assert problem.startswith("spec.yaml:8:5: probes[0].body_contain: unknown key 'body_contain';")
    assert "did you mean 'body_contains'?" in problem


def test_dsn_password_is_refused_and_never_echoed() -> None:
    (problem,) = problems("probes:\n  - {name: a, type: postgres, target: 'postgresql://u:hunter2@db/x'}\n")
    assert "probes[0].target: this DSN carries a password; remove it and give password_env" in problem
    assert "hunter2" not in problem
    (url_problem,) = problems("probes:\n  - {name: a, type: http, target: 'https://x/?token=abcdef'}\n")
    assert "carries a credential" in url_problem and "abcdef" not in url_problem


def test_duplicate_names_bad_name_and_bad_targets() -> None:
    dup = problems(
        "probes:\n  - {name: a, type: tcp, target: 'x:1'}\n  - {name: a, type: tcp, target: 'x:2'}\n"
    )
    assert dup == ["spec.yaml:5:3: probes: probe names must be unique; repeated: a"]
    (bad_name,) = problems("probes:\n  - {name: Bad Name, type: tcp, target: 'x:1'}\n")
    assert "probes[0].name: probe names are 1-63 lowercase letters" in bad_name
    (no_port,) = problems("probes:\n  - {name: a, type: tcp, target: 'db.internal'}\n")
    assert "must be host:port" in no_port
    (status,) = problems(
        "probes:\n  - {name: a, type: http, target: 'http://x/', expected_status: ['299-200']}\n"
    )
    assert "codes are 100-599 and a range goes from low to high" in status


def test_heartbeat_schedule_rules() -> None:
    (both,) = problems("probes:\n  - {name: a, type: heartbeat, period_seconds: 60, cron: '* * * * *'}\n")
    assert "exactly one of period_seconds or cron" in both
    (bad_cron,) = problems("probes:\n  - {name: a, type: heartbeat, cron: '0 2 * *'}\n")
    assert "probes[0].cron: cron '0 2 * *' is not a cron expression" in bad_cron
    (zone,) = problems("probes:\n  - {name: a, type: heartbeat, cron: '0 2 * * *', timezone: Mars/Olympus}\n")
    assert "not an IANA time zone" in zone
    (target,) = problems("probes:\n  - {name: a, type: heartbeat, period_seconds: 60, target: 'x:1'}\n")
    assert "unknown key 'target'" in target


def test_name_rule_is_the_spec_wide_one() -> None:
    assert probes._NAME.pattern == models._NAME.pattern


def test_json_schema_documents_probes_with_an_example() -> None:
    schema = model_json_schema()
    assert schema["properties"]["probes"]["examples"] == [probes.PROBES_EXAMPLE]
    assert {"HttpProbe", "HeartbeatProbe", "ConnectivityCheck"} <= set(schema["$defs"])
    for example in probes.PROBES_EXAMPLE:  # the example itself is valid
        TypeAdapter(Probe).validate_python(example)
