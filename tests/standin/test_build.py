"""The stand-in builds bit for bit the same twice, runs in the real Docker engine with the
upstream image's layout, and can be pushed to a real registry."""

from __future__ import annotations

import json
import subprocess

import pytest
import requests

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError
from fsnbuild.standin import REPOSITORY, TAG, serve_standin
from fsnbuild.standin.rootfs import mounts_below
from tests.conftest import ROOT, Build

from .conftest import Registry

pytestmark = pytest.mark.slow

IMAGE = f"{REPOSITORY}:{TAG}"


def _tree_diff(first: Build, second: Build) -> str:
    lines = []
    for name in ("os-root.manifest", "app-root.manifest"):
        a = (first.out / "work" / name).read_text().splitlines()
        b = set((second.out / "work" / name).read_text().splitlines())
        lines += [f"{name}: {line}" for line in a if line not in b][:20]
    return "\n".join(lines)


def test_two_builds_in_unlike_folders_umasks_and_zones_give_one_digest(
    two_builds: tuple[Build, Build],
) -> None:
    first, second = two_builds
    assert first.layers == second.layers, _tree_diff(first, second)
    assert first.config == second.config
    assert first.manifest == second.manifest
    print(f"stand-in {first.manifest}: {first.seconds} s and {second.seconds} s (in parallel)")


def test_build_reproduces_the_digest_pinned_in_variants_toml(
    two_builds: tuple[Build, Build],
) -> None:
    # Built on this machine from the committed base lock and the live Debian mirror: equal to
    # the digest pinned when variants.toml was written elsewhere, or the pin must be renewed.
    from fsnbuild.config import load_project

    assert two_builds[0].manifest == str(load_project(ROOT / "variants.toml").base.digest)


def test_both_trees_list_the_same_files_owners_and_hashes(two_builds: tuple[Build, Build]) -> None:
    first, second = two_builds
    for name in ("os-root.manifest", "app-root.manifest"):
        a = (first.out / "work" / name).read_text()
        b = (second.out / "work" / name).read_text()
        # The app tree is written under each build's umask and only normalised in the tar;
        # compare it without the mode column.
        if name == "app-root.manifest":
            a, b = _without_modes(a), _without_modes(b)
        assert a == b, _tree_diff(first, second)


def _without_modes(text: str) -> list[str]:
    return [" ".join(line.split()[:1] + line.split()[2:]) for line in text.splitlines()]


def test_build_leaves_nothing_mounted_and_no_trees(two_builds: tuple[Build, Build]) -> None:
    for build in two_builds:
        assert mounts_below(build.out) == []
        assert not (build.out / "work" / "os-root").exists()


def test_image_has_two_layers_within_size_budget(two_builds: tuple[Build, Build]) -> None:
    build = two_builds[0]
    assert len(build.layers) == 2
    print(f"layer sizes (gzip): {build.sizes}")
    # Debian minbase + python3.11 is about 60 MB gzipped, flwr and its wheels about 35 MB.
    assert 30_000_000 < build.sizes[0] < 120_000_000
    assert 10_000_000 < build.sizes[1] < 100_000_000


def test_layout_config_labels_it_a_standin_with_the_upstream_layout(
    two_builds: tuple[Build, Build],
) -> None:
    layout = two_builds[0].layout
    index = json.loads((layout / "index.json").read_text())
    manifest_digest = Digest.parse(index["manifests"][0]["digest"])
    manifest = json.loads((layout / "blobs/sha256" / manifest_digest.hex).read_bytes())
    config = json.loads((layout / "blobs/sha256" / manifest["config"]["digest"][7:]).read_bytes())
    runtime = config["config"]
    assert str(manifest_digest) == two_builds[0].manifest
    assert runtime["User"] == "app"
    assert runtime["WorkingDir"] == "/app"
    assert runtime["Entrypoint"] == ["flower-supernode"]
    assert (
        "PATH=/python/venv/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
        in (runtime["Env"])
    )
    assert "VIRTUAL_ENV=/python/venv" in runtime["Env"]
    assert runtime["Labels"]["io.fsnbuild.standin"] == "true"
    assert "NOT the upstream" in runtime["Labels"]["org.opencontainers.image.description"]
    assert config["created"] == "2026-01-01T00:00:00Z"


def _docker(*args: str) -> str:
    result = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    return result.stdout.strip()


@pytest.fixture(scope="module")
def loaded(two_builds: tuple[Build, Build]) -> str:
    try:
        _docker("info", "--format", "{{.ServerVersion}}")
    except (AssertionError, FileNotFoundError):
        pytest.skip("no Docker engine")
    _docker("load", "-i", str(two_builds[0].archive))
    return IMAGE


def _run(image: str, *command: str, entrypoint: str | None = None) -> str:
    args = ["run", "--rm", "--network", "none"]
    if entrypoint is not None:
        args += ["--entrypoint", entrypoint]
    return _docker(*args, image, *command)


def test_docker_runs_flwr_1_25_0_from_the_venv(loaded: str) -> None:
    code = "import flwr, sys; print(flwr.__version__, sys.prefix)"
    assert _run(loaded, "-c", code, entrypoint="python") == "1.25.0 /python/venv"


def test_container_runs_as_app_49999_in_slash_app(loaded: str) -> None:
    assert _run(loaded, "-c", "id -u; id -g; pwd", entrypoint="sh").split() == [
        "49999",
        "49999",
        "/app",
    ]


def test_venv_and_app_are_owned_by_app(loaded: str) -> None:
    out = _run(
        loaded,
        "-c",
        "stat -c '%u:%g %n' /python/venv /python/venv/bin/flower-supernode /app",
        entrypoint="sh",
    )
    assert [line.split()[0] for line in out.splitlines()] == ["49999:49999"] * 3


def test_entrypoint_flower_supernode_answers_help(loaded: str) -> None:
    assert "usage: flower-supernode" in _run(loaded, "--help")


def test_image_names_no_build_machine(loaded: str) -> None:
    out = _run(loaded, "-c", "cat /etc/apt/sources.list; ls /var/lib/apt/lists", entrypoint="sh")
    assert "http" not in out
    assert "_dists_" not in out


def test_served_standin_has_the_built_digest_in_the_registry(
    two_builds: tuple[Build, Build], registry: Registry
) -> None:
    build = two_builds[0]
    pushed = serve_standin(build.layout, registry.host, expected=Digest.parse(build.manifest))
    response = requests.head(
        f"http://{registry.host}/v2/{REPOSITORY}/manifests/{TAG}",
        headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
        timeout=10,
    )
    assert str(pushed) == build.manifest
    assert response.headers["Docker-Content-Digest"] == build.manifest


def test_serve_refuses_a_layout_that_is_not_the_pinned_digest(
    two_builds: tuple[Build, Build], registry: Registry
) -> None:
    wrong = Digest.of_bytes(b"not the stand-in")
    with pytest.raises(DigestMismatchError, match=str(wrong)):
        serve_standin(two_builds[0].layout, registry.host, repo="fsnbuild/other", expected=wrong)
    missing = requests.head(f"http://{registry.host}/v2/fsnbuild/other/manifests/{TAG}", timeout=10)
    assert missing.status_code == 404
