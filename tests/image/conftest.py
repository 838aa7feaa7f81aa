"""Fixtures for image builds: a copy of the project to change freely, and build helpers."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fsnbuild.config import Project, load_project
from fsnbuild.image.build import Options, Result, build_variant_image

ROOT = Path(__file__).resolve().parents[2]


def copy_project(dest: Path) -> Path:
    dest.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "variants.toml", dest / "variants.toml")
    shutil.copytree(ROOT / "locks", dest / "locks", dirs_exist_ok=True)
    return dest / "variants.toml"


def build(project: Project, variant: str, folder: Path, base: Path, **kw: object) -> Result:
    options = Options(
        out_dir=folder / "out", cache_dir=folder / "cache", base_source=f"oci:{base}", **kw
    )  # type: ignore[arg-type]
    return build_variant_image(project, variant, options)


@pytest.fixture(scope="session")
def shared_wheels(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("wheel-cache")


@pytest.fixture
def project(tmp_path: Path) -> Project:
    return load_project(copy_project(tmp_path / "proj"))
