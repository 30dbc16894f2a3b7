"""`lightkeeper init --app`: route groups by what routes do, mounted sub-apps, the app's title."""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from typer.testing import CliRunner

from lightkeeper.cli import _register, app
from lightkeeper.spec.loader import load_spec

_register()
runner = CliRunner()

APP = """
from fastapi import APIRouter, FastAPI
app = FastAPI(title="Orgs Service")
@app.get("/boom")
def boom() -> dict: raise RuntimeError("boom")
@app.get("/api/orgs/{org_id}")
def org(org_id: int) -> dict: return {}
@app.post("/api/orgs")
def create() -> dict: return {}
@app.delete("/api/orgs/{org_id}")
def delete(org_id: int) -> dict: return {}
@app.post("/auth/token")
def token() -> dict: return {}
@app.get("/health/ready")
def ready() -> dict: return {}
admin = FastAPI()
@admin.put("/settings")
def settings() -> dict: return {}
@admin.get("/docs-index")
def index() -> dict: return {}
app.mount("/admin", admin)
reports = APIRouter(prefix="/api/reports")
@reports.get("/{report_id}")
def report(report_id: int) -> dict: return {}
app.include_router(reports)
"""


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    module = f"app_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(textwrap.dedent(APP), encoding="utf-8")
    monkeypatch.chdir(tmp_path)
    return tmp_path / module


def _init(project: Path, *args: str) -> tuple[int, str]:
    result = runner.invoke(app, ["init", "--app", f"{project.name}:app", *args])
    return result.exit_code, result.output


def test_groups_by_kind_with_mounted_routes_and_the_app_title(project: Path) -> None:
    code, out = _init(project, "--yes")
    assert code == 0, out
    spec = load_spec(project.parent / "lightkeeper.yaml")
    assert spec.service == "orgs-service"
    assert spec.route_groups == {
        "reads": ["/admin/docs-index", "/api/orgs/{org_id}", "/api/reports/{report_id}", "/boom"],
        "writes": ["/admin/settings", "/api/orgs"],
        "auth": ["/auth/token"],
    }
    latency = {s.name: s.sli for s in spec.slos if s.sli.kind == "latency"}
    assert set(latency) == {"reads-latency", "writes-latency", "auth-latency"}
    assert latency["reads-latency"].threshold_seconds == 0.5  # type: ignore[union-attr]
    assert latency["writes-latency"].threshold_seconds == 1.0  # type: ignore[union-attr]


def test_slo_option_chooses_groups(project: Path) -> None:
    code, out = _init(project, "--slo", "reads,auth", "--service", "shop")
    assert code == 0, out
    spec = load_spec(project.parent / "lightkeeper.yaml")
    assert spec.service == "shop"
    assert {s.name for s in spec.slos} == {"availability", "reads-latency", "auth-latency"}
    assert "writes" in spec.route_groups  # still described, just without an SLO


def test_unknown_slo_group_is_refused(project: Path) -> None:
    code, out = _init(project, "--slo", "reads,orgs")
    assert code == 1
    assert "--slo orgs: not a route group of this app; found: reads, writes, auth" in " ".join(out.split())
    assert not (project.parent / "lightkeeper.yaml").exists()


def test_health_and_docs_routes_are_skipped(project: Path) -> None:
    assert _init(project, "--yes")[0] == 0
    spec = load_spec(project.parent / "lightkeeper.yaml")
    every = [r for routes in spec.route_groups.values() for r in routes]
    assert "/health/ready" not in every and "/docs" not in every and "/openapi.json" not in every


def test_without_app_the_folder_names_the_service(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    folder = tmp_path / "billing-api"
    folder.mkdir()
    monkeypatch.chdir(folder)
    result = runner.invoke(app, ["init"])
    assert result.exit_code == 0, result.output
    assert load_spec(folder / "lightkeeper.yaml").service == "billing-api"


def test_on_a_terminal_it_asks_per_group_and_writes_what_was_chosen(project: Path) -> None:
    """The prompt path needs a real terminal (stdin.isatty()): run the CLI under a pty."""
    import os
    import pty
    import subprocess
    import sys

    controller, terminal = pty.openpty()
    cmd = [sys.executable, "-c", "from lightkeeper.cli import main; main()"]
    cmd += ["init", "--app", f"{project.name}:app"]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(project.parent), *sys.path])}
    proc = subprocess.Popen(
        cmd, stdin=terminal, stdout=terminal, stderr=terminal, cwd=project.parent, env=env
    )
    os.close(terminal)
    os.write(controller, b"y\nn\ny\n")  # reads: yes, writes: no, auth: yes (in group order)
    shown = b""
    while True:
        try:
            chunk = os.read(controller, 4096)
        except OSError:  # the child closed the terminal
            break
        if not chunk:
            break
        shown += chunk
    assert proc.wait(timeout=60) == 0, shown.decode(errors="replace")
    os.close(controller)
    text = shown.decode(errors="replace")
    assert "/api/orgs/{org_id}" in text and "latency SLO" in text  # each group shows its routes
    spec = load_spec(project.parent / "lightkeeper.yaml")
    assert {s.name for s in spec.slos} == {"availability", "reads-latency", "auth-latency"}
