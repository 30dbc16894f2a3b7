"""`lightkeeper generate` + `lightkeeper check` as a user runs them, with the real tools."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import services

pytestmark = pytest.mark.integration
EXAMPLE = services.ROOT / "examples" / "lightkeeper.yaml"


def lightkeeper(*args: str, path: str | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "COLUMNS": "200"}
    if path is not None:
        env["PATH"] = path
    return subprocess.run(
        [sys.executable, "-c", "from lightkeeper.cli import main; main()", *args],
        capture_output=True,
        text=True,
        timeout=280,
        env=env,
        cwd=services.ROOT,
    )


@pytest.fixture(scope="module")
def generated(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("check") / "observability"
    result = lightkeeper("generate", "--spec", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def test_example_passes_every_check_with_the_real_tools(generated: Path) -> None:
    assert shutil.which("promtool") and shutil.which("amtool"), (
        "install the prometheus and prometheus-alertmanager packages"
    )
    result = lightkeeper("check", "--spec", str(EXAMPLE), "--out", str(generated))
    assert result.returncode == 0, result.stdout[-5000:] + result.stderr[-2000:]
    for name in (
        "promtool check config",
        "promtool check rules --lint=all",
        "promtool test rules",
        "amtool check-config",
        "amtool template render",
        "amtool config routes test",
    ):
        assert name in result.stdout
    assert "all checks passed" in result.stdout


def test_a_broken_folder_fails_with_a_readable_report(generated: Path, tmp_path: Path) -> None:
    out = shutil.copytree(generated, tmp_path / "o")
    rules = out / "prometheus" / "rules" / "golden-signals.yml"
    rules.write_text(rules.read_text().replace("> 0.05", "> 0.5", 1))
    for slow in ("slo-*", "week-over-week-*", "product-usage-*"):  # week-long tests, not what fails here
        for test in (out / "tests").glob(f"{slow}.test.yml"):
            test.unlink()
    result = lightkeeper("check", "--spec", str(EXAMPLE), "--out", str(out))
    assert result.returncode == 1
    assert "FAILED" in result.stdout and "promtool test rules" in result.stdout
    assert "HTTPErrorRateHigh" in result.stdout
    assert "some checks failed" in result.stderr


def test_without_promtool_and_amtool_it_says_so_and_runs_its_own_checks(
    generated: Path, tmp_path: Path
) -> None:
    empty = tmp_path / "bin"
    empty.mkdir()
    result = lightkeeper("check", "--spec", str(EXAMPLE), "--out", str(generated), path=str(empty))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "promtool is not installed" in result.stdout and "amtool is not installed" in result.stdout
    assert "PromQL expressions parse" in result.stdout and "metrics exist in the catalogue" in result.stdout
