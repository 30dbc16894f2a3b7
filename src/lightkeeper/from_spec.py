"""What the service reads from `lightkeeper.yaml`: usage events and negotiated LLM prices.

    lightkeeper.instrument(
        app,
        usage_events=lightkeeper.usage_events_from_spec("lightkeeper.yaml"),
        llm=True,
        llm_prices=lightkeeper.llm_prices_from_spec("lightkeeper.yaml"),
    )

A list repeated in the code drifts from the spec's: an event the spec calls core but the
code never declares is refused at run time (or dropped in production) while its
"unexpectedly quiet" alert fires for good. Reading the spec's own `usage:` section makes
that impossible. The SDK itself never reads the file: this module sits outside it and
loads the spec parser (pydantic, PyYAML) on call only.
"""

from __future__ import annotations

import os
from pathlib import Path

__all__ = ["llm_prices_from_spec", "usage_events_from_spec"]


def usage_events_from_spec(
    path: str | os.PathLike[str] = "lightkeeper.yaml",
) -> dict[str, dict[str, list[str]]]:
    """The events `path` declares under `usage.events`, as `instrument(usage_events=...)` takes them.

    The whole spec is validated by the same rules as `lightkeeper check`, so a service
    never starts on a declaration the generator would refuse; an invalid or missing
    file raises ValueError naming the file, line and field.
    """
    from lightkeeper.spec.loader import load_spec

    return load_spec(Path(path)).usage.declared()


def llm_prices_from_spec(path: str | os.PathLike[str] = "lightkeeper.yaml") -> dict[str, dict[str, float]]:
    """The negotiated rates `path` declares under `llm_prices`, as `instrument(llm_prices=...)` takes them.

    USD per million tokens by model; they replace the price table's rates for those
    models only (costs stay computed offline, in the service).
    """
    from lightkeeper.spec.loader import load_spec

    return {
        model: rates.model_dump(exclude_none=True)
        for model, rates in load_spec(Path(path)).llm_prices.items()
    }
