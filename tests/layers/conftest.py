"""Fixtures for layer tests: a wheel folder and a PEP 503/691 index on 127.0.0.1."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from .wheels import LocalIndex, serve_index


@pytest.fixture
def local_index() -> Iterator[LocalIndex]:
    with serve_index() as index:
        yield index


@pytest.fixture
def wheel_dir(tmp_path: Path) -> Path:
    return tmp_path / "wheels"
