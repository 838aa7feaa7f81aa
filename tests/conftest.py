"""Fixtures shared across areas: the stand-in base, built once per session."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.layout import read_layout

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def standin_layout(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An OCI layout of the stand-in base: reused from out/ when it is the pinned digest there,
    else built from scratch (about 90 s)."""
    from fsnbuild.standin import build_standin_for_project

    project = load_project(ROOT / "variants.toml")
    existing = ROOT / "out" / "supernode-standin.oci"
    if existing.is_dir():
        scratch = tmp_path_factory.mktemp("probe")
        if read_layout(existing, BlobStore(scratch)).manifest_digest == project.base.digest:
            return existing
    work = tmp_path_factory.mktemp("standin")
    build_standin_for_project(
        project, work_dir=work / "work", cache_dir=work / "wheels", out_layout=work / "layout"
    )
    shutil.rmtree(work / "work", ignore_errors=True)
    return work / "layout"
