"""Multi-process metrics: worker detection, the shared directory, dead-worker compaction.

Dead workers are real processes: forked children that write through prometheus-client's
own multi-process values and exit, so the files compacted here are byte-for-byte what a
gunicorn or uvicorn worker leaves behind.
"""

from __future__ import annotations

import fcntl
import itertools
import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, Summary, generate_latest, values
from prometheus_client.multiprocess import MultiProcessCollector

from lightkeeper import catalogue
from lightkeeper.sdk import multiprocess

FORK = multiprocessing.get_context("fork")
# Durations that are exact in binary, so sums compare exactly whatever the merge order.
DURATIONS = (0.0078125, 0.03125, 0.0625, 0.25, 0.5, 1.5, 3.0, 12.0)
Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


@pytest.fixture
def isolated(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Path]:
    """A private temp root and a pristine module state; restores prometheus-client after."""
    names = ("PROMETHEUS_MULTIPROC_DIR", multiprocess.ENV_DIRECTORY, "SERVER_SOFTWARE")
    saved = {name: os.environ.pop(name, None) for name in names}
    root = tmp_path / "tmp"
    root.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(root))
    monkeypatch.setattr(multiprocess, "_state", None)
    monkeypatch.setattr(multiprocess, "_last_compaction", {})
    monkeypatch.setattr(values, "ValueClass", values.ValueClass)
    fds_before = list(multiprocess._alive_fds)
    yield root
    for fd in multiprocess._alive_fds[len(fds_before) :]:
        os.close(fd)
    multiprocess._alive_fds[:] = fds_before
    for name, value in saved.items():  # tests set these directly, as activation does
        os.environ.pop(name, None)
        if value is not None:
            os.environ[name] = value


def _use_files(directory: Path) -> None:
    """What an activated worker does: file-backed values in `directory`."""
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = str(directory)
    values.ValueClass = values.MultiProcessValue()


def _emit(
    directory: str, requests: int, errors: int, durations: tuple[float, ...], gauges: dict[str, float]
) -> None:
    """One worker's traffic, written the way prometheus-client writes it."""
    _use_files(Path(directory))
    requests_total = Counter("http_requests", "Requests.", ["method", "route", "status_code"], registry=None)
    requests_total.labels("GET", "/items/{item_id}", "200").inc(requests)
    if errors:
        requests_total.labels("POST", "/items", "500").inc(errors)
    duration = Histogram(
        "http_request_duration_seconds",
        "Duration.",
        ["route"],
        buckets=catalogue.HTTP_DURATION_BUCKETS,
        registry=None,
    )
    for seconds in durations:
        duration.labels("/items/{item_id}").observe(seconds)
    job = Summary("job_seconds", "Job time.", registry=None)
    for seconds in durations:
        job.observe(seconds)
    for mode, value in gauges.items():
        gauge = Gauge(f"gauge_{mode}", f"A {mode} gauge.", ["kind"], multiprocess_mode=mode, registry=None)  # type: ignore[arg-type]
        gauge.labels("x").set(value)


def _dead_worker(directory: Path, target: Callable[..., None] = _emit, *args: Any) -> int:
    """Run `target` in a forked child that then exits (and is reaped); returns its pid."""
    if target is _emit and not args:
        args = (3, 1, DURATIONS, {})
    child = FORK.Process(target=target, args=(str(directory), *args))
    child.start()
    child.join()
    assert child.exitcode == 0
    assert child.pid is not None
    return child.pid


def _raw(directory: Path) -> Samples:
    """prometheus-client's own aggregation of the directory, no lightkeeper involved."""
    files = sorted(str(p) for p in directory.glob("*.db"))
    return _flatten(MultiProcessCollector.merge(files, accumulate=True))


def _flatten(metrics: Any) -> Samples:
    return {(s.name, tuple(sorted(s.labels.items()))): s.value for m in metrics for s in m.samples}


def _total(samples: Samples, name: str) -> float:
    return sum(v for (n, _), v in samples.items() if n == name)


def _pid_files(directory: Path, pid: int) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.removesuffix(".db").endswith(f"_{pid}"))


# --- Compaction -----------------------------------------------------------------------


def test_compaction_keeps_every_count_and_bucket_and_removes_only_dead_files(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    dead = [_dead_worker(directory, _emit, n, n % 3, DURATIONS[: n + 1], {}) for n in range(1, 7)]
    _emit(str(directory), 11, 2, DURATIONS, {})  # this process is a live worker
    live_files = {
        p.name: p.read_bytes() for p in directory.iterdir() if p.name.endswith(f"_{os.getpid()}.db")
    }
    assert len(live_files) == 3  # counter, histogram, summary
    before = _raw(directory)

    removed = multiprocess.compact(directory)

    assert removed == 3 * len(dead)
    assert _raw(directory) == before  # every counter, bucket, _sum, _count, exactly
    for pid in dead:
        assert _pid_files(directory, pid) == []
    assert {p.name: p.read_bytes() for p in directory.iterdir() if p.name in live_files} == live_files
    assert sorted(p.name for p in directory.glob("*.db")) == sorted(
        [*live_files, "counter_archive.db", "histogram_archive.db", "summary_archive.db"]
    )
    expected_requests = sum(range(1, 7)) + sum(n % 3 for n in range(1, 7)) + 13
    assert _total(before, "http_requests_total") == expected_requests


def test_later_compactions_merge_into_the_archive(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    for _ in range(3):
        _dead_worker(directory)
    multiprocess.compact(directory)
    after_first = _raw(directory)
    for _ in range(4):
        _dead_worker(directory)
    before_second = _raw(directory)
    assert _total(before_second, "http_requests_total") == _total(after_first, "http_requests_total") + 16

    assert multiprocess.compact(directory) == 12
    assert _raw(directory) == before_second
    assert multiprocess.compact(directory) == 0  # nothing dead left: a no-op


def test_gauges_follow_their_multiprocess_mode(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    kept = ("sum", "max", "min", "mostrecent")
    dropped = ("livesum", "livemax", "livemin", "liveall", "livemostrecent", "all")
    for value in (-7.0, 4.0):
        _dead_worker(directory, _emit, 0, 0, (), dict.fromkeys(kept + dropped, value))
        time.sleep(0.01)  # distinct timestamps for mostrecent
    _emit(str(directory), 0, 0, (), dict.fromkeys(kept + dropped, 1.0))
    before = _raw(directory)

    multiprocess.compact(directory)
    after = _raw(directory)

    for mode in kept:  # the aggregate over all processes, dead ones included, is unchanged
        key = (f"gauge_{mode}", (("kind", "x"),))
        assert after[key] == before[key]
    assert before[("gauge_max", (("kind", "x"),))] == 4.0
    assert before[("gauge_min", (("kind", "x"),))] == -7.0
    assert before[("gauge_sum", (("kind", "x"),))] == -2.0
    assert before[("gauge_mostrecent", (("kind", "x"),))] == 1.0
    for mode in dropped:  # only the live process's value remains
        series = {k: v for k, v in after.items() if k[0] == f"gauge_{mode}"}
        assert list(series.values()) == [1.0], mode
    assert {dict(k[1]).get("pid") for k in after if k[0] == "gauge_all"} == {str(os.getpid())}


def test_scrapes_never_double_count_or_lose_counts_during_compaction(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    workers, per_worker = 40, 5
    producer = FORK.Process(target=_produce_dead_workers, args=(str(directory), workers, per_worker))
    compactor = FORK.Process(target=_compact_until_told, args=(str(directory),))
    producer.start()
    compactor.start()
    seen: list[float] = []
    try:
        while producer.is_alive():
            seen.append(_total(_flatten(multiprocess.collect(directory)), "http_requests_total"))
    finally:
        producer.join()
        (directory / "stop").touch()
        compactor.join(timeout=30)
    assert producer.exitcode == 0 and compactor.exitcode == 0
    assert len(seen) > 5
    assert all(later >= earlier for earlier, later in itertools.pairwise(seen)), "a count went backwards"
    assert max(seen) <= workers * per_worker, "a count was read twice"
    multiprocess.compact(directory)
    assert _total(_raw(directory), "http_requests_total") == workers * per_worker
    assert sorted(p.name for p in directory.glob("*.db")) == ["counter_archive.db"]


def _produce_dead_workers(directory: str, workers: int, per_worker: int) -> None:
    for _ in range(workers):
        child = FORK.Process(target=_count, args=(directory, per_worker))
        child.start()
        child.join()


def _count(directory: str, times: int) -> None:
    _use_files(Path(directory))
    counter = Counter("http_requests", "Requests.", ["route"], registry=None)
    for _ in range(times):
        counter.labels("/r").inc()
        time.sleep(0.001)


def _compact_until_told(directory: str) -> None:
    while not (Path(directory) / "stop").exists():
        multiprocess.compact(directory)


@pytest.mark.parametrize(
    "interrupted_at", ["after_moving_dead_files", "before_commit", "after_commit", "half_applied"]
)
def test_a_compaction_killed_half_way_is_finished_by_the_next_reader(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, interrupted_at: str
) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    for _ in range(3):
        _dead_worker(directory)
    multiprocess.compact(directory)  # an archive already exists
    for _ in range(2):
        _dead_worker(directory)
    expected = _raw(directory)

    class Killed(BaseException):
        """Stands in for SIGKILL arriving at this point of the compaction."""

    def killed(*_: Any) -> None:
        raise Killed

    with monkeypatch.context() as patch:
        if interrupted_at == "after_moving_dead_files":
            patch.setattr(multiprocess, "_write_archive", killed)
        elif interrupted_at == "before_commit":
            patch.setattr(multiprocess, "_commit", killed)
        else:
            real_apply = multiprocess._apply_journal
            patch.setattr(
                multiprocess,
                "_apply_journal",
                lambda d: killed() if (d / "lightkeeper.journal").exists() else real_apply(d),
            )
        with pytest.raises(Killed):
            multiprocess.compact(directory)
    if interrupted_at == "half_applied":  # the archives were moved in, the inputs not yet removed
        for new in directory.glob("*.db.new"):
            new.replace(directory / new.name.removesuffix(".new"))
    assert any(p.name.endswith(".dead") for p in directory.iterdir())

    assert _flatten(multiprocess.collect(directory)) == expected
    assert sorted(p.name for p in directory.iterdir()) == [
        "counter_archive.db",
        "histogram_archive.db",
        "lightkeeper.lock",
        "summary_archive.db",
    ]
    assert _raw(directory) == expected


def test_scrapes_compact_at_most_once_per_interval(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocess, "COMPACTION_INTERVAL_SECONDS", 0.5)
    directory = isolated / "metrics"
    directory.mkdir()
    first = _dead_worker(directory)
    multiprocess.collect(directory)
    assert _pid_files(directory, first) == []
    second = _dead_worker(directory)
    totals = _total(_flatten(multiprocess.collect(directory)), "http_requests_total")
    assert totals == 8  # counted straight from its files
    assert len(_pid_files(directory, second)) == 3  # not compacted yet: rate-limited
    time.sleep(0.55)
    assert _total(_flatten(multiprocess.collect(directory)), "http_requests_total") == 8
    assert _pid_files(directory, second) == []


def test_a_limited_compaction_merges_part_and_leaves_the_rest_readable(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    for _ in range(4):
        _dead_worker(directory)  # 3 files each
    expected = _raw(directory)
    remaining = 12
    while remaining:
        removed = multiprocess.compact(directory, limit=5)
        assert removed == min(5, remaining)
        remaining -= removed
        assert _raw(directory) == expected
        assert len([p for p in directory.glob("*.db") if "archive" not in p.name]) == remaining


def test_a_backlog_is_worked_off_scrape_by_scrape(isolated: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multiprocess, "COMPACTION_BATCH_FILES", 4)
    directory = isolated / "metrics"
    directory.mkdir()
    for _ in range(3):
        _dead_worker(directory)
    left = []
    for _ in range(4):
        assert _total(_flatten(multiprocess.collect(directory)), "http_requests_total") == 12
        left.append(len([p for p in directory.glob("*.db") if "archive" not in p.name]))
    assert left == [5, 1, 0, 0]  # no waiting for the interval while a backlog remains


def test_empty_files_left_by_a_worker_killed_while_creating_them_do_not_break_scrapes(isolated: Path) -> None:
    """prometheus/client_python#1199: its reader raises on a file created but not yet sized."""
    directory = isolated / "metrics"
    directory.mkdir()
    _dead_worker(directory)
    dead_empty = directory / f"histogram_{_dead_pid()}.db"
    live_empty = directory / f"counter_{os.getppid()}.db"  # a live worker, mid-creation
    dead_empty.touch()
    live_empty.touch()
    with pytest.raises(Exception, match="unpack_from requires a buffer"):
        MultiProcessCollector(None, path=str(directory)).collect()

    assert _total(_flatten(multiprocess.collect(directory)), "http_requests_total") == 4
    assert not dead_empty.exists()
    assert live_empty.exists()


# --- Locks ------------------------------------------------------------------------------


def _hold_lock(path: Path, mode: str, seconds: float) -> subprocess.Popen[bytes]:
    """Another process holding an flock on `path` (mode 'ex' or 'sh') for `seconds`."""
    code = (
        "import fcntl, os, sys, time\n"
        f"fd = os.open({str(path)!r}, os.O_RDWR | os.O_CREAT, 0o600)\n"
        f"fcntl.flock(fd, fcntl.LOCK_{mode.upper()})\n"
        "print('held', flush=True)\n"
        f"time.sleep({seconds})\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE)
    assert proc.stdout is not None and proc.stdout.readline() == b"held\n"
    return proc


def test_a_scrape_waits_while_another_worker_compacts(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    _dead_worker(directory)
    holder = _hold_lock(directory / "lightkeeper.lock", "ex", 0.6)
    try:
        started = time.monotonic()
        totals = _total(_flatten(multiprocess.collect(directory)), "http_requests_total")
        waited = time.monotonic() - started
    finally:
        holder.wait()
    assert waited >= 0.4
    assert totals == 4


def test_compaction_waits_for_readers(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    pid = _dead_worker(directory)
    reader = _hold_lock(directory / "lightkeeper.lock", "sh", 0.6)
    try:
        started = time.monotonic()
        multiprocess.compact(directory)
        waited = time.monotonic() - started
    finally:
        reader.wait()
    assert waited >= 0.4
    assert _pid_files(directory, pid) == []


def test_a_lock_held_forever_fails_the_scrape_within_the_timeout(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(multiprocess, "LOCK_TIMEOUT_SECONDS", 0.3)
    directory = isolated / "metrics"
    directory.mkdir()
    holder = _hold_lock(directory / "lightkeeper.lock", "ex", 60)
    try:
        started = time.monotonic()
        with pytest.raises(TimeoutError, match=r"stayed locked for 0\.3s"):
            multiprocess.collect(directory)
        assert time.monotonic() - started < 1.5
    finally:
        holder.kill()
        holder.wait()


def test_threads_of_one_process_exclude_each_other(isolated: Path) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    inside: list[str] = []
    overlaps: list[bool] = []

    def use(kind: str) -> None:
        for _ in range(50):
            with multiprocess._locked(directory, exclusive=kind == "ex"):
                inside.append(kind)
                overlaps.append("ex" in inside and len(inside) > 1)
                time.sleep(0.0005)
                inside.remove(kind)

    threads = [threading.Thread(target=use, args=(k,)) for k in ("ex", "ex", "sh", "sh")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(overlaps) == 200
    assert not any(overlaps)


# --- Activation and detection -----------------------------------------------------------


def test_a_single_process_stays_in_memory(isolated: Path) -> None:
    value_class = values.ValueClass
    assert multiprocess.activate_if_needed() is False
    assert multiprocess.activate_if_needed() is False
    assert values.ValueClass is value_class
    assert multiprocess.exposition_registry() is REGISTRY
    assert multiprocess.active_directory() is None
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ
    assert list(isolated.iterdir()) == []


def test_a_configured_directory_is_used_even_by_a_single_process(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = isolated / "configured" / "metrics"
    monkeypatch.setenv(multiprocess.ENV_DIRECTORY, str(directory))
    assert multiprocess.activate_if_needed() is True
    value_class = values.ValueClass
    assert multiprocess.activate_if_needed() is True
    assert values.ValueClass is value_class and value_class._multiprocess
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    assert multiprocess.active_directory() == directory
    assert directory.stat().st_mode & 0o777 == 0o700
    assert multiprocess.activate_if_needed(str(directory)) is True  # same directory: fine
    with pytest.raises(RuntimeError, match="already in use"):
        multiprocess.activate_if_needed(str(isolated / "elsewhere"))


def test_prometheus_multiproc_dir_is_honoured_and_a_conflict_is_named(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", str(isolated / "theirs"))
    with pytest.raises(RuntimeError, match=r"multiprocess_dir \(.*ours\) and PROMETHEUS_MULTIPROC_DIR"):
        multiprocess.activate_if_needed(str(isolated / "ours"))
    assert multiprocess.activate_if_needed() is True
    assert multiprocess.active_directory() == isolated / "theirs"


def test_a_decision_cannot_change_after_metrics_exist(isolated: Path) -> None:
    assert multiprocess.activate_if_needed() is False
    with pytest.raises(RuntimeError, match="LIGHTKEEPER_MULTIPROCESS_DIR"):
        multiprocess.activate_if_needed(str(isolated / "late"))


@pytest.fixture
def usr1_handler() -> Iterator[Callable[[Any], None]]:
    previous = signal.getsignal(signal.SIGUSR1)
    yield lambda owner: signal.signal(signal.SIGUSR1, owner.handle_usr1)
    signal.signal(signal.SIGUSR1, previous)


def _gunicorn_worker(ppid: int) -> Any:
    import gunicorn.arbiter  # noqa: F401  (a worker is forked from the arbiter: always imported)
    from gunicorn.config import Config
    from gunicorn.workers.base import Worker

    return Worker(1, ppid, [], None, 30, Config(), None)


def test_a_gunicorn_worker_joins_its_arbiters_directory(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, usr1_handler: Callable[[Any], None]
) -> None:
    master = os.getppid()  # any live process can play the arbiter
    usr1_handler(_gunicorn_worker(master))
    assert multiprocess._gunicorn_master_pid() is None  # gunicorn is not serving this process
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
    assert multiprocess._gunicorn_master_pid() == master

    assert multiprocess.activate_if_needed() is True
    directory = multiprocess.active_directory()
    assert directory == multiprocess.server_directory(master)
    assert directory.parent == isolated
    assert directory.name == f"lightkeeper-metrics-{master}-{multiprocess._start_ticks(master)}"
    assert directory.stat().st_mode & 0o777 == 0o700
    assert os.environ["PROMETHEUS_MULTIPROC_DIR"] == str(directory)
    assert values.ValueClass._multiprocess
    fd = os.open(directory / "lightkeeper.alive", os.O_RDWR)
    try:
        with pytest.raises(BlockingIOError):  # held (shared) for the life of this process
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    finally:
        os.close(fd)


def test_a_started_gunicorn_arbiter_uses_its_own_pid(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, usr1_handler: Callable[[Any], None]
) -> None:
    from gunicorn.arbiter import Arbiter

    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
    usr1_handler(Arbiter.__new__(Arbiter))  # only its bound handler matters here
    assert multiprocess._gunicorn_master_pid() == os.getpid()


def _report_uvicorn_master(import_uvicorn: bool, queue: Any) -> None:
    if import_uvicorn:
        import uvicorn  # noqa: F401
    queue.put(multiprocess._uvicorn_master_pid())


@pytest.mark.parametrize("import_uvicorn", [True, False])
def test_a_uvicorn_worker_is_recognised_by_its_spawning_supervisor(import_uvicorn: bool) -> None:
    spawn = multiprocessing.get_context("spawn")  # what uvicorn's supervisor uses
    queue = spawn.Queue()
    child = spawn.Process(target=_report_uvicorn_master, args=(import_uvicorn, queue))
    child.start()
    found = queue.get(timeout=60)
    child.join()
    assert found == (os.getpid() if import_uvicorn else None)


def test_values_created_before_a_fork_never_write_to_the_masters_file(isolated: Path) -> None:
    """gunicorn --preload: metrics exist in the master before workers are forked."""
    directory = isolated / "metrics"
    os.environ[multiprocess.ENV_DIRECTORY] = str(directory)
    assert multiprocess.activate_if_needed()
    counter = Counter("preloaded", "Created in the master.", ["route"], registry=None)
    child = counter.labels("/a")
    child.inc(5)
    master_file = directory / f"counter_{os.getpid()}.db"
    master_bytes = master_file.read_bytes()

    worker = _dead_worker(directory, _increment_inherited, child, 3)

    assert master_file.read_bytes() == master_bytes
    assert child._value.get() == 5
    assert _total(_raw(directory), "preloaded_total") == 8
    assert len(_pid_files(directory, worker)) == 1
    multiprocess.compact(directory)
    assert _total(_raw(directory), "preloaded_total") == 8


def _increment_inherited(_: str, child: Any, amount: int) -> None:
    child.inc(amount)


# --- Directories ---------------------------------------------------------------------------


def _dead_pid() -> int:
    child = FORK.Process(target=int)
    child.start()
    child.join()
    assert child.pid is not None
    return child.pid


def test_directories_of_servers_that_are_gone_are_removed(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, usr1_handler: Callable[[Any], None]
) -> None:
    gone = isolated / f"lightkeeper-metrics-{_dead_pid()}-123"
    live = multiprocess.server_directory(os.getppid())
    reused_pid = isolated / f"lightkeeper-metrics-{os.getppid()}-1"  # same pid, another start time
    orphaned = isolated / f"lightkeeper-metrics-{_dead_pid()}-456"  # master gone, a worker left
    unrelated = isolated / "lightkeeper-metrics-notes"
    for path in (gone, live, reused_pid, orphaned, unrelated):
        path.mkdir(mode=0o700)
        (path / "counter_1.db").write_bytes(b"x")
    (orphaned / "lightkeeper.alive").touch()
    holder = _hold_lock(orphaned / "lightkeeper.alive", "sh", 60)
    try:
        monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
        usr1_handler(_gunicorn_worker(os.getpid()))
        assert multiprocess.activate_if_needed()
        assert not gone.exists()
        assert not reused_pid.exists()
        assert live.exists() and orphaned.exists() and unrelated.exists()
    finally:
        holder.kill()
        holder.wait()


def test_a_directory_from_a_previous_run_of_the_same_master_is_joined_not_wiped(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, usr1_handler: Callable[[Any], None]
) -> None:
    """All workers restarting at once must not reset counters (the master still lives)."""
    directory = multiprocess.server_directory(os.getppid())
    directory.mkdir(mode=0o700)
    dead = _dead_worker(directory)
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
    usr1_handler(_gunicorn_worker(os.getppid()))
    assert multiprocess.activate_if_needed()
    assert _pid_files(directory, dead) == []  # the replacement compacted its predecessor at start
    assert _total(_flatten(multiprocess.exposition_registry().collect()), "http_requests_total") == 4


def test_a_failing_compaction_at_start_does_not_stop_the_worker(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    (directory / "lightkeeper.lock").mkdir()  # the lock cannot be opened
    monkeypatch.setenv(multiprocess.ENV_DIRECTORY, str(directory))
    assert multiprocess.activate_if_needed() is True
    assert f"could not compact the metric files in {directory}" in caplog.text


@pytest.mark.parametrize("kind", ["foreign", "symlink"])
def test_a_directory_planted_by_someone_else_is_refused(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, usr1_handler: Callable[[Any], None], kind: str
) -> None:
    directory = multiprocess.server_directory(os.getppid())
    if kind == "foreign":
        if os.getuid() != 0:
            pytest.fail("this test needs root to create a directory owned by another user")
        directory.mkdir(mode=0o777)
        os.chown(directory, 65534, 65534)
    else:
        (isolated / "elsewhere").mkdir()
        directory.symlink_to(isolated / "elsewhere")
    monkeypatch.setenv("SERVER_SOFTWARE", "gunicorn/27.0.1")
    usr1_handler(_gunicorn_worker(os.getppid()))
    with pytest.raises(
        RuntimeError, match=r"not a directory owned by this user.*LIGHTKEEPER_MULTIPROCESS_DIR"
    ):
        multiprocess.activate_if_needed()
    assert "PROMETHEUS_MULTIPROC_DIR" not in os.environ


def test_server_directory_names_the_master_and_its_start(isolated: Path) -> None:
    ticks = multiprocess._start_ticks(os.getpid())
    assert ticks is not None and ticks.isdigit()
    assert multiprocess.server_directory(os.getpid()).name == f"lightkeeper-metrics-{os.getpid()}-{ticks}"
    assert multiprocess.server_directory(_dead_pid()).name.count("-") == 2  # no start time: pid only


# --- Exposition and the optional hook -------------------------------------------------------


def test_the_exposition_registry_aggregates_every_worker_without_process_metrics(
    isolated: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    directory = isolated / "metrics"
    monkeypatch.setenv(multiprocess.ENV_DIRECTORY, str(directory))
    assert multiprocess.activate_if_needed()
    for _ in range(3):
        _dead_worker(directory)
    _emit(str(directory), 10, 0, (0.25,), {"livesum": 2.0})

    registry = multiprocess.exposition_registry()
    text = generate_latest(registry).decode()

    assert registry is multiprocess.exposition_registry()
    assert registry is not REGISTRY
    assert 'http_requests_total{method="GET",route="/items/{item_id}",status_code="200"} 19.0' in text
    assert 'http_requests_total{method="POST",route="/items",status_code="500"} 3.0' in text
    assert 'http_request_duration_seconds_bucket{le="+Inf",route="/items/{item_id}"} 25.0' in text
    assert "process_" not in text
    assert sorted(p.name for p in directory.glob("*.db")) == sorted(
        [
            "counter_archive.db",
            "histogram_archive.db",
            "summary_archive.db",
            *(f"{t}_{os.getpid()}.db" for t in ("counter", "histogram", "summary", "gauge_livesum")),
        ]
    )


def test_child_exit_compacts_at_once_and_never_raises(
    isolated: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    directory = isolated / "metrics"
    directory.mkdir()
    monkeypatch.setenv(multiprocess.ENV_DIRECTORY, str(directory))
    pid = _dead_worker(directory)
    before = _raw(directory)
    # gunicorn passes its Arbiter and Worker objects; the hook only reads worker.pid.
    multiprocess.child_exit(None, SimpleNamespace(pid=pid))
    assert _pid_files(directory, pid) == []
    assert _raw(directory) == before

    (directory / "lightkeeper.lock").unlink()
    (directory / "lightkeeper.lock").mkdir()  # the lock cannot be opened: compaction fails
    multiprocess.child_exit(None, SimpleNamespace(pid=_dead_worker(directory)))
    assert "could not compact the metric files of worker" in caplog.text


def test_mark_worker_dead_in_an_arbiter_finds_its_workers_directory(isolated: Path) -> None:
    directory = multiprocess.server_directory(os.getpid())  # this process plays the arbiter
    directory.mkdir(mode=0o700)
    pid = _dead_worker(directory)
    multiprocess.mark_worker_dead(pid)
    assert _pid_files(directory, pid) == []
    multiprocess.mark_worker_dead(pid, str(isolated / "missing"))  # nothing there: no error
