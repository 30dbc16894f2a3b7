"""The stack commands as a user runs them (typer's runner, real files)."""

from __future__ import annotations

import json
import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightkeeper.cli import _register, app
from lightkeeper.spec.loader import load_spec
from lightkeeper.stack.rules import all_alerts

_register()
runner = CliRunner()


def _run(*args: str) -> tuple[int, str]:
    result = runner.invoke(app, list(args))
    return result.exit_code, result.output


def test_every_command_has_help() -> None:
    for command in (
        ["init"],
        ["generate"],
        ["check"],
        ["test-rules"],
        ["schema"],
        ["slo", "import"],
        ["slo", "export"],
    ):
        code, out = _run(*command, "--help")
        assert code == 0 and "Usage" in out, command


def test_init_writes_a_starter_that_generates(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    code, out = _run("init", "--service", "shop")
    assert code == 0, out
    spec = load_spec(tmp_path / "lightkeeper.yaml")
    assert len(all_alerts(spec)) >= 15
    assert json.loads((tmp_path / "lightkeeper.schema.json").read_text())["title"] == "Spec"
    code, out = _run("init")
    assert code == 1 and "already exists; pass --force" in out
    code, out = _run("generate", "--out", "obs")
    assert code == 0, out
    assert (tmp_path / "obs" / "prometheus" / "prometheus.yml").is_file()


def test_init_reads_routes_from_an_app(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    (tmp_path / "tinyapp.py").write_text(
        textwrap.dedent(
            """
            from fastapi import FastAPI
            app = FastAPI()
            @app.get("/api/v1/orders/{order_id}")
            def order(order_id: int) -> dict: return {}
            @app.post("/api/v1/orders")
            def create() -> dict: return {}
            @app.get("/api/users/me")
            def me() -> dict: return {}
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    code, out = _run("init", "--app", "tinyapp:app", "--service", "shop")
    assert code == 0, out
    spec = load_spec(tmp_path / "lightkeeper.yaml")
    assert spec.route_groups == {
        "reads": ["/api/users/me", "/api/v1/orders/{order_id}"],
        "writes": ["/api/v1/orders"],
    }
    assert {s.name for s in spec.slos} == {"availability", "reads-latency", "writes-latency"}
    code, out = _run("init", "--app", "nope_module:app", "--force")
    assert code == 1 and "importing nope_module failed" in out


def test_generate_reports_spec_errors_with_lines(tmp_path: Path) -> None:
    spec = tmp_path / "bad.yaml"
    spec.write_text("service: api\nenvironments:\n  prod: {targets: ['api:8000'], treshold: 1}\n")
    code, out = _run("generate", "--spec", str(spec), "--out", str(tmp_path / "o"))
    assert code == 2
    assert "bad.yaml:3:33: environments.prod.treshold: unknown key" in " ".join(out.split())
    assert not (tmp_path / "o").exists()


def test_generate_reports_impossible_slos(tmp_path: Path) -> None:
    spec = tmp_path / "slo.yaml"
    spec.write_text(
        "service: api\nenvironments: {prod: {targets: ['api:8000']}}\n"
        "slos: [{name: loose, objective: 90, sli: {kind: availability}}]\n"
    )
    code, out = _run("generate", "--spec", str(spec), "--out", str(tmp_path / "o"))
    assert code == 1 and "can never fire" in out


def test_test_rules_runs_promtool(tmp_path: Path) -> None:
    spec = tmp_path / "s.yaml"
    spec.write_text("service: api\nenvironments: {prod: {targets: ['api:8000']}}\n")
    code, out = _run("test-rules", "--spec", str(spec))
    assert code == 0, out
    assert "promtool test rules" in out and "every alert has a firing and a silent test" in out


def test_slo_export_then_import(tmp_path: Path) -> None:
    example = Path(__file__).resolve().parents[3] / "examples" / "lightkeeper.yaml"
    exported = tmp_path / "openslo.yaml"
    code, out = _run("slo", "export", "--spec", str(example), "--out", str(exported))
    assert code == 0, out
    code, out = _run("slo", "import", str(exported))
    assert code == 0 and "content-latency" in out and "route_groups" in out
    code, out = _run("slo", "import", str(tmp_path / "missing.yaml"))
    assert code == 1 and "cannot read" in out


def test_schema_command(tmp_path: Path) -> None:
    code, out = _run("schema")
    assert code == 0 and json.loads(out)["additionalProperties"] is False
