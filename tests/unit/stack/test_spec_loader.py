"""Bad specs fail with file, line, field and a sentence saying what to write instead."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from lightkeeper.spec.loader import SpecError, load_spec, parse_spec
from lightkeeper.spec.models import model_json_schema
from tests.unit.stack._specs import EXAMPLE, ISSUE_EXAMPLE


def _problems(text: str) -> list[str]:
    with pytest.raises(SpecError) as info:
        parse_spec(text, "spec.yaml")
    return [str(p) for p in info.value.problems]


def test_issue_example_and_example_spec_load() -> None:
    spec = parse_spec(ISSUE_EXAMPLE)
    assert spec.slos[1].sli.kind == "latency"
    assert spec.environments["beta"].thresholds == {"latency_p95_seconds": 0.3}
    assert load_spec(EXAMPLE).service == "saas-api"


def test_unknown_key_names_line_and_suggests_the_right_one() -> None:
    text = ISSUE_EXAMPLE + "notification:\n  repeat_intervall: 4h\n"
    (problem,) = _problems(text)
    line = ISSUE_EXAMPLE.count("\n") + 2
    assert problem.startswith(f"spec.yaml:{line}:3: notification.repeat_intervall: unknown key")
    assert "did you mean 'repeat_interval'?" in problem


def test_wrong_type_and_bad_duration_point_at_the_value() -> None:
    text = ISSUE_EXAMPLE.replace("objective: 99.9", 'objective: "high"').replace(
        "period: 30d\n    sli: {kind: a", "period: 30x\n    sli: {kind: a"
    )
    problems = _problems(text)
    assert any(
        p.startswith("spec.yaml:7:16: slos[0].objective:") and "write a plain number" in p for p in problems
    )
    assert any(
        p.startswith("spec.yaml:8:13: slos[0].period:") and "e.g. 30s, 5m, 1h, 30d" in p for p in problems
    )


def test_union_errors_name_the_field_without_internal_tags() -> None:
    text = ISSUE_EXAMPLE.replace("threshold_seconds: 0.5", "threshold_seconds: -1")
    (problem,) = _problems(text)
    assert "slos[1].sli.threshold_seconds: input should be greater than 0; write a number above 0" in problem
    assert problem.startswith("spec.yaml:13:45:")


def test_bad_sli_kind_says_what_to_write() -> None:
    (problem,) = _problems(ISSUE_EXAMPLE.replace("kind: availability}", "kind: uptime}"))
    assert "write `kind: availability` or `kind: latency`" in problem


def test_missing_required_key() -> None:
    (problem,) = _problems(
        ISSUE_EXAMPLE.replace("  - name: availability\n    objective: 99.9\n", "  - name: availability\n")
    )
    assert "slos[0].objective: required key 'objective' is missing" in problem


def test_cross_references_are_checked() -> None:
    (problem,) = _problems(ISSUE_EXAMPLE.replace("critical: [pager, chat]", "critical: [pagr, chat]"))
    assert "routing.critical names receiver 'pagr', which is not defined under receivers" in problem


def test_inline_secret_is_refused() -> None:
    text = ISSUE_EXAMPLE.replace(
        "https://tickets.example.com/hooks/alerts", "https://t.example.com/h?token=abc"
    )
    (problem,) = _problems(text)
    assert "carries a secret: move it to url_file or url_env" in problem
    assert "abc" not in problem


def test_duplicate_keys_are_errors() -> None:
    (problem,) = _problems(ISSUE_EXAMPLE + "service: other\n")
    assert "key 'service' appears twice" in problem


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("", "the spec is empty"),
        ("- a\n- b\n", "must be a mapping"),
        ("service: api\nenvironments: {prod: {targets: [a:1]}\n", "not valid YAML"),
    ],
)
def test_unusable_documents(text: str, expected: str) -> None:
    (problem,) = _problems(text)
    assert expected in problem


def test_missing_file_says_how_to_start(tmp_path: Path) -> None:
    with pytest.raises(SpecError, match="run `lightkeeper init`"):
        load_spec(tmp_path / "nope.yaml")


def test_json_schema_forbids_unknown_keys_and_uses_aliases() -> None:
    schema = model_json_schema()
    assert schema["additionalProperties"] is False
    assert "for" in schema["$defs"]["AlertThresholds"]["properties"]
    json.dumps(schema)


def test_environment_labels_cannot_override_the_ones_rules_rely_on() -> None:
    text = ISSUE_EXAMPLE.replace(
        'prod: {targets: ["api:8000"]}', 'prod: {targets: ["api:8000"], labels: {service: x}}'
    )
    (problem,) = _problems(text)
    assert "environments.prod.labels.service: service is set by lightkeeper itself" in problem
