"""Fixtures for the stand-in tests: a real reference registry on 127.0.0.1 (the two real
builds are the session fixture ``two_builds`` in tests/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from tests.oci.conftest import run_registry


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT, plain HTTP


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """``docker-registry serve`` on a free loopback port, storing under a temporary folder."""
    with run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield Registry(server.host)
