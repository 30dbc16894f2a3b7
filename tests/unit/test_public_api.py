"""What users are told to import is public: listed, documented, typed, outside `lightkeeper.sdk`.

`lightkeeper.sdk` is the implementation and may be rearranged in any release; a README
that sends users into it turns every such change into a breaking one.
"""

from __future__ import annotations

import ast
import importlib
import inspect
import re
import subprocess
import sys
import textwrap
import typing
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import pytest

import lightkeeper
from lightkeeper.sdk.instrument import InstrumentOptions
from lightkeeper.sdk.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
PUBLIC_MODULES = (
    "lightkeeper",
    "lightkeeper.celery",
    "lightkeeper.health",
    "lightkeeper.multiprocess",
    "lightkeeper.redaction",
    "lightkeeper.testing",
    "lightkeeper.tracing",
    "lightkeeper.workflow",
)
DOCUMENTS = (ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md")))
# `**kwargs: Any` that is the point of the function, not a pass-through hiding a signature:
# the keyword arguments of bind() and capture_exception() are the caller's own fields.
FREE_KEYWORDS = {"lightkeeper.bind", "lightkeeper.capture_exception"}
# Constants (a mask string, a default) are documented where they are defined.
CONSTANT_TYPES = (str, int, float, tuple, frozenset)


def _public_names() -> list[tuple[str, str]]:
    names = []
    for module_name in PUBLIC_MODULES:
        module = importlib.import_module(module_name)
        names += [(module_name, name) for name in module.__all__]
    return names


@pytest.mark.parametrize("module_name", PUBLIC_MODULES)
def test_every_public_module_is_documented_and_lists_its_names(module_name: str) -> None:
    module = importlib.import_module(module_name)

    assert (module.__doc__ or "").strip(), f"{module_name} has no docstring"
    assert module.__all__, f"{module_name} has an empty __all__"
    assert len(set(module.__all__)) == len(module.__all__)


@pytest.mark.parametrize(("module_name", "name"), _public_names(), ids=lambda v: str(v))
def test_every_public_name_resolves_and_has_its_own_docstring(module_name: str, name: str) -> None:
    value = getattr(importlib.import_module(module_name), name)

    if name == "__version__":
        assert isinstance(value, str)
        assert re.fullmatch(r"\d+\.\d+\.\d+\S*", value)
        return
    if isinstance(value, CONSTANT_TYPES):
        return
    assert inspect.ismodule(value) or inspect.isclass(value) or callable(value), (module_name, name)
    doc = value.__doc__ or ""
    assert doc.strip(), f"{module_name}.{name} has no docstring"
    if not inspect.ismodule(value):
        assert value.__module__.startswith("lightkeeper"), f"{module_name}.{name} is not Lightkeeper's"


@pytest.mark.parametrize(("module_name", "name"), _public_names(), ids=lambda v: str(v))
def test_no_public_function_hides_its_keywords_behind_any(module_name: str, name: str) -> None:
    value = getattr(importlib.import_module(module_name), name)
    if not inspect.isfunction(value) or f"{module_name}.{name}" in FREE_KEYWORDS:
        return
    for parameter in inspect.signature(value).parameters.values():
        if parameter.kind is inspect.Parameter.VAR_KEYWORD:
            assert parameter.annotation not in ("Any", Any), f"{module_name}.{name}(**{parameter.name}: Any)"


def test_the_lazy_names_and_what_type_checkers_see_agree() -> None:
    tree = ast.parse((ROOT / "src/lightkeeper/__init__.py").read_text(encoding="utf-8"))
    seen_by_checkers: dict[str, str] = {}
    for node in tree.body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            for statement in ast.walk(node):
                if isinstance(statement, ast.ImportFrom) and statement.module:
                    for alias in statement.names:
                        seen_by_checkers[alias.asname or alias.name] = statement.module

    exported = set(lightkeeper.__all__) - {"__version__"}
    assert set(seen_by_checkers) == exported
    assert set(lightkeeper._EXPORTS) | lightkeeper._SUBMODULES == exported
    for name, home in lightkeeper._EXPORTS.items():
        assert seen_by_checkers[name] == home, name
    for name in lightkeeper._SUBMODULES:
        assert seen_by_checkers[name] == "lightkeeper", name
        assert getattr(lightkeeper, name) is importlib.import_module(f"lightkeeper.{name}")
    assert set(lightkeeper.__all__) <= set(dir(lightkeeper))


def test_a_misspelt_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="instrumnet"):
        lightkeeper.instrumnet  # noqa: B018


def _as_accepted(annotation: Any) -> Any:
    """Settings hold tuples; `instrument()` accepts any sequence (pydantic converts)."""
    if typing.get_origin(annotation) is tuple:
        return Sequence[typing.get_args(annotation)[0]]  # type: ignore[misc]
    return annotation


def test_instrument_options_are_exactly_the_settings_with_their_types() -> None:
    identity = {"service", "environment", "version"}  # explicit parameters of instrument()
    options = typing.get_type_hints(InstrumentOptions)
    fields = {name: f.annotation for name, f in Settings.model_fields.items() if name not in identity}

    assert set(options) == set(fields), "InstrumentOptions and Settings list different settings"
    for name, annotation in fields.items():
        assert options[name] == _as_accepted(annotation), name
    assert InstrumentOptions.__total__ is False
    assert "instrument" in lightkeeper.__all__


def test_instrument_takes_the_typed_options() -> None:
    parameters = inspect.signature(lightkeeper.instrument).parameters
    assert parameters["settings"].annotation == "Unpack[InstrumentOptions]"
    assert {"service", "environment", "version", "checks"} <= set(parameters)


_FENCE = re.compile(r"^```(\w*)\n(.*?)^```", re.MULTILINE | re.DOTALL)
_IMPORT = re.compile(
    r"^\s*(?:from\s+(lightkeeper[\w.]*)\s+import\s+([\w, ()]+)|import\s+(lightkeeper[\w.]*))"
)


def _documented_imports() -> list[tuple[str, str, str | None]]:
    """(document, module, imported name or None) for every import in a Python code block."""
    found: list[tuple[str, str, str | None]] = []
    for document in DOCUMENTS:
        for language, block in _FENCE.findall(document.read_text(encoding="utf-8")):
            if language not in ("python", "py", ""):
                continue
            for line in block.splitlines():
                match = _IMPORT.match(line.split("#")[0])
                if match is None:
                    continue
                if match[3]:
                    found.append((document.name, match[3], None))
                    continue
                for name in match[2].strip("() ").split(","):
                    found.append((document.name, match[1], name.strip()))
    return found


def test_the_documents_show_imports_and_all_of_them_are_public() -> None:
    imports = _documented_imports()
    assert ("README.md", "lightkeeper", None) in imports  # the parser does find them

    for document, module_name, name in imports:
        if name is None:
            assert module_name in PUBLIC_MODULES, f"{document}: import {module_name}"
            continue
        target = f"{module_name}.{name}"
        if target in PUBLIC_MODULES:
            continue  # `from lightkeeper import health`
        assert module_name in PUBLIC_MODULES, f"{document}: from {module_name} import {name}"
        assert name in importlib.import_module(module_name).__all__, f"{document}: {target}"


# For maintainers: it describes the implementation's layers by name.
MAINTAINER_DOCUMENTS = {"architecture.md"}


@pytest.mark.parametrize(
    "document", [d for d in DOCUMENTS if d.name not in MAINTAINER_DOCUMENTS], ids=lambda p: p.name
)
def test_the_documents_never_point_into_the_implementation(document: Path) -> None:
    text = document.read_text(encoding="utf-8")

    assert re.findall(r"lightkeeper\.sdk\.\w[\w.]*", text) == []
    assert re.findall(r"lightkeeper/sdk/\w+\.py", text) == []


def test_a_misspelt_or_mistyped_setting_is_a_type_error(tmp_path: Path) -> None:
    pytest.importorskip("mypy")
    user_code = tmp_path / "service.py"
    user_code.write_text(
        textwrap.dedent(
            """
            import lightkeeper
            from lightkeeper.celery import celery_check

            app = object()
            lightkeeper.instrument(app, service="api", flush_interval_ms=10, redact_keys=["x-tenant"])
            lightkeeper.instrument(app, checks=[celery_check(object(), timeout=0.5)])
            lightkeeper.instrument(app, flush_intervl_ms=10)
            lightkeeper.instrument(app, log_level="LOUD")
            lightkeeper.instrument_sqlalchemy(app, slow_query_secs=1.0)
            """
        ),
        encoding="utf-8",
    )
    out = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--cache-dir", str(tmp_path / "cache"), str(user_code)],
        capture_output=True,
        text=True,
        cwd=str(ROOT),
        timeout=300,
    )
    errors = [line for line in out.stdout.splitlines() if ": error:" in line]

    assert [int(line.split(":")[1]) for line in errors] == [8, 9, 10], out.stdout
    assert '"flush_intervl_ms"' in errors[0]
    assert '"log_level"' in errors[1]
    assert '"slow_query_secs"' in errors[2]
