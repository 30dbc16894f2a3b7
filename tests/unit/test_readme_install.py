"""The README's install section matches the package: every extra it names exists in
pyproject.toml, every extra pyproject declares is explained, and the first snippet a
reader copies runs as written (its names are imported, nothing is left undefined)."""

from __future__ import annotations

import ast
import builtins
import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
EXTRAS = set(tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["optional-dependencies"])
USER_EXTRAS = EXTRAS - {"dev", "bench"}  # the project's own tooling, not for users


def _section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.index("\n## ", start + 1)
    return README[start:end]


def test_the_install_line_names_only_real_extras() -> None:
    install = _section("Install")
    (line,) = re.findall(r'pip install "lightkeeper\[([a-z0-9,]+)\]"', install)
    named = set(line.split(","))
    assert named <= USER_EXTRAS, named - USER_EXTRAS


def test_every_extra_is_explained_in_the_table_and_only_those() -> None:
    rows = set(re.findall(r"^\| `([a-z0-9]+)` \|", _section("Install"), re.M))
    assert rows == USER_EXTRAS


def test_the_first_snippet_imports_every_name_it_uses() -> None:
    code = re.search(r"```python\n(.*?)```", README, re.S)
    assert code is not None
    tree = ast.parse(code.group(1))
    bound = set(dir(builtins))
    for node in ast.walk(tree):
        if isinstance(node, ast.Import | ast.ImportFrom):
            bound |= {(a.asname or a.name).split(".")[0] for a in node.names}
        elif isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            bound.add(node.id)
    used = {n.id for n in ast.walk(tree) if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load)}
    assert used <= bound, used - bound
    assert "lightkeeper" in bound
