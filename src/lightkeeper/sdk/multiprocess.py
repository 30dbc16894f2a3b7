"""Multi-process (gunicorn, `uvicorn --workers`) metric aggregation.

Placeholder interface; the implementation lands with the multi-worker work.
"""

from __future__ import annotations

from prometheus_client import REGISTRY, CollectorRegistry


def activate_if_needed() -> bool:
    """Switch prometheus-client to shared files when running as one of several workers."""
    return False


def exposition_registry() -> CollectorRegistry:
    """The registry `/metrics` should render: every worker's values in multi-process mode."""
    return REGISTRY
