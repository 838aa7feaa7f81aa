"""Fixtures for the stand-in tests: two real builds (different folders, umask and time zone),
each in its own process, and a real reference registry on 127.0.0.1."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests

REPO_ROOT = Path(__file__).resolve().parents[2]
REGISTRY_BINARY = "/usr/bin/docker-registry"

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
        [sys.executable, "-c", _BUILD, str(REPO_ROOT / "variants.toml"), str(out)],
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


@dataclass(frozen=True)
class Registry:
    host: str  # 127.0.0.1:PORT, plain HTTP


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Registry]:
    """``docker-registry serve`` on a free loopback port, storing under a temporary folder."""
    if shutil.which(REGISTRY_BINARY) is None:
        pytest.skip(f"{REGISTRY_BINARY} is missing (apt-get install docker-registry)")
    root = tmp_path_factory.mktemp("registry")
    port = _free_port()
    config = {
        "version": "0.1",
        "storage": {"filesystem": {"rootdirectory": str(root / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "fsnbuild-standin-test"},
    }
    # JSON is YAML too.
    (root / "config.yml").write_text(json.dumps(config))
    with (root / "registry.log").open("wb") as log:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(root / "config.yml")], stdout=log, stderr=log
        )
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if requests.get(f"http://127.0.0.1:{port}/v2/", timeout=1).status_code == 200:
                    break
            except requests.ConnectionError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError((root / "registry.log").read_text())
            time.sleep(0.1)
        yield Registry(f"127.0.0.1:{port}")
    finally:
        proc.terminate()
        proc.wait(timeout=10)
