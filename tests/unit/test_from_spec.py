"""`lightkeeper.usage_events_from_spec`: the spec's usage events, in the shape the SDK's setting takes."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

import lightkeeper
from lightkeeper.sdk.settings import Settings
from lightkeeper.spec.loader import SpecError

ROOT = Path(__file__).resolve().parents[2]
SPEC_HEAD = "service: api\nenvironments:\n  prod:\n    targets: ['api:8000']\n"


def write(tmp_path: Path, body: str, name: str = "lightkeeper.yaml") -> Path:
    path = tmp_path / name
    path.write_text(SPEC_HEAD + textwrap.dedent(body), encoding="utf-8")
    return path


def test_names_and_label_values_come_back_as_the_sdk_setting_takes_them(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        usage:
          events:
            - login_succeeded
            - content_item_created: {plan: [free, pro, team]}
            - payment_attempted: {outcome: [succeeded, failed], provider: [stripe]}
          core: [login_succeeded]
        """,
    )

    declared = lightkeeper.usage_events_from_spec(path)

    assert declared == {
        "login_succeeded": {},
        "content_item_created": {"plan": ["free", "pro", "team"]},
        "payment_attempted": {"outcome": ["succeeded", "failed"], "provider": ["stripe"]},
    }
    assert list(declared) == ["login_succeeded", "content_item_created", "payment_attempted"]
    settings = Settings(service="api", usage_events=declared)
    assert settings.usage_events == declared


def test_the_default_path_is_lightkeeper_yaml_in_the_working_directory(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    write(tmp_path, "usage:\n  events: [workspace_created]\n")
    monkeypatch.chdir(tmp_path)

    assert lightkeeper.usage_events_from_spec() == {"workspace_created": {}}
    assert lightkeeper.usage_events_from_spec("lightkeeper.yaml") == {"workspace_created": {}}


def test_a_spec_without_a_usage_section_declares_nothing(tmp_path: Path) -> None:
    assert lightkeeper.usage_events_from_spec(str(write(tmp_path, ""))) == {}


def test_an_invalid_usage_section_names_the_file_line_and_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
        usage:
          events:
            - login_succeeded
            - content_item_created: {user_id: [a, b]}
        """,
    )

    with pytest.raises(SpecError) as caught:
        lightkeeper.usage_events_from_spec(path)

    # SPEC_HEAD is 4 lines, then a blank line and `usage:`: its value starts on line 7
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.field) == (str(path), 7, "usage")
    assert str(caught.value).startswith(f"{path}:7:")
    assert "user_id" in str(caught.value)
    assert isinstance(caught.value, ValueError)  # what a caller without the spec package catches


def test_an_error_elsewhere_in_the_spec_fails_too(tmp_path: Path) -> None:
    """The service refuses a spec the generator would refuse, not just a bad usage section."""
    path = write(tmp_path, "usage:\n  events: [login_succeeded]\nalerts:\n  error_rate: {high: often}\n")

    with pytest.raises(SpecError, match=rf"^{path}:8:\d+: alerts\.error_rate\.high"):
        lightkeeper.usage_events_from_spec(path)


def test_a_missing_file_says_which_path(tmp_path: Path) -> None:
    missing = tmp_path / "config" / "observability.yaml"

    with pytest.raises(SpecError, match="file not found") as caught:
        lightkeeper.usage_events_from_spec(missing)

    assert str(missing) in str(caught.value)


def test_the_spec_parser_loads_on_call_only() -> None:
    """Naming the function costs a service nothing: pydantic models of the spec and PyYAML
    load when it is called, not when `lightkeeper` is imported or the name looked up."""
    case = textwrap.dedent(
        """
        import json, sys
        import lightkeeper
        fn = lightkeeper.usage_events_from_spec
        before = sorted(m for m in sys.modules if m.startswith(("lightkeeper.spec", "yaml")))
        try:
            fn("no-such-lightkeeper.yaml")
        except ValueError:
            pass
        after = sorted(m for m in sys.modules if m.startswith(("lightkeeper.spec", "yaml")))
        print(json.dumps({"before": before, "after": after, "module": fn.__module__}))
        """
    )
    env = {k: v for k, v in os.environ.items() if not k.startswith("LIGHTKEEPER_")}
    out = subprocess.run(
        [sys.executable, "-c", case], capture_output=True, text=True, cwd=str(ROOT), env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    found = json.loads(out.stdout)

    assert found["module"] == "lightkeeper.from_spec"
    assert found["before"] == []
    assert "lightkeeper.spec.loader" in found["after"] and "yaml" in found["after"]


def test_negotiated_llm_prices_come_from_the_spec_and_price_calls(tmp_path: Path) -> None:
    from lightkeeper.sdk.settings import Settings

    path = write(
        tmp_path,
        "llm_prices:\n  gpt-4o: {input: 2.0, output: 8.0, cached_input: 1.0}\n"
        "  my-finetune: {input: 0.5, output: 1.5}\n",
    )
    prices = lightkeeper.llm_prices_from_spec(path)
    assert prices == {
        "gpt-4o": {"input": 2.0, "output": 8.0, "cached_input": 1.0},
        "my-finetune": {"input": 0.5, "output": 1.5},
    }
    assert Settings(llm_prices=prices).llm_prices == prices  # the SDK setting takes them as they are


def test_a_price_without_an_output_rate_names_the_field(tmp_path: Path) -> None:
    path = write(tmp_path, "llm_prices:\n  gpt-4o: {input: 2.0}\n")
    with pytest.raises(ValueError, match=r"llm_prices\.gpt-4o\.output"):
        lightkeeper.llm_prices_from_spec(path)
