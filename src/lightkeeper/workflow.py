"""Workflow health: entity counts by status and stuck entities, sampled from the database.

    import lightkeeper
    from lightkeeper.workflow import Aggregate, Entity

    lightkeeper.instrument_workflow(
        engine,
        entities=[Entity("content_items", processing=["publishing"], terminal=["published"],
                         failed=["failed"], stuck_after=["30m", "2h", "24h"], name="content_item")],
        aggregates=[Aggregate("pending_invites", "SELECT count(*) FROM invites WHERE accepted_at IS NULL")],
    )

or, from the `workflow:` and `workflow_aggregates:` sections of `lightkeeper.yaml`:

    entities, aggregates = lightkeeper.workflow.from_spec("lightkeeper.yaml")

Declaring is free: this module loads neither SQLAlchemy nor the sampler until
`instrument_workflow()` (or `WorkflowSampler`) is used.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

from lightkeeper.sdk.workflow.declarations import Aggregate, DeclarationError, Entity, from_config

if TYPE_CHECKING:
    from lightkeeper.sdk.workflow.sampler import WorkflowSampler

__all__ = ["Aggregate", "DeclarationError", "Entity", "WorkflowSampler", "from_config", "from_spec"]


def from_spec(path: str | os.PathLike[str] = "lightkeeper.yaml") -> tuple[list[Entity], list[Aggregate]]:
    """The entities and aggregates a `lightkeeper.yaml` declares, checked by the spec's own rules first.

    Loads the spec parser (pydantic, PyYAML) on call only: a service that declares its
    workflow in code never pays for it.
    """
    from lightkeeper.spec.loader import load_spec

    spec = load_spec(Path(path))
    return from_config(
        {name: entity.model_dump(exclude_none=True) for name, entity in spec.workflow.items()},
        {name: aggregate.sql for name, aggregate in spec.workflow_aggregates.items()},
    )


def __getattr__(name: str) -> Any:
    if name == "WorkflowSampler":
        return importlib.import_module("lightkeeper.sdk.workflow.sampler").WorkflowSampler
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
