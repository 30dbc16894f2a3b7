"""Importing Lightkeeper changes nothing in the process; `instrument()` is what does.

A script that reads the catalogue, `lightkeeper generate` and every CLI command import
`lightkeeper` without running a service: they must not get prometheus-client's value
class swapped, exit or fork hooks registered, or the SDK's runtime (Starlette, Celery,
SQLAlchemy, OpenTelemetry) loaded. Each case runs in a fresh interpreter, with
`atexit.register` and `os.register_at_fork` replaced by recorders before the import.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]

# Loaded before the recorders so their own hooks are not counted. Everything after
# `# --- imports ---` is the case under test.
_HARNESS = textwrap.dedent(
    """
    import atexit, importlib, json, os, pkgutil, sys
    from prometheus_client import values

    recorded = []

    def _caller():
        return sys._getframe(2).f_globals.get("__name__", "?")

    _atexit_register, _fork_register = atexit.register, os.register_at_fork

    def _record_atexit(fn, *args, **kwargs):
        recorded.append({"kind": "atexit", "caller": _caller(), "hooks": [getattr(fn, "__module__", None)]})
        return _atexit_register(fn, *args, **kwargs)

    def _record_fork(**hooks):
        modules = sorted(str(getattr(fn, "__module__", None)) for fn in hooks.values())
        recorded.append({"kind": "fork", "caller": _caller(), "hooks": modules})
        return _fork_register(**hooks)

    atexit.register, os.register_at_fork = _record_atexit, _record_fork
    callbacks_before = atexit._ncallbacks()
    value_class = values.ValueClass

    def import_tree(package):
        importlib.import_module(package)
        for info in pkgutil.walk_packages(sys.modules[package].__path__, package + "."):
            importlib.import_module(info.name)

    def report():
        print(json.dumps({
            "recorded": recorded,
            "atexit_added": atexit._ncallbacks() - callbacks_before,
            "value_class_swapped": values.ValueClass is not value_class,
            "modules": sorted(sys.modules),
        }))

    # --- imports ---
    """
)

_RUNTIME = ("starlette", "fastapi", "celery", "sqlalchemy", "opentelemetry", "sentry_sdk", "structlog")


def _run(case: str, **env: str) -> dict[str, Any]:
    environ = {k: v for k, v in os.environ.items() if not k.startswith(("LIGHTKEEPER_", "PROMETHEUS_"))}
    # Pydantic loads installed plugins (logfire's, from the bench extra) when a model is
    # built; they register hooks and import OpenTelemetry themselves, which is not ours.
    environ["PYDANTIC_DISABLE_PLUGINS"] = "__all__"
    environ.update(env)
    out = subprocess.run(
        [sys.executable, "-c", _HARNESS + textwrap.dedent(case)],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        env=environ,
        timeout=120,
    )
    assert out.returncode == 0, out.stderr
    result: dict[str, Any] = json.loads(out.stdout.strip().splitlines()[-1])
    return result


def _ours(result: dict[str, Any]) -> list[dict[str, Any]]:
    """Registrations made by, or of, Lightkeeper code."""
    return [
        r
        for r in result["recorded"]
        if r["caller"].startswith("lightkeeper") or any(str(h).startswith("lightkeeper") for h in r["hooks"])
    ]


def _loaded(result: dict[str, Any], *roots: str) -> list[str]:
    return [m for m in result["modules"] if m.split(".")[0] in roots or m.startswith(roots)]


IMPORT_CASES = {
    "package": "import lightkeeper\nlightkeeper.__version__",
    "catalogue": "import lightkeeper.catalogue",
    "spec": "import_tree('lightkeeper.spec')",
    "stack": "import_tree('lightkeeper.stack')",
    "cli modules": "import_tree('lightkeeper.cli')",
}


@pytest.mark.parametrize("case", IMPORT_CASES.values(), ids=IMPORT_CASES.keys())
def test_importing_changes_no_process_wide_state(case: str) -> None:
    result = _run(case + "\nreport()")

    assert not result["value_class_swapped"]
    assert _ours(result) == []
    # Every registration went through the recorders, so none of ours slipped past them.
    assert result["atexit_added"] == sum(r["kind"] == "atexit" for r in result["recorded"])
    assert _loaded(result, "lightkeeper.sdk") == []
    assert _loaded(result, *_RUNTIME) == []


@pytest.mark.parametrize(
    "module",
    [
        "lightkeeper.health",
        "lightkeeper.testing",
        "lightkeeper.celery",
        "lightkeeper.redaction",
        "lightkeeper.workflow",
    ],
)
def test_public_modules_imported_before_instrument_change_nothing(module: str) -> None:
    # Services import these at module level, before (or without) calling instrument().
    result = _run(f"import {module}\nreport()")

    assert not result["value_class_swapped"]
    assert _ours(result) == []
    assert "lightkeeper.sdk.instrument" not in result["modules"]


def test_the_bare_package_imports_only_its_version() -> None:
    result = _run("import lightkeeper\nreport()")

    assert _loaded(result, "lightkeeper") == ["lightkeeper", "lightkeeper._version"]


def test_cli_help_loads_neither_the_generators_nor_the_demo() -> None:
    result = _run(
        """
        from lightkeeper.cli import main
        sys.argv = ["lightkeeper", "--help"]
        try:
            main()
        except SystemExit as exc:
            assert exc.code in (0, None), exc.code
        report()
        """
    )

    assert _loaded(result, "lightkeeper") == [
        "lightkeeper",
        "lightkeeper._version",
        "lightkeeper.cli",
        "lightkeeper.cli.budget",
        "lightkeeper.cli.demo",
        "lightkeeper.cli.deploy",
        "lightkeeper.cli.stack",
        "lightkeeper.server",
        "lightkeeper.server.cli",
        "lightkeeper.server.cost",
        "lightkeeper.server.cost.report",
    ]
    assert _loaded(result, "pydantic", "yaml", "jinja2", "httpx", *_RUNTIME) == []
    assert _ours(result) == []


def test_a_public_name_is_loaded_on_first_use_and_unknown_names_fail() -> None:
    result = _run(
        """
        import lightkeeper
        assert "lightkeeper.sdk.usage" not in sys.modules
        assert lightkeeper.usage.__module__ == "lightkeeper.sdk.usage"
        assert "usage" in dir(lightkeeper) and "instrument" in dir(lightkeeper)
        try:
            lightkeeper.instrumnet
        except AttributeError as exc:
            assert "instrumnet" in str(exc)
        else:
            raise AssertionError("a misspelt name resolved")
        report()
        """
    )

    assert "lightkeeper.sdk.usage" in result["modules"]
    assert "lightkeeper.sdk.instrument" not in result["modules"]


_INSTRUMENT = """
    import lightkeeper
    from starlette.applications import Starlette
    lightkeeper.instrument(Starlette(), service="t", configure_logging=False)
    report()
"""


def test_instrument_installs_the_exit_and_fork_hooks() -> None:
    result = _run(_INSTRUMENT)

    hooks = [(r["kind"], r["hooks"]) for r in _ours(result)]
    assert ("atexit", ["lightkeeper.sdk.write_behind"]) in hooks
    assert ("fork", ["lightkeeper.sdk.write_behind", "lightkeeper.sdk.write_behind"]) in hooks
    assert not result["value_class_swapped"]  # one process: prometheus-client's own values


def test_instrument_switches_prometheus_client_to_files_for_several_workers(tmp_path: Path) -> None:
    result = _run(_INSTRUMENT, LIGHTKEEPER_MULTIPROCESS_DIR=str(tmp_path / "metrics"))

    assert result["value_class_swapped"]
    assert any(path.name.endswith(".db") for path in (tmp_path / "metrics").iterdir())
