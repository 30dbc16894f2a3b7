"""The alert families data file: loaded, validated, and refused when malformed."""

from __future__ import annotations

from importlib import resources

import pytest
import yaml
from pydantic import ValidationError

from lightkeeper.spec.models import ALERT_FAMILIES
from lightkeeper.stack import alert_families
from lightkeeper.stack.alert_families import FAMILIES, SHARED_STEPS, load

TEXT = resources.files("lightkeeper.stack").joinpath(alert_families.DATA_FILE).read_text(encoding="utf-8")


def _edited(edit: object) -> str:
    data = yaml.safe_load(TEXT)
    edit(data)  # type: ignore[operator]
    return yaml.safe_dump(data)


def test_every_spec_family_is_in_the_file_with_its_shared_steps_resolved() -> None:
    assert [f.key for f in FAMILIES] == list(ALERT_FAMILIES)
    error_rate = FAMILIES[0]
    assert error_rate.for_ == "5m" and error_rate.defaults == {"high": 0.05, "critical": 0.25}
    assert error_rate.steps[0] == SHARED_STEPS["check_deploy"]
    assert alert_families.FAMILY_BY_KEY["memory_bytes"].defaults == {"high": 2147483648.0}


def test_unknown_expression_is_refused_with_the_known_ones() -> None:
    text = _edited(lambda d: d["families"][0].update(expr="error_ratio"))
    with pytest.raises(ValidationError, match=r"unknown expr 'error_ratio'; known: .*error_rate"):
        load(text)


def test_unknown_field_and_bad_severity_are_refused() -> None:
    with pytest.raises(ValidationError, match="threshold"):
        load(_edited(lambda d: d["families"][0].update(threshold=1)))
    with pytest.raises(ValidationError, match="defaults"):
        load(_edited(lambda d: d["families"][0].update(defaults={"urgent": 1.0})))


def test_repeated_or_missing_family_is_refused() -> None:
    with pytest.raises(ValueError, match="repeated: error_rate"):
        load(_edited(lambda d: d["families"].append(d["families"][0])))
    with pytest.raises(ValueError, match=r"missing \['instance_down'\]"):
        load(
            _edited(
                lambda d: d["families"].remove(next(f for f in d["families"] if f["key"] == "instance_down"))
            )
        )


def test_a_traffic_floor_belongs_exactly_to_ratio_and_quantile_families() -> None:
    with pytest.raises(ValueError, match="cpu_utilization: min_requests is given exactly for ratio"):
        load(
            _edited(
                lambda d: next(f for f in d["families"] if f["key"] == "cpu_utilization").update(
                    min_requests=5
                )
            )
        )
    with pytest.raises(ValueError, match="error_rate: min_requests is given exactly for ratio"):
        load(
            _edited(lambda d: next(f for f in d["families"] if f["key"] == "error_rate").pop("min_requests"))
        )
