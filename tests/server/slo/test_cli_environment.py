"""`lightkeeper server --environment` refuses an environment the spec does not define, before serving."""

from __future__ import annotations

from pathlib import Path

from typer.testing import CliRunner

from lightkeeper.cli import _register, app


def test_unknown_environment_exits_2_with_the_known_ones(tmp_path: Path) -> None:
    spec = tmp_path / "lightkeeper.yaml"
    spec.write_text(
        "service: shop\nenvironments:\n  prod:\n    targets: ['127.0.0.1:1']\n"
        "  staging:\n    targets: ['127.0.0.1:2']\n"
    )
    _register()
    db = f"sqlite:///{tmp_path / 'lk.db'}"
    result = CliRunner().invoke(app, ["server", "--spec", str(spec), "--db", db, "--environment", "prdo"])
    assert result.exit_code == 2, result.output
    assert "unknown environment 'prdo' (the spec defines: prod, staging)" in result.output
    assert "Traceback" not in result.output
    assert not (tmp_path / "lk.db").exists()  # refused before touching the store
