"""Receiver and scrape credentials as keys of one Kubernetes Secret.

The spec names secrets by file (`*_file`) or environment variable (`*_env`); in a
cluster both become keys of the Secret named by `kubernetes.secret_name`: the file's
base name, or the variable's name. The Secret itself is never generated: it would have
to contain the secrets.
"""

from __future__ import annotations

import re
from pathlib import PurePosixPath

from lightkeeper.stack.errors import GenerationError

_SECRET_KEY = re.compile(r"^[-._a-zA-Z0-9]+$")


def secret_key(path: str, field: str) -> str:
    """The Secret key a spec secret path (or `<dir>/<ENV_VAR>`) maps to."""
    key = PurePosixPath(path).name
    if not _SECRET_KEY.match(key) or key in {".", ".."}:
        raise GenerationError(
            f"{field}: {path!r} ends in {key!r}, which cannot be a Kubernetes Secret key"
            " (letters, digits, '-', '_', '.')"
        )
    return key
