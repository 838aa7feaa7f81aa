"""Shared fixtures for the disk tests: a small SuperNode stand-in image and one sklearn build.

The stand-in is a docker-archive made from Debian's busybox-static, tagged like the real
image, whose entrypoint prints and retries like a SuperNode that cannot reach its SuperLink.
It stands in until the real flower-supernode-sklearn image is built by ``fsnbuild image``.
"""

from __future__ import annotations

import hashlib
import io
import logging
import subprocess
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsnbuild.config import Project, load_project
from fsnbuild.digest import Digest
from fsnbuild.disk import DiskResult, build_disk

ROOT = Path(__file__).resolve().parents[2]
EPOCH = 1767225600
SUPERNODE_SCRIPT = b"""#!/bin/sh
echo "flower-supernode (fsnbuild test stand-in) $*"
while true; do
    echo "SuperNode: cannot reach the SuperLink; retrying in 5 s"
    sleep 5
done
"""


@dataclass(frozen=True)
class StandinArchive:
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


def _busybox(workdir: Path) -> bytes:
    subprocess.run(
        ["apt-get", "download", "busybox-static"], cwd=workdir, check=True, capture_output=True
    )
    deb = next(workdir.glob("busybox-static_*.deb"))
    subprocess.run(["dpkg-deb", "-x", str(deb), str(workdir / "x")], check=True)
    return (workdir / "x/bin/busybox").read_bytes()


def _root_tar(busybox: bytes) -> bytes:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for name, data, mode in (
            ("bin/busybox", busybox, 0o755),
            ("usr/local/bin/flower-supernode", SUPERNODE_SCRIPT, 0o755),
        ):
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), mode, EPOCH
            tar.addfile(info, io.BytesIO(data))
        for link in ("sh", "sleep"):
            info = tarfile.TarInfo(f"bin/{link}")
            info.type, info.linkname, info.mtime = tarfile.SYMTYPE, "busybox", EPOCH
            tar.addfile(info)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def standin_archive(tmp_path_factory: pytest.TempPathFactory) -> StandinArchive:
    workdir = tmp_path_factory.mktemp("standin")
    ref = "flower-supernode-sklearn:1.25.0-disk-test"
    subprocess.run(
        [
            "docker",
            "import",
            "--change",
            'ENTRYPOINT ["/usr/local/bin/flower-supernode"]',
            "--change",
            "ENV PATH=/usr/local/bin:/bin",
            "-",
            ref,
        ],
        input=_root_tar(_busybox(workdir)),
        check=True,
        capture_output=True,
    )
    archive = workdir / "image.tar"
    subprocess.run(["docker", "save", "-o", str(archive), ref], check=True)
    image_id = subprocess.run(
        ["docker", "image", "inspect", "-f", "{{.Id}}", ref],
        check=True,
        capture_output=True,
        text=True,
    ).stdout.strip()
    subprocess.run(["docker", "rmi", ref], check=True, capture_output=True)
    return StandinArchive(archive, ref, Digest.parse(image_id))


def lock_sha256(project: Project, variant: str) -> str:
    """The sha256 of the variant's real lock file (the disk records which lock it carries)."""
    return hashlib.sha256((project.locks_dir / f"{variant}.pylock.toml").read_bytes()).hexdigest()


def build(
    project: Project, archive: StandinArchive, out: Path, cache: Path, rebuild: bool = False
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
    standin_archive: StandinArchive, tmp_path_factory: pytest.TempPathFactory
) -> BuiltDisk:
    """One build shared by the rebuild and boot tests."""
    project = load_project(ROOT / "variants.toml")
    base = tmp_path_factory.mktemp("disk")
    return build(project, standin_archive, base / "out", base / "cache")
