"""`lightkeeper deploy start|finish`: report a deployment to the lightkeeper server from CI.

A CI step must fail clearly, never with a traceback, and never hang the pipeline: bad
arguments and an unreachable or refusing server exit with status 2 and one line on
standard error, after a bounded timeout. The token is read from an environment
variable (named by `--token-env`) so it never appears in the job's command line.
"""

from __future__ import annotations

import os
from datetime import datetime
from typing import Annotated, Any

import typer

DEFAULT_SERVER = "http://127.0.0.1:8787"
SERVER_ENV = "LIGHTKEEPER_SERVER_URL"
TOKEN_ENV = "LIGHTKEEPER_ADMIN_TOKEN"  # noqa: S105 - the variable's name, not a token
TIMEOUT_SECONDS = 10.0
USAGE_ERROR = 2

deploy_app = typer.Typer(
    help="Report deployments to the lightkeeper server (deployment metrics, DORA numbers).",
    no_args_is_help=True,
)

Env = Annotated[str, typer.Option("--env", help="Environment deployed to, e.g. prod.")]
Component = Annotated[str, typer.Option("--component", help="What is deployed, e.g. api.")]
Version = Annotated[str, typer.Option("--version", help="The version deployed, e.g. 1.4.2 or a commit SHA.")]
CommitTime = Annotated[
    str | None,
    typer.Option(
        "--commit-time", help="ISO-8601 time of the deployed commit, with offset (git log -1 --format=%cI)."
    ),
]
Server = Annotated[
    str | None, typer.Option("--server", help=f"Server URL; default ${SERVER_ENV} or {DEFAULT_SERVER}.")
]
TokenEnv = Annotated[
    str, typer.Option("--token-env", help="Name of the environment variable holding the admin token.")
]


def _fail(message: str) -> typer.Exit:
    typer.echo(f"error: {message}", err=True)
    return typer.Exit(USAGE_ERROR)


def _commit_time(text: str | None) -> str | None:
    if text is None:
        return None
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise _fail(f"--commit-time {text!r} is not an ISO-8601 time") from None
    if moment.tzinfo is None:
        raise _fail("--commit-time needs a UTC offset, e.g. 2026-12-01T10:00:00Z")
    return moment.isoformat()


def _detail(body: Any) -> str:
    detail = body.get("detail") if isinstance(body, dict) else None
    if isinstance(detail, list):
        return "; ".join(f"{'.'.join(map(str, e.get('loc', [])[1:]))}: {e.get('msg', '')}" for e in detail)
    return str(detail or body)


def _send(server: str | None, token_env: str, payload: dict[str, Any]) -> None:
    import httpx

    token = os.environ.get(token_env)
    if not token:
        raise _fail(f"set the admin token in ${token_env} (or name another variable with --token-env)")
    base = (server or os.environ.get(SERVER_ENV) or DEFAULT_SERVER).rstrip("/")
    if not base.startswith(("http://", "https://")):
        raise _fail(f"--server must be an http(s) URL, got {base!r}")
    try:
        response = httpx.post(
            f"{base}/api/deployments",
            json=payload,
            headers={"Authorization": f"Bearer {token}"},
            timeout=TIMEOUT_SECONDS,
        )
    except httpx.HTTPError as exc:
        raise _fail(f"cannot reach the lightkeeper server at {base}: {type(exc).__name__}") from None
    try:
        body = response.json()
    except ValueError:
        body = response.text[:200]
    if response.status_code >= 400:
        raise _fail(f"the server refused the report ({response.status_code}): {_detail(body)}")
    what = "recorded" if body.get("recorded") else "already recorded"
    typer.echo(f"{payload['event']} of {body['id']} {what} (status {body['status']})")


@deploy_app.command("start")
def start(
    env: Env,
    component: Component,
    version: Version,
    commit_time: CommitTime = None,
    server: Server = None,
    token_env: TokenEnv = TOKEN_ENV,
) -> None:
    """Report that a deployment started (run it before deploying)."""
    payload = {"event": "start", "env": env, "component": component, "version": version}
    _send(server, token_env, {**payload, "commit_time": _commit_time(commit_time)})


@deploy_app.command("finish")
def finish(
    env: Env,
    component: Component,
    version: Version,
    status: Annotated[
        str, typer.Option("--status", help="success | failure | rolled_back (e.g. the CI job's status).")
    ] = "success",
    commit_time: CommitTime = None,
    server: Server = None,
    token_env: TokenEnv = TOKEN_ENV,
) -> None:
    """Report that a deployment finished, with its outcome."""
    if status not in ("success", "failure", "rolled_back"):
        raise _fail(f"--status must be success, failure or rolled_back, got {status!r}")
    payload = {"event": "finish", "env": env, "component": component, "version": version, "status": status}
    _send(server, token_env, {**payload, "commit_time": _commit_time(commit_time)})


def register(app: typer.Typer) -> None:
    """Add `lightkeeper deploy` to the root command."""
    app.add_typer(deploy_app, name="deploy")
