"""`server.workflow_database_url_env`: the real `lightkeeper server` samples the service's
workflow from the service's PostgreSQL database and exposes the gauges on its /metrics."""

from __future__ import annotations

import subprocess
from pathlib import Path

import httpx
import psycopg
import pytest
import yaml
from prometheus_client.parser import text_string_to_metric_families

from tests.server.test_kill9 import COMMAND, server_process, wait_until
from tests.support import services

pytestmark = pytest.mark.integration
VARIABLE = "LK_TEST_SHOP_DATABASE_URL"


def _spec(tmp_path: Path) -> Path:
    spec = tmp_path / "lightkeeper.yaml"
    spec.write_text(
        yaml.safe_dump(
            {
                "service": "shop",
                "environments": {"prod": {"targets": ["127.0.0.1:1"]}},
                "workflow": {
                    "orders": {
                        "processing_statuses": ["paid"],
                        "terminal_statuses": ["shipped"],
                        "stuck_thresholds": ["30m"],
                    }
                },
                "workflow_aggregates": {
                    "open_orders": {"sql": "SELECT count(*) FROM orders WHERE status = 'paid'"}
                },
                "server": {"workflow_database_url_env": VARIABLE},
            }
        )
    )
    return spec


def _gauges(base: str) -> dict[tuple[str, str], float]:
    page = httpx.get(f"{base}/metrics", timeout=5).text
    return {
        (s.name, s.labels.get("status") or s.labels.get("name", "")): s.value
        for family in text_string_to_metric_families(page)
        for s in family.samples
        if s.name in ("workflow_entities", "workflow_aggregate")
        and s.labels.get("entity", "orders") == "orders"
    }


def test_the_server_samples_the_services_workflow(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with services.temporary_database() as shop:
        with psycopg.connect(shop, autocommit=True) as conn:
            conn.execute("CREATE TABLE orders (id serial PRIMARY KEY, status text, updated_at timestamptz)")
            conn.execute(
                "INSERT INTO orders (status, updated_at) SELECT s, now() - interval '1 hour' "
                "FROM unnest(ARRAY['paid', 'paid', 'paid', 'shipped', 'lost']) AS s"
            )
        monkeypatch.setenv(VARIABLE, shop.replace("postgresql://", "postgresql+psycopg://"))
        with server_process(_spec(tmp_path), f"sqlite:///{tmp_path / 'lk.db'}", tmp_path / "server.log") as (
            _,
            base,
        ):
            got = wait_until(
                lambda: _gauges(base).get(("workflow_aggregate", "open_orders")) and _gauges(base), "a sample"
            )
    assert got[("workflow_entities", "paid")] == 3
    assert got[("workflow_entities", "shipped")] == 1
    assert got[("workflow_entities", "other")] == 1  # 'lost' is no declared status
    assert got[("workflow_aggregate", "open_orders")] == 3
    assert shop.rsplit("/", 1)[0] not in (tmp_path / "server.log").read_text()  # the URL is never logged


def test_a_missing_database_variable_stops_the_start_saying_what_to_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(VARIABLE, raising=False)
    command = [*COMMAND, "server", "--spec", str(_spec(tmp_path)), "--db", f"sqlite:///{tmp_path / 'lk.db'}"]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
    assert result.returncode != 0
    assert (
        f"server.workflow_database_url_env names {VARIABLE}, which is not set"
        in result.stdout + result.stderr
    )
