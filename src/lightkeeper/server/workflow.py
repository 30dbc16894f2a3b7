"""The spec's workflow sampled by the server, for services that cannot run the sampler.

The same sampler as `lightkeeper.instrument_workflow()` (its own pooled connections,
statement timeouts, stale values marked by age), started in the server process against
the service's database, whose URL an environment variable names
(`server.workflow_database_url_env`: a URL carries a password, so it never sits in the
spec). Only the server started for `server.workflow_environment` samples; the generated
Prometheus config stamps that environment and the service on the gauges it scrapes from
the server, so the generated workflow alerts and dashboard rows read them as they read
a service's own.
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from lightkeeper.sdk.workflow.declarations import from_config
from lightkeeper.sdk.workflow.sampler import WorkflowSampler, instrument_workflow
from lightkeeper.server.slo.scraper import pick_environment

if TYPE_CHECKING:
    from lightkeeper.server.config import ServerConfig

log = logging.getLogger(__name__)


class WorkflowConfigError(ValueError):
    """The spec asks the server to sample a workflow it cannot reach."""


def start(config: ServerConfig) -> WorkflowSampler | None:
    """Start sampling when the spec asks this server to; None when it does not."""
    spec = config.spec
    sampled = spec.workflow_sampled_environment() if spec is not None else None
    if spec is None or sampled is None:
        return None
    serving, _ = pick_environment(spec, config.slo_environment)
    if serving != sampled:
        log.info("workflow sampled by the server of %s, not by this one (%s)", sampled, serving)
        return None
    variable = spec.server.workflow_database_url_env
    url = os.environ.get(variable or "")
    if not url:
        raise WorkflowConfigError(
            f"server.workflow_database_url_env names {variable}, which is not set: export it with the "
            "service's database URL (e.g. postgresql+psycopg://user:password@db/app)"
        )
    entities, aggregates = from_config(
        {name: entity.model_dump(exclude_none=True) for name, entity in spec.workflow.items()},
        {name: aggregate.sql for name, aggregate in spec.workflow_aggregates.items()},
    )
    return instrument_workflow(url, entities=entities, aggregates=aggregates)
