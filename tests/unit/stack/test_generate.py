"""generate: atomic, deterministic, and refusing to clobber folders it did not write."""

from __future__ import annotations

from pathlib import Path

import pytest

from lightkeeper.spec.loader import parse_spec
from lightkeeper.stack import generate as gen
from lightkeeper.stack.errors import GenerationError
from lightkeeper.stack.writer import MARKER, OutputError, write_atomic
from tests.unit.stack._specs import ISSUE_EXAMPLE, issue_spec


def _tree(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_same_spec_gives_byte_identical_output(tmp_path: Path) -> None:
    gen.generate(issue_spec(), tmp_path / "a")
    gen.generate(parse_spec(ISSUE_EXAMPLE), tmp_path / "b")
    a, b = _tree(tmp_path / "a"), _tree(tmp_path / "b")
    assert a == b
    assert {"prometheus/prometheus.yml", "alertmanager/alertmanager.yml", MARKER} <= set(a)
    assert any(k.startswith("grafana/dashboards/") for k in a)
    assert any(k.startswith("runbooks/") for k in a) and any(k.startswith("tests/") for k in a)


def test_every_generator_is_merged(tmp_path: Path) -> None:
    files = gen.render_all(issue_spec())
    tops = {path.split("/", 1)[0] for path in files}
    assert {"prometheus", "alertmanager", "grafana", "loki", "tempo", "alloy", "runbooks", "tests"} <= tops
    assert "compose.observability.yml" in files
    assert list(files) == sorted(files)


def test_a_failing_spec_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    out = tmp_path / "observability"
    gen.generate(issue_spec(), out)
    before = _tree(out)
    broken = parse_spec(ISSUE_EXAMPLE.replace("objective: 99.9", "objective: 90"))
    with pytest.raises(GenerationError, match="can never fire"):
        gen.generate(broken, out)
    assert _tree(out) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["observability"]


def test_a_failure_while_writing_leaves_the_previous_output_intact(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_atomic({"a.txt": "old\n"}, out)
    with pytest.raises(OutputError, match="must stay inside"):
        write_atomic({"b.txt": "new\n", "../escape.txt": "x"}, out)
    assert (out / "a.txt").read_text() == "old\n" and not (out / "b.txt").exists()
    assert not (tmp_path / "escape.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out"]


def test_replacing_removes_stale_files(tmp_path: Path) -> None:
    out = tmp_path / "out"
    write_atomic({"old.txt": "1", "keep.txt": "1"}, out)
    write_atomic({"keep.txt": "2"}, out)
    assert sorted(p.name for p in out.iterdir()) == [MARKER, "keep.txt"]


def test_refuses_to_replace_a_folder_it_did_not_write(tmp_path: Path) -> None:
    out = tmp_path / "mine"
    out.mkdir()
    (out / "notes.md").write_text("precious")
    with pytest.raises(OutputError, match="was not written by lightkeeper generate"):
        write_atomic({"a": "b"}, out)
    assert (out / "notes.md").read_text() == "precious"
