"""Multi-process (gunicorn, `uvicorn --workers`) metric aggregation without manual setup.

prometheus-client can aggregate workers through per-process mmap files, but leaves the
operator to export `PROMETHEUS_MULTIPROC_DIR` before start, empty it between runs, call
`mark_process_dead` from a gunicorn hook, and live with dead workers' files piling up
until scrapes take seconds. This module does all of that from inside the worker:

- it recognises a worker of a multi-process server and picks a private directory shared
  by the workers of that server (named after the master's pid and start time, so a
  restarted server never reads an older run's files), removes directories of servers
  that are gone, and switches prometheus-client to file-backed values at runtime;
- when a worker starts, and before scrapes (at most every `COMPACTION_INTERVAL_SECONDS`),
  it folds the files of dead workers into one archive file per metric type, with
  prometheus-client's own `MmapedDict`, so the number of files tracks live workers, not
  restarts.

Readers take a shared `flock`, compaction an exclusive one, so a scrape never sees a
dead worker's counts twice (archive and file) or not at all. Compaction is restartable:
a worker killed half-way (gunicorn's timeout SIGKILL) leaves a state the next reader
completes before it reads. POSIX only (fcntl), like gunicorn.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import re
import shutil
import stat
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Collection, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from prometheus_client import REGISTRY, CollectorRegistry, values
from prometheus_client.metrics_core import Metric
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.multiprocess import MultiProcessCollector

__all__ = [
    "COMPACTION_BATCH_FILES",
    "COMPACTION_INTERVAL_SECONDS",
    "activate_if_needed",
    "active_directory",
    "child_exit",
    "collect",
    "compact",
    "exposition_registry",
    "mark_worker_dead",
    "server_directory",
]

COMPACTION_INTERVAL_SECONDS = 5.0
# Files merged per scrape-triggered compaction. It bounds how long other scrapes wait for
# the lock when a directory inherits a large backlog (bench/multiprocess_scrape.py: about
# 1.3 s per 1000 files of a realistic service on a busy 2-core machine); what is left
# is still read as it is and merged by the following scrapes.
COMPACTION_BATCH_FILES = 1000
LOCK_TIMEOUT_SECONDS = 10.0
DIRECTORY_PREFIX = "lightkeeper-metrics-"
ENV_DIRECTORY = "LIGHTKEEPER_MULTIPROCESS_DIR"

_ALIVE_FILE = "lightkeeper.alive"  # shared-locked by every process of the server while it lives
_LOCK_FILE = "lightkeeper.lock"  # shared while reading, exclusive while compacting
_JOURNAL_FILE = "lightkeeper.journal"  # commit record of an interrupted compaction
_DEAD_SUFFIX = ".dead"  # a dead worker's file taken out of the live set, not yet merged
_NEW_SUFFIX = ".new"  # an archive being written
_ARCHIVE_ID = "archive"  # stands where prometheus-client puts the pid in a file name
_FILE_TYPES = frozenset({"counter", "histogram", "summary", "gauge"})
_DIRECTORY_NAME = re.compile(re.escape(DIRECTORY_PREFIX) + r"(\d+)(?:-(\d+))?")

log = logging.getLogger("lightkeeper.multiprocess")


@dataclass
class _State:
    pid: int
    directory: Path | None
    registry: CollectorRegistry | None = None


_lock = threading.Lock()
_state: _State | None = None
_alive_fds: list[int] = []  # kept open (and shared-locked) for the life of the process
_last_compaction: dict[Path, float] = {}


# --- Activation ------------------------------------------------------------------------


def activate_if_needed(directory: str | None = None) -> bool:
    """Switch prometheus-client to shared files when running as one of several workers.

    Call before the first metric object is created: prometheus-client picks a value
    class per child at creation. The decision is made once per process (a worker forked
    from an activated master inherits it); `directory` (the `multiprocess_dir` setting)
    must then agree with it, because metrics already created cannot move.
    """
    state = _state
    if directory is None and state is not None and state.pid == os.getpid():
        return state.directory is not None
    with _lock:
        return _activate(directory)


def active_directory() -> Path | None:
    """Where this process's metric files live, or None in single-process mode."""
    return _state.directory if _state is not None else None


def _activate(requested: str | None) -> bool:
    global _state
    pid = os.getpid()
    if _state is not None and (_state.directory is not None or _state.pid == pid):
        if requested is not None and _resolved(requested) != _state.directory:
            current = str(_state.directory) if _state.directory else "single-process mode"
            raise RuntimeError(
                f"lightkeeper metrics are already in use in this process ({current}); set "
                f"multiprocess_dir through the {ENV_DIRECTORY} environment variable, or call "
                "lightkeeper.instrument() before any other lightkeeper metric is used"
            )
        _state.pid = pid
        return _state.directory is not None
    chosen = _choose_directory(requested)
    if chosen is None:
        _state = _State(pid, None)
        return False
    target, explicit = chosen
    if explicit:
        target.mkdir(mode=0o700, parents=True, exist_ok=True)
    else:
        _remove_stale_directories(target.parent, keep=target)
        _alive_fds.append(_join(target))
    _compact_at_start(target)
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(target)
    if not getattr(values.ValueClass, "_multiprocess", False):
        # The default process identifier is os.getpid, checked on every write: values
        # created in a --preload master reopen their files under the worker's pid.
        values.ValueClass = _multi_process_value()
    _state = _State(pid, target)
    return True


def _compact_at_start(directory: Path) -> None:
    """A worker replacing a dead one folds its predecessor's files in right away."""
    try:
        compact(directory, limit=COMPACTION_BATCH_FILES)
    except Exception:  # never stop a worker from booting; scrapes retry
        log.warning("could not compact the metric files in %s", directory, exc_info=True)


def _choose_directory(requested: str | None) -> tuple[Path, bool] | None:
    """(directory, configured by the user) or None when this process works alone."""
    if os.name != "posix":
        return None  # the locks need fcntl; gunicorn does not run elsewhere either
    ours = requested or os.environ.get(ENV_DIRECTORY)
    theirs = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if ours and theirs and _resolved(ours) != _resolved(theirs):
        raise RuntimeError(
            f"multiprocess_dir ({ours}) and PROMETHEUS_MULTIPROC_DIR ({theirs}) name different "
            "directories; set only one of them"
        )
    if ours or theirs:
        return _resolved(str(ours or theirs)), True
    master = _gunicorn_master_pid() or _uvicorn_master_pid()
    if master is None:
        return None
    return server_directory(master), False


def _resolved(path: str) -> Path:
    return Path(path).expanduser().resolve()


def _gunicorn_master_pid() -> int | None:
    """The arbiter's pid when this process is a gunicorn arbiter or worker."""
    arbiter = sys.modules.get("gunicorn.arbiter")
    if arbiter is None or not os.environ.get("SERVER_SOFTWARE", "").startswith("gunicorn/"):
        return None
    import signal

    # Every gunicorn worker class installs a SIGUSR1 handler bound to itself (log
    # reopening) before it loads the app; the arbiter binds its own once started.
    owner = getattr(signal.getsignal(signal.SIGUSR1), "__self__", None)
    base = sys.modules.get("gunicorn.workers.base")
    if base is not None and isinstance(owner, base.Worker):
        return int(owner.ppid)
    if isinstance(owner, arbiter.Arbiter):
        return os.getpid()
    # Before its signal handlers: the arbiter loading the app for --preload.
    return os.getpid() if _arbiter_is_on_stack(str(arbiter.__file__)) else os.getppid()


def _arbiter_is_on_stack(arbiter_file: str) -> bool:
    frame: Any = sys._getframe(1)
    seen = False
    while frame is not None:
        if frame.f_code.co_filename == arbiter_file:
            if frame.f_code.co_name == "spawn_worker":
                return False  # a freshly forked worker
            seen = True
        frame = frame.f_back
    return seen


def _uvicorn_master_pid() -> int | None:
    """The supervisor's pid when uvicorn started this process (`--workers`, `--reload`)."""
    if "uvicorn" not in sys.modules:
        return None
    import multiprocessing

    parent = multiprocessing.parent_process()
    return parent.pid if parent is not None else None


# --- Directories -----------------------------------------------------------------------


def server_directory(master_pid: int) -> Path:
    """The directory every worker of the server whose master is `master_pid` agrees on.

    The master's start time (Linux) is part of the name: a container restarted with the
    same pids gets a fresh directory instead of the previous run's files.
    """
    start = _start_ticks(master_pid)
    suffix = f"{master_pid}-{start}" if start else str(master_pid)
    return Path(tempfile.gettempdir()) / f"{DIRECTORY_PREFIX}{suffix}"


def _start_ticks(pid: int) -> str | None:
    try:
        raw = Path(f"/proc/{pid}/stat").read_bytes()
    except OSError:
        return None
    fields = raw[raw.rindex(b")") + 2 :].split()  # the command name may hold spaces
    return fields[19].decode() if len(fields) > 19 else None  # field 22: starttime


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _join(directory: Path) -> int:
    """Create or enter `directory` and hold its alive-lock (shared) for life."""
    for _ in range(5):
        with contextlib.suppress(FileExistsError):
            directory.mkdir(mode=0o700)
        _check_private(directory)
        fd = os.open(directory / _ALIVE_FILE, os.O_RDWR | os.O_CREAT, 0o600)
        _flock_fd(fd, exclusive=False, what=str(directory))
        try:
            still_there = (directory / _ALIVE_FILE).stat().st_ino == os.fstat(fd).st_ino
        except FileNotFoundError:
            still_there = False
        if still_there:
            return fd
        os.close(fd)  # removed as stale while we waited: start again
    raise RuntimeError(f"could not set up the metrics directory {directory}")


def _check_private(directory: Path) -> None:
    info = os.lstat(directory)
    if stat.S_ISLNK(info.st_mode) or not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        raise RuntimeError(
            f"{directory} exists but is not a directory owned by this user (uid {os.getuid()}); "
            f"remove it or set {ENV_DIRECTORY} to a directory of your own"
        )
    if stat.S_IMODE(info.st_mode) & 0o077:
        directory.chmod(0o700)


def _remove_stale_directories(root: Path, keep: Path) -> list[Path]:
    """Remove directories of servers that are gone; never one a live process still holds."""
    removed = []
    for path in sorted(root.glob(DIRECTORY_PREFIX + "*")):
        match = _DIRECTORY_NAME.fullmatch(path.name)
        if match is None or path == keep:
            continue
        pid, start = int(match[1]), match[2]
        if _pid_alive(pid) and (start is None or _start_ticks(pid) == start):
            continue
        if _remove_if_unused(path):
            removed.append(path)
    return removed


def _remove_if_unused(path: Path) -> bool:
    import fcntl

    try:
        info = os.lstat(path)
    except FileNotFoundError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != os.getuid():
        return False
    try:
        fd = os.open(path / _ALIVE_FILE, os.O_RDWR)
    except FileNotFoundError:
        fd = -1
    except OSError:
        return False
    try:
        if fd >= 0:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                return False  # a worker of that server is still running (orphaned or daemonised)
        shutil.rmtree(path, ignore_errors=True)
        return True
    finally:
        if fd >= 0:
            os.close(fd)


# --- Locks -----------------------------------------------------------------------------


def _flock_fd(fd: int, *, exclusive: bool, what: str) -> None:
    import fcntl

    timeout = LOCK_TIMEOUT_SECONDS
    mode = (fcntl.LOCK_EX if exclusive else fcntl.LOCK_SH) | fcntl.LOCK_NB
    deadline = time.monotonic() + timeout
    delay = 0.001
    while True:
        try:
            fcntl.flock(fd, mode)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise TimeoutError(f"metrics directory {what} stayed locked for {timeout:g}s") from None
            time.sleep(delay)
            delay = min(delay * 2, 0.02)


@contextlib.contextmanager
def _locked(directory: Path, *, exclusive: bool) -> Iterator[None]:
    # A descriptor per use: flock is per open file, so threads of one process exclude
    # each other exactly like separate processes do.
    fd = os.open(directory / _LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o600)
    try:
        _flock_fd(fd, exclusive=exclusive, what=str(directory))
        yield
    finally:
        os.close(fd)


# --- Exposition ------------------------------------------------------------------------


class _DirectoryCollector:
    """Every worker's values from the shared directory, compacting dead workers first."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory

    def describe(self) -> list[Metric]:
        return []  # families are only known by reading the files

    def collect(self) -> Iterable[Metric]:
        return collect(self.directory)


def exposition_registry() -> CollectorRegistry:
    """The registry `/metrics` should render: every worker's values in multi-process mode.

    In multi-process mode this holds only the file collector: prometheus-client's
    process, platform and GC collectors describe the one process answering the scrape
    and cannot be aggregated, so they are left out (as prometheus-client documents).
    """
    if not activate_if_needed():
        return REGISTRY
    state = _state
    assert state is not None and state.directory is not None
    if state.registry is None:
        registry = CollectorRegistry(auto_describe=False)
        registry.register(_DirectoryCollector(state.directory))
        state.registry = registry
    return state.registry


def collect(directory: Path) -> list[Metric]:
    """Aggregate the directory's files; compact dead workers first when it is due."""
    _compact_if_due(directory)
    with _locked(directory, exclusive=False):
        return list(_merge(_files_with_data(directory)))


def _files_with_data(directory: Path) -> list[str]:
    """The `.db` files, minus empty ones.

    prometheus-client creates a file before sizing it, and its reader fails on the empty
    file, which a worker killed at that moment leaves behind for good
    (prometheus/client_python#1199). An empty file holds no values: skipping it is exact.
    """
    found = []
    for entry in os.scandir(directory):
        if entry.name.endswith(".db"):
            with contextlib.suppress(FileNotFoundError):  # a live gauge file removed meanwhile
                if entry.stat().st_size > 0:
                    found.append(entry.path)
    return sorted(found)


def _compact_if_due(directory: Path) -> None:
    names = _names(directory)
    interrupted = any(n == _JOURNAL_FILE or n.endswith((_DEAD_SUFFIX, _NEW_SUFFIX)) for n in names)
    now = time.monotonic()
    due = now - _last_compaction.get(directory, -COMPACTION_INTERVAL_SECONDS) >= COMPACTION_INTERVAL_SECONDS
    if due:
        _last_compaction[directory] = now
    if not interrupted and not (due and any(_is_dead(n, ()) for n in names)):
        return
    compact(directory, limit=COMPACTION_BATCH_FILES)
    if any(_is_dead(n, ()) for n in _names(directory)):
        _last_compaction.pop(directory, None)  # a backlog: continue at the next scrape


# --- prometheus-client's file format, used through its own code (untyped upstream) ------


def _multi_process_value() -> Any:
    return values.MultiProcessValue()  # type: ignore[no-untyped-call]


def _merge(files: list[str]) -> Iterable[Metric]:
    merged: Iterable[Metric] = MultiProcessCollector.merge(files, accumulate=True)  # type: ignore[no-untyped-call]
    return merged


def _read_file(path: Path) -> Iterator[tuple[str, float, float, int]]:
    found: Iterator[tuple[str, float, float, int]] = MmapedDict.read_all_values_from_file(str(path))  # type: ignore[no-untyped-call]
    return found


def _write_file(path: Path, entries: list[tuple[str, float, float]]) -> None:
    out: Any = MmapedDict(str(path))  # type: ignore[no-untyped-call]
    try:
        for key, value, timestamp in entries:
            out.write_value(key, value, timestamp)
    finally:
        out.close()


def _names(directory: Path) -> list[str]:
    return [entry.name for entry in os.scandir(directory)]


# --- Compaction ------------------------------------------------------------------------

Combine = Callable[[tuple[float, float], tuple[float, float]], tuple[float, float]]


def _add(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a[0] + b[0], 0.0


def _max(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[0] >= b[0] else b


def _min(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[0] <= b[0] else b


def _latest(a: tuple[float, float], b: tuple[float, float]) -> tuple[float, float]:
    return a if a[1] >= b[1] else b


# How a dead worker's values join the archive, by file prefix. Counters, histogram
# buckets/sum/count, summaries and `sum` gauges add up (the total over all processes is
# what is exposed, so it is kept); `max`/`min`/`mostrecent` gauges keep the winner. Gauges
# whose value means "this process, now" (`live*`, and `all`, which is labelled by pid)
# are deleted: a process that no longer exists has no current value.
_COMBINE: dict[str, Combine] = {
    "counter": _add,
    "histogram": _add,
    "summary": _add,
    "gauge_sum": _add,
    "gauge_max": _max,
    "gauge_min": _min,
    "gauge_mostrecent": _latest,
}


def _parse(name: str) -> tuple[str, int] | None:
    """(prefix, pid) of a prometheus-client file `<prefix>_<pid>.db`, None for anything else."""
    if not name.endswith(".db"):
        return None
    prefix, _, ident = name[:-3].rpartition("_")
    if not ident.isdigit() or prefix.split("_")[0] not in _FILE_TYPES:
        return None
    return prefix, int(ident)


def _is_dead(name: str, forced: Collection[int]) -> bool:
    parsed = _parse(name)
    return parsed is not None and (parsed[1] in forced or not _pid_alive(parsed[1]))


def compact(
    directory: str | os.PathLike[str], *, dead_pids: Collection[int] = (), limit: int | None = None
) -> int:
    """Fold the files of dead workers into the archive files; returns how many were removed.

    A pid counts as dead when no process has it, or when it is in `dead_pids` (a pid the
    caller knows has exited, e.g. gunicorn's `child_exit`). Files of live processes and
    files this module does not recognise are never touched. `limit` caps how many files
    are merged in this call, and so how long readers wait for it; the rest stay readable
    as they are until a later call.
    """
    path = Path(directory)
    with _locked(path, exclusive=True):
        _finish_interrupted(path)
        removed = 0
        taken = sum(n.endswith(_DEAD_SUFFIX) for n in _names(path))  # left by an interrupted run
        for name in sorted(_names(path)):
            if not _is_dead(name, dead_pids):
                continue
            prefix = name[:-3].rpartition("_")[0]
            if prefix in _COMBINE:
                if limit is not None and taken >= limit:
                    continue
                (path / name).replace(path / (name + _DEAD_SUFFIX))  # out of reach of a reused pid
                taken += 1
            else:
                (path / name).unlink(missing_ok=True)
                removed += 1
        inputs = sorted(n for n in _names(path) if n.endswith(".db" + _DEAD_SUFFIX))
        if inputs:
            groups: dict[str, list[str]] = {}
            for name in inputs:
                groups.setdefault(name[: -len(".db" + _DEAD_SUFFIX)].rpartition("_")[0], []).append(name)
            written = [_write_archive(path, prefix, names) for prefix, names in sorted(groups.items())]
            _commit(path, written, inputs)
            removed += len(inputs)
        return removed


def _write_archive(directory: Path, prefix: str, inputs: list[str]) -> str:
    combine = _COMBINE[prefix]
    archive = directory / f"{prefix}_{_ARCHIVE_ID}.db"
    sources = [archive] if archive.exists() else []
    sources += [directory / n for n in inputs]
    merged: dict[str, tuple[float, float]] = {}
    for source in sources:
        if source.stat().st_size == 0:
            continue  # a worker killed between creating its file and sizing it
        for key, value, timestamp, _ in _read_file(source):
            found = merged.get(key)
            merged[key] = (value, timestamp) if found is None else combine(found, (value, timestamp))
    new = directory / (archive.name + _NEW_SUFFIX)
    new.unlink(missing_ok=True)
    _write_file(new, [(key, *merged[key]) for key in sorted(merged)])
    return new.name


def _commit(directory: Path, written: list[str], inputs: list[str]) -> None:
    """Make the new archives and the removal of their inputs one step for readers."""
    pending = directory / (_JOURNAL_FILE + ".tmp")
    pending.write_text(json.dumps({"replace": written, "remove": inputs}))
    pending.replace(directory / _JOURNAL_FILE)  # the commit point
    _apply_journal(directory)


def _apply_journal(directory: Path) -> None:
    journal = directory / _JOURNAL_FILE
    try:
        plan = json.loads(journal.read_text())
    except FileNotFoundError:
        return
    for name in plan["replace"]:
        with contextlib.suppress(FileNotFoundError):  # already moved before an interruption
            (directory / name).replace(directory / name.removesuffix(_NEW_SUFFIX))
    for name in plan["remove"]:
        (directory / name).unlink(missing_ok=True)
    journal.unlink()


def _finish_interrupted(directory: Path) -> None:
    """Complete a committed compaction, or discard one that never reached its commit."""
    _apply_journal(directory)
    for name in _names(directory):
        if name.endswith(_NEW_SUFFIX) or name == _JOURNAL_FILE + ".tmp":
            (directory / name).unlink(missing_ok=True)
    # Remaining `.dead` files are merged by the caller, as if found dead just now.


# --- Optional gunicorn hook ------------------------------------------------------------


def mark_worker_dead(pid: int, directory: str | None = None) -> None:
    """Compact a worker's files right away instead of at the next scrape (optional)."""
    target = _resolved(directory) if directory else _hook_directory()
    if target is None or not target.is_dir():
        return
    compact(target, dead_pids=(pid,))


def child_exit(server: Any, worker: Any) -> None:
    """gunicorn `child_exit` hook: `from lightkeeper.sdk.multiprocess import child_exit`.

    Not required (scrapes compact on their own); it only frees a dead worker's files at
    once. Never raises: an exception in a hook would stop gunicorn's arbiter loop.
    """
    try:
        mark_worker_dead(int(worker.pid))
    except Exception:
        log.warning("could not compact the metric files of worker %s", worker.pid, exc_info=True)


def _hook_directory() -> Path | None:
    configured = os.environ.get(ENV_DIRECTORY) or os.environ.get("PROMETHEUS_MULTIPROC_DIR")
    if configured:
        return _resolved(configured)
    # In gunicorn's arbiter: the directory its workers derive from its pid.
    return server_directory(os.getpid())
