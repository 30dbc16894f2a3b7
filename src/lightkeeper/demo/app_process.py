"""Run the example app under a real uvicorn child process, and always stop it.

The parent binds the listening socket itself and hands it to uvicorn (`--fd`): a
busy port is reported before anything starts, `--port 0` needs no guess-and-retry,
and no other process can grab the port between choosing and binding it.
"""

from __future__ import annotations

import contextlib
import errno
import importlib.util
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

import httpx

import lightkeeper

APP_REF = "examples.saas_app.main:app"
READY_PATH = "/health/ready"
LOG_TAIL_LINES = 40
_REQUIRED = ("fastapi", "sqlalchemy", "uvicorn")


class DemoError(RuntimeError):
    """Something the person running the demo can fix; the message says what to do."""


@dataclass(frozen=True)
class RunningApp:
    base_url: str
    port: int
    log_path: Path
    process: subprocess.Popen[bytes]
    # Strings to mask in anything shown from the app's log (the database password).
    secrets: tuple[str, ...] = ()


def check_requirements() -> None:
    missing = [module for module in _REQUIRED if importlib.util.find_spec(module) is None]
    if missing:
        raise DemoError(
            f"the demo needs {', '.join(missing)}; install it with: "
            "pip install 'lightkeeper[fastapi,sqlalchemy]'"
        )


def find_example_root() -> Path:
    """The directory holding `examples/saas_app` (the example ships with the source tree)."""
    package_dir = Path(lightkeeper.__file__).resolve().parent
    for candidate in (package_dir.parents[1], Path.cwd()):
        if (candidate / "examples" / "saas_app" / "main.py").is_file():
            return candidate
    raise DemoError(
        "the example app (examples/saas_app) is not next to this lightkeeper installation; "
        "run the demo from a clone of the repository after `pip install -e '.[all]'`"
    )


def redact_url(url: str) -> str:
    """The URL with its password replaced, for messages and summaries."""
    parts = urlsplit(url)
    if not parts.password:
        return url
    netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
    return parts._replace(netloc=netloc).geturl()


def log_tail(path: Path, *, secrets: tuple[str, ...] = (), lines: int = LOG_TAIL_LINES) -> str:
    """The end of the app's log, JSON lines made readable, any known secret masked."""
    try:
        raw = path.read_text(errors="replace").splitlines()[-lines:]
    except OSError:
        return "(no log was written)"
    readable = [text for line in raw for text in _readable(line).splitlines()]
    tail = "\n".join(readable[-lines:]) or "(the log is empty)"
    for secret in secrets:
        if secret:
            tail = tail.replace(secret, "***")
    return tail


def _readable(line: str) -> str:
    # The app logs JSON (one event per line, tracebacks inside); a person wants text.
    try:
        event = json.loads(line)
    except ValueError:
        return line
    if not isinstance(event, dict) or "event" not in event:
        return line
    text = f"{event.get('level', 'info')}: {event['event']}"
    exception = event.get("exception")
    return f"{text}\n{exception.rstrip()}" if isinstance(exception, str) else text


def _listen(port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind(("127.0.0.1", port))
        sock.listen(1024)
    except OSError as exc:
        sock.close()
        if exc.errno == errno.EADDRINUSE:
            raise DemoError(
                f"port {port} on 127.0.0.1 is already in use; stop what is using it, "
                "or pass another --port (--port 0 picks a free one)"
            ) from None
        if exc.errno == errno.EACCES:
            raise DemoError(
                f"not allowed to listen on port {port}; use a port above 1023 or --port 0"
            ) from None
        raise DemoError(f"cannot listen on 127.0.0.1:{port}: {exc.strerror}") from None
    sock.set_inheritable(True)
    return sock


@contextlib.contextmanager
def example_app(
    *,
    port: int,
    database_url: str,
    workdir: Path,
    ready_timeout: float = 60.0,
    extra_env: Mapping[str, str] | None = None,
) -> Iterator[RunningApp]:
    """Start the example app, wait until /health/ready answers 200, stop it on exit."""
    check_requirements()
    root = find_example_root()
    password = urlsplit(database_url).password or ""
    secrets = (password, unquote(password))
    sock = _listen(port)
    port = int(sock.getsockname()[1])
    log_path = workdir / "saas-app.log"
    env = {
        **os.environ,
        "SAAS_DATABASE_URL": database_url,
        "SAAS_ENVIRONMENT": os.environ.get("SAAS_ENVIRONMENT", "demo"),
        # The demo's own report reads the per-check detail; a real deployment keeps it
        # behind the metrics token (the default).
        "LIGHTKEEPER_HEALTH_DETAILS": os.environ.get("LIGHTKEEPER_HEALTH_DETAILS", "always"),
        "PYTHONPATH": os.pathsep.join(filter(None, [str(root), os.environ.get("PYTHONPATH")])),
        **(extra_env or {}),
    }
    command = [sys.executable, "-m", "uvicorn", APP_REF, "--fd", str(sock.fileno()), "--no-access-log"]
    with log_path.open("wb") as log, contextlib.closing(sock):
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=env, pass_fds=(sock.fileno(),),
            preexec_fn=exit_with_parent,
        )  # fmt: skip
    app = RunningApp(f"http://127.0.0.1:{port}", port, log_path, process, secrets)
    try:
        _wait_ready(app, ready_timeout)
        yield app
    finally:
        stop(process)


def exit_with_parent() -> None:
    """In the child before exec: on Linux, get SIGTERM if the demo dies without cleaning up
    (SIGKILL, OOM killer), so no orphaned server keeps the port."""
    if sys.platform.startswith("linux"):
        import ctypes

        pr_set_pdeathsig = 1
        ctypes.CDLL(None, use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)


def _wait_ready(app: RunningApp, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    last = "no answer yet"
    with httpx.Client(base_url=app.base_url, timeout=2.0) as client:
        while time.monotonic() < deadline:
            code = app.process.poll()
            if code is not None:
                raise DemoError(
                    f"the example app exited (code {code}) before it was ready. "
                    f"Last lines of its log:\n{log_tail(app.log_path, secrets=app.secrets)}"
                )
            try:
                response = client.get(READY_PATH)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if response.status_code == 200:
                    return
                last = f"HTTP {response.status_code}: {response.text[:500]}"
            time.sleep(0.1)
    raise DemoError(
        f"the example app was not ready after {timeout:.0f} s (last {READY_PATH} answer: {last}). "
        f"Last lines of its log:\n{log_tail(app.log_path, secrets=app.secrets)}"
    )


def stop(process: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """SIGTERM (uvicorn drains and runs shutdown), then SIGKILL if it does not exit in time."""
    if process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
