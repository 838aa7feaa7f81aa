"""Fixtures for lock tests: a tiny project whose indexes are local PEP 503 servers."""

from __future__ import annotations

import contextlib
import shutil
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsnbuild.lock.localindex import build_simple_index, serve
from tests.layers.wheels import build_wheel as make_wheel

PROJECT = """\
# a test project
[product]
name = "t"
version = "1.0"
epoch = 1767225600

[base]
repository = "example/base"
tag = "1"
digest = "sha256:{digest}"
provides = ["baselib==1.0"]

[target]
python = "3.11"

[indexes.pypi]
default = true

[indexes.cpu]

[variants.torchy]
framework = "torchy"
packages = ["torchlike", "commonpkg"]
routes = {{ torchlike = "cpu" }}

[variants.plain]
framework = "plain"
packages = ["commonpkg", "leafpkg"]
"""


@dataclass
class Indexes:
    default: str
    cpu: str
    root: Path

    def overrides(self) -> dict[str, str]:
        return {"pypi": self.default, "cpu": self.cpu}


@pytest.fixture(scope="session")
def local_indexes(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Indexes]:
    """Two indexes reproducing the CPU-index trap: 'cpu' also hosts a newer commonpkg."""
    root = tmp_path_factory.mktemp("indexes")
    default_wheels, cpu_wheels = root / "default-wheels", root / "cpu-wheels"
    make_wheel(default_wheels, "baselib", "1.0", requires=("leafpkg>=1",))
    make_wheel(default_wheels, "baselib", "2.0", requires=("leafpkg>=1",))
    make_wheel(default_wheels, "leafpkg", "1.0")
    make_wheel(default_wheels, "leafpkg", "1.1")
    make_wheel(default_wheels, "commonpkg", "1.0", requires=("leafpkg",))
    make_wheel(default_wheels, "commonpkg", "1.1", requires=("leafpkg",))
    make_wheel(default_wheels, "torchlike", "9.0", requires=("commonpkg",))  # the CUDA-ish one
    make_sdist(default_wheels, "sdistonly", "1.0")
    make_wheel(cpu_wheels, "torchlike", "1.0+cpu", requires=("commonpkg",))
    make_wheel(cpu_wheels, "commonpkg", "3.0")  # stale/newer copy: the trap
    build_simple_index(default_wheels, root / "default")
    _add_sdist(root / "default", default_wheels / "sdistonly-1.0.tar.gz")
    build_simple_index(cpu_wheels, root / "cpu")
    with serve(root / "default") as default, serve(root / "cpu") as cpu:
        yield Indexes(default, cpu, root)


def make_sdist(folder: Path, name: str, version: str) -> Path:
    import io
    import tarfile

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{name}-{version}.tar.gz"
    with tarfile.open(out, "w:gz") as archive:
        data = f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n".encode()
        info = tarfile.TarInfo(f"{name}-{version}/PKG-INFO")
        info.size = len(data)
        archive.addfile(info, io.BytesIO(data))
    return out


def _add_sdist(index: Path, sdist: Path) -> None:
    import hashlib

    page = index / "simple" / "sdistonly"
    page.mkdir(parents=True, exist_ok=True)
    shutil.copy(sdist, index / "files" / sdist.name)
    digest = hashlib.sha256(sdist.read_bytes()).hexdigest()
    link = f'<a href="../../files/{sdist.name}#sha256={digest}">{sdist.name}</a>'
    page.joinpath("index.html").write_text(f"<html><body>{link}</body></html>")


@pytest.fixture
def project_dir(tmp_path: Path) -> Path:
    """A fresh copy of the tiny project (no locks yet)."""
    folder = tmp_path / "proj"
    folder.mkdir()
    folder.joinpath("variants.toml").write_text(PROJECT.format(digest="ab" * 32))
    return folder


@contextlib.contextmanager
def chdir(path: Path) -> Iterator[None]:
    import os

    old = os.getcwd()
    os.chdir(path)
    try:
        yield
    finally:
        os.chdir(old)
