"""Loki, Tempo and Alloy configs: parsed and cross-checked against each other and the overlay.

The loki, tempo and alloy binaries are not installed here and no Docker engine runs,
so `loki -verify-config`, `tempo -config.verify` and `alloy fmt` cannot be used: the
checks are structural (YAML parses, required sections, Alloy component references
resolve, ports and hostnames agree with Grafana's datasources and the compose overlay).
"""

from __future__ import annotations

import re
from urllib.parse import urlparse

import pytest
import yaml

from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alloy, compose, grafana, loki, tempo

SPEC = "service: api\nenvironments: {prod: {targets: ['api:8000']}}\n"


def spec() -> Spec:
    return parse_spec(SPEC)


# --- Loki ------------------------------------------------------------------------------
def test_loki_config_is_single_binary_tsdb_v13_with_structured_metadata() -> None:
    files = loki.render(spec())
    assert set(files) == {loki.CONFIG_PATH}
    data = yaml.safe_load(files[loki.CONFIG_PATH])
    assert data["auth_enabled"] is False
    (schema,) = data["schema_config"]["configs"]
    assert (schema["store"], schema["schema"], schema["object_store"]) == ("tsdb", "v13", "filesystem")
    assert data["limits_config"]["allow_structured_metadata"] is True
    assert data["compactor"]["retention_enabled"] is True and data["compactor"]["delete_request_store"]
    assert data["common"]["path_prefix"] == loki.DATA_DIR
    url = urlparse(grafana.LOKI_URL)
    assert (url.hostname, url.port) == ("loki", data["server"]["http_listen_port"])


# --- Tempo -----------------------------------------------------------------------------
def test_tempo_receives_otlp_on_all_interfaces_and_serves_grafana() -> None:
    data = yaml.safe_load(tempo.render(spec())[tempo.CONFIG_PATH])
    grpc = data["distributor"]["receivers"]["otlp"]["protocols"]["grpc"]["endpoint"]
    assert grpc == f"0.0.0.0:{tempo.OTLP_GRPC_PORT}"
    assert data["storage"]["trace"]["backend"] == "local"
    assert data["storage"]["trace"]["wal"]["path"].startswith(tempo.DATA_DIR)
    url = urlparse(grafana.TEMPO_URL)
    assert (url.hostname, url.port) == ("tempo", data["server"]["http_listen_port"])


# --- Alloy -----------------------------------------------------------------------------
@pytest.fixture(scope="module")
def alloy_text() -> str:
    return alloy.render(spec())[alloy.CONFIG_PATH]


def _strip_comments_and_strings(text: str) -> str:
    text = re.sub(r"//[^\n]*", "", text)
    return re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)


def test_alloy_braces_and_brackets_balance(alloy_text: str) -> None:
    body = _strip_comments_and_strings(alloy_text)
    for open_, close in ("{}", "[]", "()"):
        depth = 0
        for ch in body:
            depth += (ch == open_) - (ch == close)
            assert depth >= 0
        assert depth == 0, open_


def test_every_alloy_reference_points_at_a_defined_component(alloy_text: str) -> None:
    body = _strip_comments_and_strings(alloy_text)
    defined = {
        f"{m.group(1)}.{m.group(2)}"
        for m in re.finditer(r"^([a-z_]+(?:\.[a-z_]+)+)\s+\"([a-z_]+)\"\s*\{", alloy_text, re.M)
    }
    assert {"otelcol.receiver.otlp.app", "otelcol.exporter.otlp.tempo", "loki.write.default"} <= defined
    references = re.findall(r"=\s*\[?\s*((?:otelcol|loki|discovery)\.[a-z_.]+)", body)
    assert references
    for ref in references:
        component = ref.rsplit(".", 1)[0]  # drop the export: .input, .receiver, .targets, .output, .rules
        assert component in defined, ref


def test_alloy_sends_traces_to_tempo_and_logs_to_loki(alloy_text: str) -> None:
    assert f'endpoint = "tempo:{tempo.OTLP_GRPC_PORT}"' in alloy_text
    push = re.search(r'url = "(http://loki:\d+/loki/api/v1/push)"', alloy_text)
    assert push is not None
    assert urlparse(push.group(1)).port == loki.HTTP_PORT
    assert f'endpoint = "0.0.0.0:{alloy.OTLP_GRPC_PORT}"' in alloy_text
    assert f'endpoint = "0.0.0.0:{alloy.OTLP_HTTP_PORT}"' in alloy_text
    published = compose.config(spec())["services"]["alloy"]["ports"]
    assert f"127.0.0.1:{alloy.OTLP_HTTP_PORT}:{alloy.OTLP_HTTP_PORT}" in published


def test_loki_labels_are_only_service_environment_level(alloy_text: str) -> None:
    keep = re.search(r"stage\.label_keep \{\s*values = \[([^\]]*)\]", alloy_text)
    assert keep is not None
    assert re.findall(r'"(\w+)"', keep.group(1)) == ["service", "environment", "level"]
    labels = re.search(r"stage\.labels \{\s*values = \{([^}]*)\}", alloy_text)
    assert labels is not None
    assert set(re.findall(r"(\w+) =", labels.group(1))) == {"service", "environment", "level"}
    metadata = re.search(r"stage\.structured_metadata \{\s*values = \{([^}]*)\}", alloy_text)
    assert metadata is not None
    assert {"trace_id", "request_id"} <= set(re.findall(r"(\w+) =", metadata.group(1)))
    # request_id never becomes a label (one stream per request would exhaust Loki's index)
    assert "request_id" not in keep.group(1) and "request_id" not in labels.group(1)


def test_alloy_skips_the_stacks_own_containers(alloy_text: str) -> None:
    drop = re.search(r'regex\s*=\s*"([^"]+)"\s*\n\s*action\s*=\s*"drop"', alloy_text)
    assert drop is not None
    assert set(drop.group(1).split("|")) == set(compose.config(spec())["services"])


def test_telemetry_configs_are_deterministic() -> None:
    for module in (loki, tempo, alloy):
        assert module.render(spec()) == module.render(spec())
