"""Golden files pin everything `generate` writes for examples/lightkeeper.yaml.

A change to any generator shows up here as a reviewable diff. After an intended
change, regenerate with:  LK_UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/stack/test_golden.py
"""

from __future__ import annotations

import os
import shutil
import tempfile

from lightkeeper.stack.generate import render_all
from lightkeeper.stack.writer import MARKER, MARKER_TEXT
from tests.unit.stack._specs import ROOT, example_spec

GOLDEN = ROOT / "tests" / "golden" / "example"


def test_generated_output_matches_the_golden_files() -> None:
    files = {**render_all(example_spec()), MARKER: MARKER_TEXT}
    if os.environ.get("LK_UPDATE_GOLDEN") == "1":
        shutil.rmtree(GOLDEN, ignore_errors=True)
        for rel, text in files.items():
            target = GOLDEN / rel
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_text(text, encoding="utf-8")
    on_disk = {str(p.relative_to(GOLDEN)): p for p in sorted(GOLDEN.rglob("*")) if p.is_file()}
    assert sorted(on_disk) == sorted(files), "files added or removed: set LK_UPDATE_GOLDEN=1 to accept"
    changed = [rel for rel, text in files.items() if on_disk[rel].read_text(encoding="utf-8") != text]
    assert changed == [], f"generated output changed in {changed}: set LK_UPDATE_GOLDEN=1 to accept"


def test_golden_output_has_no_volatile_content() -> None:
    for path in GOLDEN.rglob("*"):
        if path.is_file():
            text = path.read_text(encoding="utf-8")
            for volatile in (str(ROOT), tempfile.gettempdir() + os.sep):
                assert volatile not in text, (path, volatile)
