"""Fixtures for the OCI tests: a real reference registry (``docker-registry serve``) on
127.0.0.1, optionally behind htpasswd or token auth, and small generated gzip layers."""

from __future__ import annotations

import contextlib
import gzip
import io
import json
import shutil
import socket
import subprocess
import tarfile
import time
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import requests

from fsnbuild.digest import Digest
from fsnbuild.oci.image import NewLayer

REGISTRY_BINARY = "/usr/bin/docker-registry"
EPOCH = 1767225600  # 2026-01-01T00:00:00Z


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@dataclass(frozen=True)
class RegistryServer:
    """A running reference registry: ``host`` is ``127.0.0.1:PORT``, served over plain HTTP."""

    host: str
    root: Path
    log: Path

    @property
    def url(self) -> str:
        return f"http://{self.host}"


@contextlib.contextmanager
def run_registry(workdir: Path, auth: Mapping[str, Any] | None = None) -> Iterator[RegistryServer]:
    """Start ``docker-registry serve`` on a free loopback port; stop it on exit.

    The config is JSON, which is also YAML, so no YAML writer is needed.
    """
    if shutil.which(REGISTRY_BINARY) is None:
        pytest.skip(f"{REGISTRY_BINARY} is missing (apt-get install docker-registry)")
    workdir.mkdir(parents=True, exist_ok=True)
    port = free_port()
    config: dict[str, Any] = {
        "version": "0.1",
        "log": {"level": "info", "accesslog": {"disabled": False}},
        "storage": {"filesystem": {"rootdirectory": str(workdir / "data")}},
        "http": {"addr": f"127.0.0.1:{port}", "secret": "fsnbuild-test-secret"},
    }
    if auth:
        config["auth"] = dict(auth)
    config_path = workdir / "config.yml"
    config_path.write_text(json.dumps(config, indent=1))
    log_path = workdir / "registry.log"
    with log_path.open("wb") as log:
        proc = subprocess.Popen(
            [REGISTRY_BINARY, "serve", str(config_path)], stdout=log, stderr=subprocess.STDOUT
        )
    server = RegistryServer(f"127.0.0.1:{port}", workdir / "data", log_path)
    try:
        _wait_until_up(server, proc)
        yield server
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


def _wait_until_up(server: RegistryServer, proc: subprocess.Popen[bytes]) -> None:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"registry exited early:\n{server.log.read_text()}")
        try:
            # 401 counts as up: an auth-protected registry answers /v2/ with a challenge.
            if requests.get(f"{server.url}/v2/", timeout=1).status_code in (200, 401):
                return
        except requests.ConnectionError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"registry did not answer /v2/ within 20 s:\n{server.log.read_text()}")


@pytest.fixture(scope="session")
def registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """An anonymous reference registry shared by the whole session."""
    with run_registry(tmp_path_factory.mktemp("registry")) as server:
        yield server


@pytest.fixture(scope="session")
def htpasswd_registry(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RegistryServer]:
    """A registry requiring basic auth as user ``tester`` with password ``s3cret-pass``."""
    if shutil.which("htpasswd") is None:
        pytest.skip("htpasswd is missing (apt-get install apache2-utils)")
    workdir = tmp_path_factory.mktemp("htpasswd-registry")
    users = workdir / "htpasswd"
    subprocess.run(
        ["htpasswd", "-B", "-b", "-c", str(users), "tester", "s3cret-pass"],
        check=True,
        capture_output=True,
    )
    auth = {"htpasswd": {"realm": "fsnbuild-test", "path": str(users)}}
    with run_registry(workdir, auth) as server:
        yield server


LayerFactory = Callable[..., NewLayer]


def make_layer_file(
    path: Path, files: Mapping[str, bytes], *, comment: str, symlinks: Mapping[str, str] = {}
) -> NewLayer:
    """A reproducible gzip layer tar of ``files`` (name -> bytes) and ``symlinks``."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.USTAR_FORMAT) as tar:
        entries: list[tuple[str, bytes | str]] = [*files.items(), *symlinks.items()]
        for name in sorted({str(Path(n).parent) for n, _ in entries} - {"."}):
            info = tarfile.TarInfo(name)
            info.type, info.mode, info.mtime = tarfile.DIRTYPE, 0o755, EPOCH
            tar.addfile(info)
        for name, content in sorted(entries):
            info = tarfile.TarInfo(name)
            info.mtime = EPOCH
            if isinstance(content, str):
                info.type, info.linkname, info.mode = tarfile.SYMTYPE, content, 0o777
                tar.addfile(info)
            else:
                info.size, info.mode = len(content), 0o755
                tar.addfile(info, io.BytesIO(content))
    plain = raw.getvalue()
    compressed = gzip.compress(plain, mtime=0)
    path.write_bytes(compressed)
    return NewLayer(
        path=path,
        digest=Digest.of_bytes(compressed),
        diff_id=Digest.of_bytes(plain),
        size=len(compressed),
        comment=comment,
    )


@pytest.fixture
def make_layer(tmp_path: Path) -> LayerFactory:
    """Write a small generated gzip layer under tmp_path: make_layer({"a.txt": b"..."})."""
    counter = iter(range(1000))

    def make(files: Mapping[str, bytes], *, comment: str = "test files", **kw: Any) -> NewLayer:
        return make_layer_file(
            tmp_path / f"layer-{next(counter)}.tar.gz", files, comment=comment, **kw
        )

    return make
