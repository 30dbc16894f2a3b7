"""Fixtures for the probe tests: local targets on ephemeral ports and generated certificates."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.server import targets


@pytest.fixture
def http_target() -> Iterator[targets.TargetServer]:
    with targets.serve() as server:
        yield server


@dataclass
class Pki:
    ca_file: Path
    short_lived: targets.Cert  # CA-signed, valid for 3 more days
    long_lived: targets.Cert  # CA-signed, valid for a year
    expired: targets.Cert  # CA-signed, expired 5 days ago
    self_signed: targets.Cert  # valid dates, but nobody vouches for it


@pytest.fixture(scope="session")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    folder = tmp_path_factory.mktemp("pki")
    ca, ca_cert, ca_key = targets.make_ca(folder)
    now = dt.datetime.now(dt.UTC)
    day = dt.timedelta(days=1)
    issuer = (ca_cert, ca_key)
    return Pki(
        ca_file=ca.cert_file,
        short_lived=targets.make_leaf(
            folder, "short", valid_from=now - day, valid_to=now + 3 * day, issuer=issuer
        ),
        long_lived=targets.make_leaf(
            folder, "long", valid_from=now - day, valid_to=now + 365 * day, issuer=issuer
        ),
        expired=targets.make_leaf(
            folder, "expired", valid_from=now - 40 * day, valid_to=now - 5 * day, issuer=issuer
        ),
        self_signed=targets.make_leaf(folder, "self", valid_from=now - day, valid_to=now + 365 * day),
    )
