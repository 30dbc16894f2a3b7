"""The `probes:` and `connectivity_check:` sections of `lightkeeper.yaml`.

The same `Probe` model validates the spec file and the admin API's request bodies,
so a probe written in YAML and one POSTed as JSON can never mean different things.
It is a union discriminated by `type`; each type carries only the assertions that
make sense for it, and unknown keys are errors like everywhere else in the spec.

Secrets never live in the spec. HTTP header values that carry credentials come from
`headers_env` / `headers_file`; database and Redis passwords from `password_env` /
`password_file`. A DSN or URL with an inline password (or a `token=`-style query
parameter) is refused with a message naming the field to use instead, and the
message never repeats the secret: the spec file is usually committed to git, and a
validation error may end up in CI logs.

Cron expressions are checked with `cronsim`, the library the server evaluates them
with, so a schedule the spec accepts is one the server can run.
"""

from __future__ import annotations

import ipaddress
import re
import zoneinfo
from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from urllib.parse import urlsplit

from cronsim import CronSim, CronSimError
from pydantic import BaseModel, ConfigDict, Field, ValidationInfo, field_validator, model_validator

# Same rule as `models._NAME` (a test keeps them equal); repeated here because
# models.py imports this module, so importing back would be circular.
_NAME = re.compile(r"^[a-z][a-z0-9_-]{0,62}$")
_ENV_VAR = re.compile(r"^[A-Z_][A-Z0-9_]*$")
_HOSTNAME = re.compile(
    r"^(?=.{1,253}$)([A-Za-z0-9_]([A-Za-z0-9_-]{0,61}[A-Za-z0-9])?)(\.[A-Za-z0-9_-]{1,63})*\.?$"
)
# Header names whose values are credentials; the check is on the lower-cased name.
_SECRET_HEADER = re.compile(r"authorization|cookie|api[-_]?key|token|secret|passw|session|signature")
_SECRET_VALUE = re.compile(r"^\s*(bearer|basic|token|digest)\s+\S", re.I)
_SECRET_QUERY = re.compile(r"[?&](access_token|token|api_?key|key|secret|sig|signature|password)=", re.I)

PROBE_TYPES: tuple[str, ...] = ("http", "tcp", "dns", "tls", "postgres", "redis", "heartbeat")
HTTP_METHODS = Literal["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"]

MAX_INTERVAL_SECONDS = 7 * 86400


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


def _env_name(value: str, field: str) -> str:
    if not _ENV_VAR.match(value):
        raise ValueError(f"{field} must name an environment variable, e.g. STATUS_API_TOKEN")
    return value


def _has_inline_password(url: str) -> bool:
    try:
        parts = urlsplit(url)
    except ValueError:
        return False
    return parts.password is not None or bool(re.search(r"[?&]password=", parts.query, re.I))


def parse_host_port(target: str, default_port: int | None = None) -> tuple[str, int]:
    """Split `host:port` (or `[v6]:port`); the host alone is allowed when a default port exists."""
    text = target.strip()
    host, port_text = text, ""
    if text.startswith("["):
        end = text.find("]")
        if end == -1:
            raise ValueError(f"target {target!r}: an IPv6 address is written [::1]:443")
        host, rest = text[1:end], text[end + 1 :]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"target {target!r} must be host:port, e.g. [::1]:443")
            port_text = rest[1:]
    elif text.count(":") == 1:
        host, port_text = text.split(":")
    if not port_text:
        if default_port is None:
            raise ValueError(f"target {target!r} must be host:port, e.g. db.internal:5432")
        return _check_host(host, target), default_port
    if not port_text.isdigit() or not 1 <= int(port_text) <= 65535:
        raise ValueError(f"target {target!r}: the port must be a number from 1 to 65535")
    return _check_host(host, target), int(port_text)


def _check_host(host: str, target: str) -> str:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        if not _HOSTNAME.match(host):
            raise ValueError(f"target {target!r}: {host!r} is not a host name or IP address") from None
    return host


# --- common fields -------------------------------------------------------------------
class _ProbeBase(_Model):
    name: str = Field(description="Unique probe name: lowercase letters, digits, '-', '_' (1-63)")
    # Upper bounds keep every computed time (next run, lease expiry) inside a datetime.
    interval_seconds: int = Field(
        60, ge=1, le=MAX_INTERVAL_SECONDS, description="How often the probe runs (1 s to 7 days)"
    )
    timeout_seconds: float = Field(
        10, gt=0, description="Per-run limit; at most interval_seconds (default 10, or the interval)"
    )
    retries: int = Field(
        0,
        ge=0,
        le=100,
        description="Further consecutive failures before the probe is down (0: the first one)",
    )
    component: str = Field("", description="Status page component; defaults to the probe name")
    tags: list[str] = Field(default_factory=list)

    @model_validator(mode="before")
    @classmethod
    def _defaults(cls, data: Any) -> Any:
        # component defaults to the name; the timeout to 10 s, or the interval when shorter.
        if not isinstance(data, dict):
            return data
        out = dict(data)
        if not out.get("component") and isinstance(out.get("name"), str):
            out["component"] = out["name"]
        interval = out.get("interval_seconds")
        if "timeout_seconds" not in out and isinstance(interval, int) and 1 <= interval < 10:
            out["timeout_seconds"] = interval
        return out

    @field_validator("name")
    @classmethod
    def _name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(
                "probe names are 1-63 lowercase letters, digits, '-' and '_', starting with a letter,"
                " e.g. api-health"
            )
        return v

    @field_validator("timeout_seconds")
    @classmethod
    def _timeout_within_interval(cls, v: float, info: ValidationInfo) -> float:
        interval = info.data.get("interval_seconds")
        if isinstance(interval, int) and v > interval:
            raise ValueError(
                f"timeout_seconds ({v:g}) is longer than interval_seconds ({interval});"
                " write a timeout of at most the interval"
            )
        return v


class _PasswordRef(_Model):
    password_env: str | None = Field(None, description="Variable holding the password")
    password_file: str | None = Field(None, description="File holding the password")

    @model_validator(mode="after")
    def _one_password_source(self) -> _PasswordRef:
        if self.password_env and self.password_file:
            raise ValueError("give either password_env or password_file, not both")
        if self.password_env:
            _env_name(self.password_env, "password_env")
        return self


# --- per type ------------------------------------------------------------------------
class HttpProbe(_ProbeBase):
    """An HTTP(S) request and assertions on its answer."""

    type: Literal["http"]
    target: str = Field(description="http:// or https:// URL, without credentials")
    method: HTTP_METHODS = "GET"
    headers: dict[str, str] = Field(default_factory=dict, description="Plain header values, no secrets")
    headers_env: dict[str, str] = Field(default_factory=dict, description="Header -> environment variable")
    headers_file: dict[str, str] = Field(default_factory=dict, description="Header -> file holding the value")
    expected_status: list[int | str] = Field(
        default_factory=lambda: list[int | str](["200-399"]),
        description="Codes and ranges, e.g. [200, 204, '300-399']",
    )
    body_contains: str | None = None
    body_regex: str | None = None
    json_path_equals: dict[str, Any] = Field(
        default_factory=dict, description="JSONPath -> expected value, e.g. {'$.status': 'ok'}"
    )
    header_present: list[str] = Field(default_factory=list, description="Headers the answer must carry")
    max_latency_ms: float | None = Field(None, gt=0)
    tls_min_days: int | None = Field(None, ge=0, description="The certificate must be valid this long")
    ca_file: str | None = Field(None, description="PEM CA bundle to trust instead of the system one")
    follow_redirects: bool = True

    @field_validator("target")
    @classmethod
    def _url(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(
                f"target {v!r} must be an http:// or https:// URL, e.g. https://api.example.com/"
            )
        if _has_inline_password(v) or _SECRET_QUERY.search(v):
            raise ValueError(
                "this URL carries a credential; remove it and send it in a header with headers_env"
                " (e.g. headers_env: {Authorization: STATUS_TOKEN})"
            )
        return v

    @field_validator("headers")
    @classmethod
    def _no_inline_secrets(cls, v: dict[str, str]) -> dict[str, str]:
        for header, value in v.items():
            if _SECRET_HEADER.search(header.lower()) or _SECRET_VALUE.match(value):
                raise ValueError(
                    f"header {header!r} carries a credential; give it by reference:"
                    f" headers_env: {{{header}: VARIABLE_NAME}} or headers_file: {{{header}: /path}}"
                )
        return v

    @field_validator("headers_env")
    @classmethod
    def _env_names(cls, v: dict[str, str]) -> dict[str, str]:
        for header, var in v.items():
            _env_name(var, f"headers_env.{header}")
        return v

    @field_validator("header_present", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return [v] if isinstance(v, str) else v

    @field_validator("expected_status", mode="before")
    @classmethod
    def _scalar_status(cls, v: Any) -> Any:
        return [v] if isinstance(v, int | str) else v

    @field_validator("expected_status")
    @classmethod
    def _statuses(cls, v: list[int | str]) -> list[int | str]:
        if not v:
            raise ValueError("give at least one status code or range, e.g. [200] or ['200-399']")
        for item in v:
            status_ranges([item])
        return v

    @field_validator("body_regex")
    @classmethod
    def _regex(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                re.compile(v)
            except re.error as exc:
                raise ValueError(f"body_regex is not a valid regular expression ({exc})") from None
        return v

    @field_validator("json_path_equals")
    @classmethod
    def _paths(cls, v: dict[str, Any]) -> dict[str, Any]:
        for path in v:
            if not path.startswith("$"):
                raise ValueError(f"JSON path {path!r} must start with '$', e.g. $.status or $.checks[0].ok")
        return v

    @model_validator(mode="after")
    def _headers_once(self) -> HttpProbe:
        seen: dict[str, str] = {}
        for source in ("headers", "headers_env", "headers_file"):
            for header in getattr(self, source):
                key = header.lower()
                if key in seen:
                    raise ValueError(f"header {header!r} is given in both {seen[key]} and {source}; keep one")
                seen[key] = source
        return self

    def accepts_status(self, code: int) -> bool:
        return any(lo <= code <= hi for lo, hi in status_ranges(self.expected_status))


def status_ranges(items: list[int | str]) -> list[tuple[int, int]]:
    """`[200, '300-399']` as inclusive ranges; raises ValueError naming a bad entry."""
    out: list[tuple[int, int]] = []
    for item in items:
        text = str(item).strip()
        lo_text, _, hi_text = text.partition("-")
        if not lo_text.isdigit() or (hi_text and not hi_text.isdigit()):
            raise ValueError(f"status {item!r}: write a code such as 200 or a range such as '200-399'")
        lo, hi = int(lo_text), int(hi_text or lo_text)
        if not 100 <= lo <= hi <= 599:
            raise ValueError(f"status {item!r}: codes are 100-599 and a range goes from low to high")
        out.append((lo, hi))
    return out


class TcpProbe(_ProbeBase):
    """A TCP connection that opens."""

    type: Literal["tcp"]
    target: str = Field(description="host:port")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        parse_host_port(v)
        return v


class DnsProbe(_ProbeBase):
    """A host name that resolves (to an expected address, when given)."""

    type: Literal["dns"]
    target: str = Field(description="Host name to resolve")
    expected_address: str | None = Field(None, description="An address the name must resolve to")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if not _HOSTNAME.match(v):
            raise ValueError(f"target {v!r} must be a host name such as api.example.com (no scheme or port)")
        return v

    @field_validator("expected_address")
    @classmethod
    def _address(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                ipaddress.ip_address(v)
            except ValueError:
                raise ValueError(f"expected_address {v!r} must be an IP address such as 10.0.0.5") from None
        return v


class TlsProbe(_ProbeBase):
    """A TLS handshake that verifies, with a certificate valid for at least `min_days`."""

    type: Literal["tls"]
    target: str = Field(description="host:port (the port defaults to 443)")
    min_days: int = Field(14, ge=0)
    ca_file: str | None = Field(None, description="PEM CA bundle to trust instead of the system one")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        parse_host_port(v, default_port=443)
        return v


class PostgresProbe(_ProbeBase, _PasswordRef):
    """`SELECT 1` on a fresh connection."""

    type: Literal["postgres"]
    target: str = Field(description="postgresql://user@host:5432/db, password by password_env/_file")

    @field_validator("target")
    @classmethod
    def _dsn(cls, v: str) -> str:
        parts = urlsplit(v)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname:
            raise ValueError("target must be a URL such as postgresql://app@db:5432/app")
        if _has_inline_password(v):
            raise ValueError("this DSN carries a password; remove it and give password_env or password_file")
        return v


class RedisProbe(_ProbeBase, _PasswordRef):
    """`PING` on a fresh connection."""

    type: Literal["redis"]
    target: str = Field(description="redis://host:6379/0, rediss://... or host:port")

    @field_validator("target")
    @classmethod
    def _url(cls, v: str) -> str:
        if "://" not in v:
            parse_host_port(v)
            return v
        parts = urlsplit(v)
        if parts.scheme not in ("redis", "rediss") or not parts.hostname:
            raise ValueError("target must be redis://host:6379/0, rediss://... or host:port")
        if _has_inline_password(v):
            raise ValueError("this URL carries a password; remove it and give password_env or password_file")
        return v

    def url(self) -> str:
        return self.target if "://" in self.target else f"redis://{self.target}"


class HeartbeatProbe(_ProbeBase):
    """A job that pings the server on a schedule: a period, or cron + time zone; then a grace."""

    type: Literal["heartbeat"]
    period_seconds: int | None = Field(
        None, ge=1, le=MAX_INTERVAL_SECONDS * 5, description="Expected time between pings"
    )
    cron: str | None = Field(None, description="Expected schedule, e.g. '0 2 * * *'")
    timezone: str = Field("UTC", description="IANA time zone of the cron expression, e.g. Europe/Berlin")
    grace_seconds: int = Field(
        300, ge=0, le=MAX_INTERVAL_SECONDS, description="How late a ping may be before the probe is down"
    )

    @field_validator("cron")
    @classmethod
    def _cron(cls, v: str | None) -> str | None:
        if v is not None:
            try:
                CronSim(v, datetime(2000, 1, 1, tzinfo=UTC))
            except CronSimError as exc:
                raise ValueError(f"cron {v!r} is not a cron expression ({exc}); e.g. '0 2 * * *'") from None
        return v

    @field_validator("timezone")
    @classmethod
    def _zone(cls, v: str) -> str:
        try:
            zoneinfo.ZoneInfo(v)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"timezone {v!r} is not an IANA time zone such as Europe/Berlin or UTC"
            ) from None
        return v

    @model_validator(mode="after")
    def _one_schedule(self) -> HeartbeatProbe:
        if (self.period_seconds is None) == (self.cron is None):
            raise ValueError("a heartbeat needs exactly one of period_seconds or cron (with timezone)")
        # The default "UTC" is what a dumped period probe carries back: only another
        # zone is a mistake worth refusing.
        if self.period_seconds is not None and self.timezone != "UTC":
            raise ValueError("timezone applies to cron schedules only; remove it or use cron")
        return self


Probe = Annotated[
    HttpProbe | TcpProbe | DnsProbe | TlsProbe | PostgresProbe | RedisProbe | HeartbeatProbe,
    Field(discriminator="type"),
]


class ConnectivityCheck(_Model):
    """A target that is up whenever the server itself has a network.

    When a probe fails and this check fails too, the result is "no data" rather than
    "down": the outage is the server's, not the service's. Without this section no
    check is made, so a server without Internet access works as is.
    """

    target: str = Field(description="http(s):// URL (any answer counts) or host:port (TCP connect)")
    timeout_seconds: float = Field(5, gt=0, le=60)
    cache_seconds: float = Field(10, ge=0, description="Reuse a verdict this long across failing probes")

    @field_validator("target")
    @classmethod
    def _target(cls, v: str) -> str:
        if "://" in v:
            parts = urlsplit(v)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError("target must be an http(s):// URL or host:port, e.g. 1.1.1.1:53")
        else:
            parse_host_port(v)
        return v


def unique_probe_names(probes: list[Any]) -> None:
    """Raise ValueError naming repeated probe names (the store keys probes by name)."""
    names = [p.name for p in probes]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise ValueError(f"probe names must be unique; repeated: {', '.join(dupes)}")


PROBES_EXAMPLE: list[dict[str, Any]] = [
    {
        "name": "api-health",
        "type": "http",
        "target": "https://api.example.com/health/ready",
        "interval_seconds": 30,
        "timeout_seconds": 5,
        "retries": 1,
        "component": "API",
        "headers_env": {"Authorization": "STATUS_PROBE_TOKEN"},
        "expected_status": [200],
        "json_path_equals": {"$.status": "ok"},
        "max_latency_ms": 800,
        "tls_min_days": 14,
    },
    {
        "name": "db",
        "type": "postgres",
        "target": "postgresql://app@db:5432/app",
        "password_env": "PGPASSWORD",
    },
    {"name": "nightly-backup", "type": "heartbeat", "cron": "0 2 * * *", "timezone": "Europe/Berlin"},
]
