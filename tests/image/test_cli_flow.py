"""The image command as users run it: wheelhouse for an air-gapped build, --offline, --push to a
real registry (skipping blobs it has), the docker:// base through a mirror, and gc."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.sources import fetch_image, parse_source
from fsnbuild.standin import serve_standin
from tests.oci.conftest import run_registry

from .conftest import ROOT

pytestmark = pytest.mark.slow


def fsnbuild(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    import os

    return subprocess.run(
        [sys.executable, "-m", "fsnbuild", *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env={**os.environ, **(env or {})},
    )


def test_offline_build_from_a_wheelhouse_push_and_gc(tmp_path: Path, standin_layout: Path) -> None:
    house, online, offline = tmp_path / "wheelhouse", tmp_path / "online", tmp_path / "offline"
    filled = fsnbuild("wheelhouse", "-v", "sklearn", str(house), "--cache-dir", str(online))
    assert filled.returncode == 0, filled.stderr
    assert len(list(house.glob("*.whl"))) == 68

    with run_registry(tmp_path / "registry") as registry:
        base_digest = serve_standin(standin_layout, registry.host)
        mirror = {"FSNBUILD_REGISTRY_MIRROR": registry.host}
        built = fsnbuild(
            "image",
            "-v",
            "sklearn",
            "--offline",
            "--wheelhouse",
            str(house),
            "--cache-dir",
            str(offline),
            "--out",
            str(offline / "out"),
            env=mirror,
        )
        # offline, a registry base can only come from the cache, which is empty here
        assert built.returncode == 1 and "is not in the cache" in built.stderr
        built = fsnbuild(
            "image", "-v", "sklearn", "--offline", "--wheelhouse", str(house),
            "--cache-dir", str(offline), "--out", str(offline / "out"),
            "--base", f"oci:{standin_layout}",
        )  # fmt: skip
        assert built.returncode == 0, built.stderr
        summary = json.loads((offline / "out" / "flower-supernode-sklearn-1.25.0.json").read_text())
        assert summary["base"] == str(base_digest)

        target = f"docker://{registry.host}/flower-supernode-sklearn:1.25.0"
        pushed = fsnbuild(
            "image",
            "-v",
            "sklearn",
            "--cache-dir",
            str(offline),
            "--out",
            str(offline / "out"),
            "--push",
            target,
            env=mirror,
        )
        assert pushed.returncode == 0, pushed.stderr
        assert "cache hit" in pushed.stdout and summary["manifest"] in pushed.stdout
        again = fsnbuild(
            "image",
            "-v",
            "sklearn",
            "--cache-dir",
            str(offline),
            "--out",
            str(offline / "out"),
            "--push",
            target,
            env=mirror,
        )
        assert again.returncode == 0, again.stderr
        fresh = BlobStore(tmp_path / "pulled")
        pulled = fetch_image(parse_source(target), Digest.parse(summary["manifest"]), fresh)
        assert [str(d.digest) for d in pulled.layers] == summary["layers"]

    junk = BlobStore(offline / "oci").put_bytes(b"nobody refers to me")
    collected = fsnbuild("gc", "--cache-dir", str(offline))
    assert collected.returncode == 0 and "removed 1 blobs" in collected.stdout
    assert not BlobStore(offline / "oci").has(junk)
    still = fsnbuild(
        "image",
        "-v",
        "sklearn",
        "--offline",
        "--cache-dir",
        str(offline),
        "--out",
        str(offline / "out"),
        "--base",
        f"oci:{standin_layout}",
    )
    assert still.returncode == 0 and "cache hit" in still.stdout


def test_offline_build_without_the_wheel_names_package_and_wheelhouse(
    tmp_path: Path, standin_layout: Path
) -> None:
    (tmp_path / "empty").mkdir()
    result = fsnbuild(
        "image",
        "-v",
        "sklearn",
        "--offline",
        "--wheelhouse",
        str(tmp_path / "empty"),
        "--cache-dir",
        str(tmp_path / "c"),
        "--base",
        f"oci:{standin_layout}",
        "--out",
        str(tmp_path / "out"),
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "scipy" in result.stderr and str(tmp_path / "empty") in result.stderr
