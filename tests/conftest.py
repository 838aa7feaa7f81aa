"""Fixtures shared across areas: the stand-in base, built twice per session (in unlike
folders, umasks and time zones, to prove it reproduces) and used by every image test."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.layout import read_layout

ROOT = Path(__file__).resolve().parents[1]


# Runs in a fresh interpreter, so the umask and TZ given to the process are the ones the
# build sees from its first line on.
_BUILD = """
import json, sys, time
from pathlib import Path
from fsnbuild.config.load import load_project
from fsnbuild.standin import build_standin_for_project

out = Path(sys.argv[2])
started = time.monotonic()
image = build_standin_for_project(
    load_project(Path(sys.argv[1])),
    work_dir=out / "work",
    cache_dir=out / "wheel-cache",
    out_layout=out / "layout",
    docker_archive=out / "standin.tar",
)
print(json.dumps({
    "manifest": str(image.manifest_digest),
    "config": str(image.config_digest),
    "layers": [str(layer.digest) for layer in image.layers],
    "sizes": [layer.size for layer in image.layers],
    "seconds": round(time.monotonic() - started, 1),
}))
"""


@dataclass(frozen=True)
class Build:
    out: Path
    manifest: str
    config: str
    layers: list[str]
    sizes: list[int]
    seconds: float

    @property
    def layout(self) -> Path:
        return self.out / "layout"

    @property
    def archive(self) -> Path:
        return self.out / "standin.tar"


def _start_build(out: Path, *, umask: int, tz: str) -> subprocess.Popen[str]:
    out.mkdir(parents=True)
    env = {**os.environ, "TZ": tz}
    return subprocess.Popen(
        [sys.executable, "-c", _BUILD, str(ROOT / "variants.toml"), str(out)],
        cwd=out,
        env=env,
        umask=umask,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _finish(proc: subprocess.Popen[str], out: Path) -> Build:
    stdout, stderr = proc.communicate(timeout=1800)
    if proc.returncode != 0:
        raise RuntimeError(f"stand-in build in {out} failed:\n{stderr[-4000:]}")
    result = json.loads(stdout.strip().splitlines()[-1])
    return Build(out=out, **result)


@pytest.fixture(scope="session")
def two_builds(tmp_path_factory: pytest.TempPathFactory) -> tuple[Build, Build]:
    """The stand-in built twice at once, in unlike folders, under umask 022/077, UTC/Tokyo."""
    if os.geteuid() != 0 or shutil.which("debootstrap") is None:
        pytest.skip("building the stand-in needs root and debootstrap")
    first_out = tmp_path_factory.mktemp("standin-a") / "build"
    second_out = tmp_path_factory.mktemp("standin-b") / "a-deeper" / "folder"
    first = _start_build(first_out, umask=0o022, tz="UTC")
    second = _start_build(second_out, umask=0o077, tz="Asia/Tokyo")
    return _finish(first, first_out), _finish(second, second_out)


@pytest.fixture(scope="session")
def standin_layout(
    tmp_path_factory: pytest.TempPathFactory, request: pytest.FixtureRequest
) -> Path:
    """An OCI layout of the stand-in base: reused from out/ when it is the pinned digest there,
    else the first of the two reproducibility builds (``two_builds``)."""
    project = load_project(ROOT / "variants.toml")
    existing = ROOT / "out" / "supernode-standin.oci"
    if existing.is_dir():
        scratch = tmp_path_factory.mktemp("probe")
        if read_layout(existing, BlobStore(scratch)).manifest_digest == project.base.digest:
            return existing
    two_builds: tuple[Build, Build] = request.getfixturevalue("two_builds")
    return two_builds[0].layout


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):  # type: ignore[no-untyped-def]
    """In CI every tool a test needs is installed, so a skip means a test ran nothing: fail it."""
    outcome = yield
    report = outcome.get_result()
    if os.environ.get("CI") and report.skipped and not hasattr(report, "wasxfail"):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may be: {report.longrepr}"
