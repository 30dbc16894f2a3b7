"""Server settings: command-line flags over environment variables over the spec.

The spec's `server:` section says what the team promised (time zone, SLA, credits);
flags and environment say where this process runs. One frozen object carries both so
every part of the server reads the same answer.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from lightkeeper.spec.models import Spec
from lightkeeper.spec.probes import ConnectivityCheck, Probe
from lightkeeper.spec.server import ServerSection

ENV_DB_URL = "LIGHTKEEPER_DB_URL"
ENV_ADMIN_TOKEN = "LIGHTKEEPER_ADMIN_TOKEN"  # noqa: S105 (a variable name)
DEFAULT_SPEC = "lightkeeper.yaml"
DEFAULT_PORT = 8787


class ServerConfig(BaseModel):
    model_config = ConfigDict(frozen=True, arbitrary_types_allowed=True)

    spec_path: Path | None = None
    db_url: str | None = None
    host: str = "127.0.0.1"
    port: int = Field(DEFAULT_PORT, ge=0, le=65535)
    service: str = "lightkeeper-server"
    environment: str = "production"
    slo_environment: str | None = None  # the spec environment whose targets the SLO scraper reads
    admin_token: SecretStr | None = None
    server: ServerSection = Field(default_factory=lambda: ServerSection())
    probes: tuple[Probe, ...] = ()
    connectivity_check: ConnectivityCheck | None = None
    spec: Spec | None = None


def load_config(
    *,
    spec_path: str | Path | None = None,
    db_url: str | None = None,
    host: str | None = None,
    port: int | None = None,
    environ: Mapping[str, str] | None = None,
) -> ServerConfig:
    """Build the configuration; a missing default spec file means "no probes yet", not an error.

    An explicitly named spec that does not exist is an error (a typo must not start an
    empty monitor). Spec errors propagate as the loader's `SpecError`.
    """
    from lightkeeper.spec.loader import load_spec

    env = os.environ if environ is None else environ
    path: Path | None = Path(spec_path) if spec_path is not None else Path(DEFAULT_SPEC)
    if spec_path is None and path is not None and not path.exists():
        path = None
    spec = load_spec(path) if path is not None else None
    token = env.get(ENV_ADMIN_TOKEN) or None
    fields: dict[str, object] = {
        "spec_path": path,
        "db_url": db_url or env.get(ENV_DB_URL) or None,
        "admin_token": SecretStr(token) if token else None,
    }
    if host is not None:
        fields["host"] = host
    if port is not None:
        fields["port"] = port
    if spec is not None:
        fields.update(
            service=spec.service,
            server=spec.server,
            probes=tuple(spec.probes),
            connectivity_check=spec.connectivity_check,
            spec=spec,
        )
    return ServerConfig.model_validate(fields)
