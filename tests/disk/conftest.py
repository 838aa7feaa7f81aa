"""Shared fixtures for the disk tests: the real sklearn container image, built by fsnbuild on
the stand-in base, and one sklearn disk build shared by the rebuild and boot tests.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsnbuild.config import Project, load_project
from fsnbuild.digest import Digest
from fsnbuild.disk import DiskResult, build_disk
from fsnbuild.image.build import Options, build_variant_image

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1767225600


@dataclass(frozen=True)
class ImageArchive:
    path: Path
    ref: str
    digest: Digest


@dataclass(frozen=True)
class BuiltDisk:
    result: DiskResult
    seconds: float
    phases: tuple[tuple[str, float], ...]
    project: Project
    cache_dir: Path


@pytest.fixture(scope="session")
def image_archive(tmp_path_factory: pytest.TempPathFactory, standin_layout: Path) -> ImageArchive:
    """The real flower-supernode-sklearn image, as ``fsnbuild image`` builds it."""
    work = tmp_path_factory.mktemp("sklearn-image")
    options = Options(
        out_dir=work / "out", cache_dir=work / "cache", base_source=f"oci:{standin_layout}"
    )
    result = build_variant_image(load_project(ROOT / "variants.toml"), "sklearn", options)
    return ImageArchive(result.docker_archive, result.ref, result.image.manifest_digest)


def lock_sha256(project: Project, variant: str) -> str:
    """The sha256 of the variant's real lock file (the disk records which lock it carries)."""
    return hashlib.sha256((project.locks_dir / f"{variant}.pylock.toml").read_bytes()).hexdigest()


def build(
    project: Project, archive: ImageArchive, out: Path, cache: Path, rebuild: bool = False
) -> BuiltDisk:
    phases: list[tuple[str, float]] = []
    started = time.monotonic()
    result = build_disk(
        project,
        project.variants["sklearn"],
        image_archive=archive.path,
        image_ref=archive.ref,
        image_digest=archive.digest,
        lock_sha256=lock_sha256(project, "sklearn"),
        out_dir=out,
        cache_dir=cache,
        log_path=out / "build.log",
        progress=lambda phase, elapsed: phases.append((phase, elapsed)),
        rebuild=rebuild,
    )
    seconds = time.monotonic() - started
    logging.getLogger(__name__).warning("disk build %.0f s: %s", seconds, result.timings)
    return BuiltDisk(result, seconds, tuple(phases), project, cache)


@pytest.fixture(scope="session")
def sklearn_disk(
    image_archive: ImageArchive, tmp_path_factory: pytest.TempPathFactory
) -> BuiltDisk:
    """One build shared by the rebuild and boot tests."""
    project = load_project(ROOT / "variants.toml")
    base = tmp_path_factory.mktemp("disk")
    return build(project, image_archive, base / "out", base / "cache")
