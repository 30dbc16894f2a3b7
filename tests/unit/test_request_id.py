from __future__ import annotations

import pytest

from lightkeeper.sdk.request_id import MAX_LENGTH, accept_or_new, new_request_id


@pytest.mark.parametrize(
    "raw", [b"abc-123", b"a" * MAX_LENGTH, b"00-4bf92f3577b34da6-01", b"k8s:pod.1_x=y+z"]
)
def test_sane_ids_are_kept(raw: bytes) -> None:
    assert accept_or_new(raw) == raw.decode()


@pytest.mark.parametrize(
    "raw",
    [
        None,
        b"",
        b"a" * (MAX_LENGTH + 1),
        b"abc\x00",
        b"abc\r\nX-Evil: 1",
        b"caf\xc3\xa9",
        b"has space",
        b"<script>alert(1)</script>",
        b'"quoted"',
        b"a;b",
        b"\xff\xfe",
    ],
)
def test_insane_ids_are_replaced_by_a_fresh_one(raw: bytes | None) -> None:
    rid = accept_or_new(raw)
    assert raw is None or rid.encode() != raw
    assert len(rid) == 32 and int(rid, 16) >= 0


def test_generated_ids_are_unique() -> None:
    assert len({new_request_id() for _ in range(10_000)}) == 10_000


def test_forked_workers_do_not_repeat_each_others_ids() -> None:
    import os

    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: a gunicorn worker forked from the master
        os.write(write, ",".join(new_request_id() for _ in range(100)).encode())
        os._exit(0)
    os.close(write)
    os.waitpid(pid, 0)
    child_ids = set(os.read(read, 100_000).decode().split(","))
    parent_ids = {new_request_id() for _ in range(100)}
    assert len(child_ids) == 100 and not child_ids & parent_ids


@pytest.mark.parametrize(
    "raw",
    [
        b"eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0NTY3ODkwIn0.dozjgNryP4J3jVmNHl0w5N_XgL0n3I9PlFUP0THsR8U",
        b"sk-proj-AbCdEf0123456789GhIjKlMnOpQrStUvWx",
        b"ghp_AbCdEfGhIjKlMnOpQrStUvWxYz0123456789",
    ],
)
def test_an_id_shaped_like_a_credential_is_replaced_not_echoed(raw: bytes) -> None:
    rid = accept_or_new(raw)
    assert rid.encode() != raw and len(rid) == 32
