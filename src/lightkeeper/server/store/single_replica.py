"""SQLite mode refuses a second server process on the same database file.

Two processes would each schedule every probe (SQLite has no `SKIP LOCKED` to share
them), doubling checks, incidents and notifications. The guard is an exclusive `flock`
on a lock file next to the database: the kernel drops it when the holder exits in any
way, `kill -9` included, so a crashed server never blocks its own restart (a heartbeat
row would have to wait out a timeout and guess whether its owner is alive).
"""

from __future__ import annotations

import fcntl
import os
from pathlib import Path
from types import TracebackType

from sqlalchemy import Engine


class StoreInUse(RuntimeError):
    """Another live process already serves this SQLite file."""


class ReplicaLock:
    """Held for the life of the server process; `release()` (or exit) lets another start."""

    def __init__(self, path: Path | None, fd: int | None) -> None:
        self.path = path
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            os.close(self._fd)  # closing the only descriptor drops the flock
            self._fd = None

    def __enter__(self) -> ReplicaLock:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, value: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.release()


def lock_path(engine: Engine) -> Path | None:
    """Where the lock lives for this engine, or None when no guard applies."""
    url = engine.url
    if url.get_backend_name() != "sqlite" or url.database in (None, "", ":memory:"):
        return None
    return Path(url.database).resolve().with_name(Path(url.database).name + ".lock")


def claim_single_replica(engine: Engine) -> ReplicaLock:
    """Take the lock for a SQLite file, or raise `StoreInUse` saying what to do.

    PostgreSQL (several replicas share probes through leases) and in-memory SQLite get a
    lock that holds nothing.
    """
    path = lock_path(engine)
    if path is None:
        return ReplicaLock(None, None)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = _read_holder(fd)
        os.close(fd)
        raise StoreInUse(
            f"another lightkeeper server{holder} is already using the SQLite database "
            f"{path.with_suffix('')}; "
            "SQLite mode runs one replica. Stop the other process, point this one at another "
            "file with --db, or use PostgreSQL (--db postgresql://…) to run several replicas."
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, str(os.getpid()).encode())
    return ReplicaLock(path, fd)


def _read_holder(fd: int) -> str:
    try:
        pid = os.pread(fd, 32, 0).decode().strip()
    except OSError:
        return ""
    return f" (pid {pid})" if pid.isdigit() else ""
