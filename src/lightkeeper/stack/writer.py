"""Write a generated folder all at once, or not at all.

Files go to a temporary folder beside the target; only when every file is written is
the old folder moved aside and the new one moved in (two renames on one
filesystem). A failure at any earlier point leaves the previous output untouched,
so a broken spec never half-replaces a working Prometheus configuration.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
from pathlib import Path, PurePosixPath

MARKER = ".lightkeeper-generated"
MARKER_TEXT = (
    "This folder is written by `lightkeeper generate` and replaced as a whole on every run.\n"
    "Edit lightkeeper.yaml instead of these files.\n"
)


class OutputError(RuntimeError):
    """The output folder cannot be replaced safely."""


def _safe_relative(path: str) -> PurePosixPath:
    rel = PurePosixPath(path)
    if rel.is_absolute() or ".." in rel.parts or not rel.parts:
        raise OutputError(f"refusing to write {path!r}: generated paths must stay inside the output folder")
    return rel


def write_atomic(files: dict[str, str], out: Path) -> None:
    """Replace `out` with exactly `files` (relative path -> text), atomically."""
    out = out.resolve()
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MARKER).exists())):
        raise OutputError(
            f"{out} exists and was not written by lightkeeper generate; choose another --out "
            "or empty that folder first (generate replaces the whole folder)"
        )
    out.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.new-", dir=out.parent))
    try:
        for path, text in sorted({**files, MARKER: MARKER_TEXT}.items()):
            target = staging / _safe_relative(path)
            target.parent.mkdir(parents=True, exist_ok=True)
            with target.open("w", encoding="utf-8", newline="\n") as fh:
                fh.write(text)
        for directory in [staging, *(p for p in staging.rglob("*") if p.is_dir())]:
            directory.chmod(0o755)
        for file in staging.rglob("*"):
            if file.is_file():
                file.chmod(0o644)
        _swap(staging, out)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _swap(staging: Path, out: Path) -> None:
    if not out.exists():
        staging.replace(out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    old.rmdir()
    out.replace(old)
    try:
        staging.replace(out)
    except BaseException:
        with contextlib.suppress(OSError):
            old.replace(out)
        raise
    shutil.rmtree(old, ignore_errors=True)
