"""The import contracts in pyproject.toml hold, and each one still fails when its rule is broken.

A contract that names a module nobody has any more, or a cycle check that stopped
looking at function-local imports, would pass forever. So each case copies the
package, checks the contract is kept on the copy, adds one import that breaks the
rule, and checks that the same contract now fails and names the new import.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.services import ROOT

PACKAGE = ROOT / "src" / "lightkeeper"
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(package_parent: Path, contract: str) -> subprocess.CompletedProcess[str]:
    """lint-imports with the project's configuration, on the package found under `package_parent`."""
    env = {**os.environ, "PYTHONPATH": str(package_parent)}
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", "--contract", contract, str(ROOT / "pyproject.toml")],
        cwd=ROOT,  # the custom contract type is imported from tests.support
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def package_copy(tmp_path: Path) -> Path:
    shutil.copytree(PACKAGE, tmp_path / "lightkeeper", ignore=shutil.ignore_patterns("__pycache__"))
    return tmp_path


def _write(root: Path, relative: str, source: str) -> None:
    path = root / "lightkeeper" / relative
    with path.open("a", encoding="utf-8") as file:
        file.write("\n" + textwrap.dedent(source))


# contract id, files to add to (or append to) in the copy, a module the failure must name
BREAKS = [
    pytest.param(
        "sdk-acyclic",
        {
            "sdk/cycle_probe.py": "from lightkeeper.sdk import logs\n",
            # Hidden in a function, as the cycles this contract was written against were.
            "sdk/logs.py": "def _probe() -> None:\n    from lightkeeper.sdk import cycle_probe\n",
        },
        "lightkeeper.sdk.cycle_probe",
        id="cycle-through-a-function-local-import",
    ),
    pytest.param(
        "sdk-acyclic",
        # The cycle this contract replaced: otel reaching back for the tracing set-up.
        {"sdk/integrations/otel.py": "def _probe() -> None:\n    import lightkeeper.sdk.trace_provider\n"},
        "lightkeeper.sdk.integrations.otel",
        id="cycle-between-an-integration-and-the-sdk",
    ),
    pytest.param(
        "sdk-stands-alone",
        {"sdk/cli_probe.py": "def _probe() -> None:\n    import lightkeeper.cli\n"},
        "lightkeeper.sdk.cli_probe",
        id="sdk-imports-the-cli",
    ),
    pytest.param(
        "generators-without-sdk",
        {"stack/sdk_probe.py": "from lightkeeper.sdk import settings\n"},
        "lightkeeper.stack.sdk_probe",
        id="a-generator-imports-the-sdk",
    ),
    pytest.param(
        "layers",
        {"spec/layer_probe.py": "import lightkeeper.stack\n"},
        "lightkeeper.spec.layer_probe",
        id="the-spec-imports-the-stack",
    ),
    pytest.param(
        "layers",
        {"catalogue.py": "import lightkeeper.spec\n"},
        "lightkeeper.catalogue",
        id="the-catalogue-imports-the-spec",
    ),
]


@pytest.mark.parametrize(("contract", "files", "named"), BREAKS)
def test_a_contract_fails_when_its_rule_is_broken(
    package_copy: Path, contract: str, files: dict[str, str], named: str
) -> None:
    before = _lint(package_copy, contract)
    assert before.returncode == 0, before.stdout + before.stderr
    assert "1 kept, 0 broken" in before.stdout

    for relative, source in files.items():
        _write(package_copy, relative, source)
    after = _lint(package_copy, contract)
    assert after.returncode == 1, after.stdout + after.stderr
    assert "0 kept, 1 broken" in after.stdout
    assert named in after.stdout


def test_the_tree_keeps_every_contract() -> None:
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def test_an_unknown_package_is_an_error_not_a_kept_contract(tmp_path: Path) -> None:
    config = tmp_path / "contracts.toml"
    config.write_text(
        textwrap.dedent(
            """
            [tool.importlinter]
            root_package = "lightkeeper"
            contract_types = ["acyclic_modules: tests.support.import_contracts.AcyclicModulesContract"]

            [[tool.importlinter.contracts]]
            id = "gone"
            name = "a package that does not exist"
            type = "acyclic_modules"
            packages = ["lightkeeper.no_such_package"]
            """
        ),
        encoding="utf-8",
    )
    result = subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--no-logo", str(config)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode != 0
    assert "KEPT" not in result.stdout
    assert "lightkeeper.no_such_package" in result.stdout + result.stderr
