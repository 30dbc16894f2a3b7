"""compose.observability.yml: a self-contained overlay whose mounts all exist in the output.

There is no Docker engine here, so `docker compose config` cannot run; the overlay is
checked structurally (the Compose keys it uses, no references to services it does not
define, every bind-mount source generated). The Alertmanager entrypoint script, the
one piece of logic in it, runs for real under /bin/sh.
"""

from __future__ import annotations

import os
import re
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from lightkeeper.spec.loader import parse_spec
from lightkeeper.spec.models import Spec
from lightkeeper.stack import alertmanager, alloy, compose, grafana, loki, tempo
from lightkeeper.stack.generate import render_all

SPEC = """
service: api
environments:
  prod: {targets: ["api:8000"], bearer_token_file: /run/secrets/metrics-token}
slos:
  - {name: availability, objective: 99.9, period: 30d, sli: {kind: availability}}
routing: {critical: [pager, chat], high: [chat], medium: [mail], low: []}
receivers:
  pager: {pagerduty: {routing_key_file: /run/secrets/pagerduty}}
  chat: {slack: {webhook_url_env: SLACK_WEBHOOK_URL}}
  mail:
    email: {to: a@example.com, from: b@example.com, smarthost: "smtp:587", auth_password_env: SMTP_PASSWORD}
"""
SERVICE_KEYS = {
    "image",
    "command",
    "entrypoint",
    "environment",
    "volumes",
    "ports",
    "restart",
    "depends_on",
    "tmpfs",
    "pid",
}


def spec(text: str = SPEC) -> Spec:
    return parse_spec(text)


@pytest.fixture(scope="module")
def generated() -> dict[str, str]:
    return render_all(spec())


@pytest.fixture(scope="module")
def overlay(generated: dict[str, str]) -> dict[str, Any]:
    return yaml.safe_load(generated[compose.COMPOSE_PATH])  # type: ignore[no-any-return]


def test_overlay_uses_only_top_level_services_and_volumes(overlay: dict[str, Any]) -> None:
    assert set(overlay) == {"services", "volumes"}
    assert set(overlay["services"]) == {
        "prometheus",
        "alertmanager",
        "grafana",
        "loki",
        "tempo",
        "alloy",
        "node-exporter",
    }
    for name, service in overlay["services"].items():
        assert set(service) <= SERVICE_KEYS, name


def test_overlay_never_references_a_service_it_does_not_define(overlay: dict[str, Any]) -> None:
    # Valid without the app's compose file: no depends_on/links/volumes_from to app services.
    own = set(overlay["services"])
    for name, service in overlay["services"].items():
        assert set(service.get("depends_on", [])) <= own, name
        assert "links" not in service and "volumes_from" not in service and "network_mode" not in service


def test_images_are_pinned(overlay: dict[str, Any]) -> None:
    for name, service in overlay["services"].items():
        image = service["image"]
        assert re.fullmatch(r"[\w./-]+:v?\d+\.\d+\.\d+", image), (name, image)
        assert image == compose.IMAGES[name]


def _binds(overlay: dict[str, Any]) -> list[tuple[str, str, str]]:
    """(service, source, target) of bind mounts, sources relative to the generated folder.

    Compose interpolates `${LIGHTKEEPER_DIR:-.}` before splitting the short syntax on `:`;
    so do we (with the default, `.`).
    """
    found = []
    for name, service in overlay["services"].items():
        for volume in service["volumes"]:
            source, target, *_mode = volume.replace(compose.DIR, ".").split(":")
            if source.startswith(("./", "/")):
                found.append((name, source.removeprefix("./"), target))
    return found


def test_every_bind_mount_comes_from_the_generated_folder(
    overlay: dict[str, Any], generated: dict[str, str]
) -> None:
    for volume in (v for s in overlay["services"].values() for v in s["volumes"]):
        source = volume.split(":")[0]
        # host paths are matched whole: "/" must not let any other absolute path through
        assert (
            volume.startswith(compose.DIR + "/")
            or source in compose.HOST_PATHS
            or not source.startswith(("/", "."))
        ), volume
    for name, rel, _target in _binds(overlay):
        if rel in compose.HOST_PATHS:
            continue
        is_file = rel in generated
        is_dir = any(path.startswith(rel + "/") for path in generated)
        assert is_file or is_dir, (name, rel)
    mounted = {source for _n, source, _t in _binds(overlay)}
    for needed in (
        "prometheus",
        alertmanager.CONFIG_PATH,
        "alertmanager/templates",
        "grafana/provisioning",
        "grafana/dashboards",
        loki.CONFIG_PATH,
        tempo.CONFIG_PATH,
        alloy.CONFIG_PATH,
    ):
        assert needed in mounted


def test_mounts_land_where_the_configs_expect_them(
    overlay: dict[str, Any], generated: dict[str, str]
) -> None:
    targets = {(name, target) for name, _s, target in _binds(overlay)}
    assert ("grafana", grafana.CONTAINER_DASHBOARDS_DIR) in targets
    prometheus = yaml.safe_load(generated["prometheus/prometheus.yml"])
    assert ("prometheus", "/etc/prometheus") in targets
    for rule_file in prometheus["rule_files"]:  # relative to /etc/prometheus/prometheus.yml
        assert f"prometheus/{rule_file}" in generated
    am = yaml.safe_load(generated[alertmanager.CONFIG_PATH])
    assert am["templates"] == ["templates/*.tmpl"]  # relative to /etc/alertmanager/alertmanager.yml
    assert ("alertmanager", "/etc/alertmanager/templates") in targets
    service = overlay["services"]["alertmanager"]
    script = service["entrypoint"][2]
    assert "--config.file=/etc/alertmanager/alertmanager.yml" in script
    assert ("alertmanager", "/etc/alertmanager/alertmanager.yml") in targets
    named = {
        v.split(":")[0]
        for s in overlay["services"].values()
        for v in s["volumes"]
        if not v.startswith(("$", "/"))
    }
    assert named == set(overlay["volumes"])


def test_ports_agree_with_the_configs(overlay: dict[str, Any], generated: dict[str, str]) -> None:
    services = overlay["services"]
    published = {name: [p.split(":")[-1] for p in s.get("ports", [])] for name, s in services.items()}
    assert published["alloy"] == [str(alloy.OTLP_GRPC_PORT), str(alloy.OTLP_HTTP_PORT), str(alloy.UI_PORT)]
    assert all(p.startswith("127.0.0.1:") for s in services.values() for p in s.get("ports", []))
    prometheus = yaml.safe_load(generated["prometheus/prometheus.yml"])
    targets = prometheus["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert targets == ["alertmanager:9093"] and published["alertmanager"] == ["9093"]
    assert "--storage.tsdb.retention.time=30d" in services["prometheus"]["command"]
    assert "--enable-feature=exemplar-storage" in services["prometheus"]["command"]
    assert services["loki"]["command"] == ["-config.file=/etc/loki/loki.yml"]
    assert services["tempo"]["command"] == ["-config.file=/etc/tempo/tempo.yml"]
    assert "/etc/alloy/config.alloy" in services["alloy"]["command"]


def test_env_secrets_are_materialised_on_a_tmpfs(overlay: dict[str, Any], generated: dict[str, str]) -> None:
    service = overlay["services"]["alertmanager"]
    assert service["tmpfs"] == [alertmanager.SECRETS_DIR]
    assert service["environment"] == {
        "SLACK_WEBHOOK_URL": "${SLACK_WEBHOOK_URL:-}",
        "SMTP_PASSWORD": "${SMTP_PASSWORD:-}",
    }
    script = service["entrypoint"][2]
    for var, path in alertmanager.secret_env_vars(spec()).items():
        assert path in generated[alertmanager.CONFIG_PATH]
        assert f"> {path}" in script and f"$${{{var}:?" in script
    header = generated[compose.COMPOSE_PATH].split("services:")[0]
    assert "/run/secrets/pagerduty" in header and "/run/secrets/metrics-token" in header


def _script(overlay: dict[str, Any], secrets_dir: Path) -> str:
    """The entrypoint as the container shell sees it: after Compose turns `$$` into `$`."""
    text: str = overlay["services"]["alertmanager"]["entrypoint"][2]
    text = text.replace("$$", "$").replace(alertmanager.SECRETS_DIR, str(secrets_dir))
    return re.sub(r"exec /bin/alertmanager .*", "exec env", text)


def test_entrypoint_writes_private_files_and_clears_the_environment(
    overlay: dict[str, Any], tmp_path: Path
) -> None:
    secret = "https://hooks.slack.com/services/T0/B0/not-for-logs"
    env = {"PATH": os.environ["PATH"], "SLACK_WEBHOOK_URL": secret, "SMTP_PASSWORD": "pw-123"}
    result = subprocess.run(
        ["/bin/sh", "-c", _script(overlay, tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "SLACK_WEBHOOK_URL").read_text() == secret  # exact, no trailing newline
    assert (tmp_path / "SMTP_PASSWORD").read_text() == "pw-123"
    for name in ("SLACK_WEBHOOK_URL", "SMTP_PASSWORD"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
    assert secret not in result.stdout and "pw-123" not in result.stdout  # Alertmanager never sees them


def test_entrypoint_refuses_to_start_without_a_secret(overlay: dict[str, Any], tmp_path: Path) -> None:
    env = {"PATH": os.environ["PATH"], "SLACK_WEBHOOK_URL": "", "SMTP_PASSWORD": "pw-123"}
    result = subprocess.run(
        ["/bin/sh", "-c", _script(overlay, tmp_path)],
        env=env,
        capture_output=True,
        text=True,
        timeout=10,
        check=False,
    )
    assert result.returncode != 0
    assert "set SLACK_WEBHOOK_URL for Alertmanager" in result.stderr
    assert "pw-123" not in result.stderr + result.stdout


def test_no_env_secrets_means_the_image_entrypoint_is_kept() -> None:
    text = "service: api\nenvironments: {prod: {targets: ['api:8000']}}\n"
    data = yaml.safe_load(compose.render(spec(text))[compose.COMPOSE_PATH])
    service = data["services"]["alertmanager"]
    assert "entrypoint" not in service and "tmpfs" not in service and "environment" not in service
    assert service["command"][0] == "--config.file=/etc/alertmanager/alertmanager.yml"


def test_output_is_deterministic() -> None:
    assert compose.render(spec()) == compose.render(spec())
    text = compose.render(spec())[compose.COMPOSE_PATH]
    assert "&id" not in text and "*id" not in text
