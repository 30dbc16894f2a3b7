"""`lightkeeper.instrument(app)`: placeholder while the core lands."""

from __future__ import annotations

from typing import Any


def instrument(app: Any, **kwargs: Any) -> Any:
    raise NotImplementedError
