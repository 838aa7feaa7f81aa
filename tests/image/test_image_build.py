"""Building variant images from the committed locks on the stand-in base, in the real engine."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.errors import ConfigError, DigestMismatchError, RegistryError, StaleLockError
from fsnbuild.image.build import Options, build_variant_image
from fsnbuild.image.smoke import smoke_check
from fsnbuild.oci.sources import load_into_docker

from .conftest import ROOT, build, copy_project

pytestmark = pytest.mark.slow

# Runs in a fresh interpreter so that its umask and time zone hold from the first line on.
_BUILD = textwrap.dedent("""
    import json, sys
    from pathlib import Path
    from fsnbuild.config import load_project
    from fsnbuild.image.build import Options, build_variant_image
    project, folder, base = load_project(Path(sys.argv[1])), Path(sys.argv[2]), sys.argv[3]
    options = Options(out_dir=folder / "out", cache_dir=folder / "cache", base_source="oci:" + base)
    result = build_variant_image(project, "sklearn", options)
    image = result.image
    print(json.dumps({"manifest": str(image.manifest_digest), "config": str(image.config_digest),
                      "layers": [str(d.digest) for d in image.layers]}))
""")


def _build_in_process(tmp: Path, name: str, base: Path, umask: str, tz: str) -> dict[str, object]:
    folder = tmp / name
    config = copy_project(folder / "project")
    script = f"import os; os.umask(0o{umask}); exec({_BUILD!r})"
    env = {**os.environ, "TZ": tz}
    done = subprocess.run(
        [sys.executable, "-c", script, str(config), str(folder), str(base)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_two_sklearn_builds_from_empty_caches_are_identical(
    tmp_path: Path, standin_layout: Path
) -> None:
    first = _build_in_process(tmp_path, "a", standin_layout, "022", "UTC")
    second = _build_in_process(
        tmp_path / "other" / "deeper", "b", standin_layout, "077", "Asia/Kathmandu"
    )
    assert first == second
    assert len(first["layers"]) >= 4  # type: ignore[arg-type]


def test_sklearn_image_loads_runs_and_imports_its_stack(
    tmp_path: Path, standin_layout: Path
) -> None:
    project = load_project(ROOT / "variants.toml")
    result = build(project, "sklearn", tmp_path, standin_layout)
    config = result.image.config["config"]
    assert config["User"] == "app" and config["WorkingDir"] == "/app"
    assert config["Labels"]["io.fsnbuild.framework"] == "sklearn"
    assert config["Labels"]["io.fsnbuild.base.digest"] == str(project.base.digest)
    assert result.image.config["created"] == "2026-01-01T00:00:00Z"
    load_into_docker(result.docker_archive)
    versions = json.loads(smoke_check(result.ref, ["sklearn", "pandas"]))
    assert versions["flwr"] == "1.25.0"
    lock = (ROOT / "locks" / "sklearn.txt").read_text()
    assert (
        f"scikit-learn=={versions['sklearn']} " in lock and f"pandas=={versions['pandas']} " in lock
    )

    again = build(project, "sklearn", tmp_path, standin_layout)
    assert again.cache_hit and again.image.manifest_digest == result.image.manifest_digest


def test_tampered_cached_wheel_is_detected_and_refetched(
    tmp_path: Path, standin_layout: Path
) -> None:
    project = load_project(ROOT / "variants.toml")
    first = build(project, "sklearn", tmp_path, standin_layout)
    wheel = next((tmp_path / "cache" / "wheels").rglob("scipy-*.whl"))
    wheel.write_bytes(b"not scipy")
    for records in ("builds", "layers"):
        for record in (tmp_path / "cache" / records).glob("*.json"):
            record.unlink()
    second = build(project, "sklearn", tmp_path, standin_layout)
    assert second.image.manifest_digest == first.image.manifest_digest
    assert wheel.read_bytes()[:2] == b"PK"


def test_tensorflow_imports_and_shares_layers_with_sklearn(
    tmp_path: Path, standin_layout: Path
) -> None:
    project = load_project(ROOT / "variants.toml")
    sklearn = build(project, "sklearn", tmp_path, standin_layout)
    tensorflow = build(project, "tensorflow", tmp_path, standin_layout)
    shared = {d.digest for d in sklearn.image.layers} & {d.digest for d in tensorflow.image.layers}
    base_layers = len(sklearn.image.layers) - sklearn.layers_built - sklearn.layers_reused
    # the base layers and the pyarrow layer (same wheel, same version) are the same blobs
    assert len(shared) == base_layers + 1
    history = {
        h["comment"]
        for h in tensorflow.image.config["history"]
        if "pyarrow" in h.get("comment", "")
    }
    assert history
    load_into_docker(tensorflow.docker_archive)
    versions = json.loads(smoke_check(tensorflow.ref, ["tensorflow"]))
    assert versions["tensorflow"].startswith("2.")


def test_unknown_variant_is_refused(project: object, tmp_path: Path, standin_layout: Path) -> None:
    with pytest.raises(ConfigError, match="unknown variant 'tensorflo'"):
        build(project, "tensorflo", tmp_path, standin_layout)  # type: ignore[arg-type]


def test_missing_and_stale_locks_are_refused(tmp_path: Path, standin_layout: Path) -> None:
    config = copy_project(tmp_path / "p")
    (tmp_path / "p" / "locks" / "sklearn.pylock.toml").unlink()
    with pytest.raises(StaleLockError, match="no lock for 'sklearn'"):
        build(load_project(config), "sklearn", tmp_path, standin_layout)
    config = copy_project(tmp_path / "q")
    config.write_text(config.read_text().replace('"scikit-learn", "pandas"', '"scikit-learn"'))
    with pytest.raises(
        StaleLockError, match=r"the lock of 'sklearn' is stale \(packages changed\)"
    ):
        build(load_project(config), "sklearn", tmp_path, standin_layout)
    assert not (tmp_path / "out").exists()


def test_wrong_base_digest_names_both_and_keeps_nothing(
    tmp_path: Path, standin_layout: Path
) -> None:
    project = load_project(ROOT / "variants.toml")
    wrong = "sha256:" + "12" * 32
    config = copy_project(tmp_path / "p")
    config.write_text(config.read_text().replace(str(project.base.digest), wrong))
    subprocess.run(
        [sys.executable, "-m", "fsnbuild", "-c", str(config), "lock", "-v", "sklearn"],
        check=True,
        capture_output=True,
    )
    with pytest.raises(DigestMismatchError) as info:
        build(load_project(config), "sklearn", tmp_path, standin_layout)
    assert wrong in str(info.value) and str(project.base.digest) in str(info.value)
    assert (
        not list((tmp_path / "cache" / "builds").glob("*.json"))
        if (tmp_path / "cache" / "builds").exists()
        else True
    )


def test_unreachable_registry_is_named(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FSNBUILD_REGISTRY_MIRROR", "127.0.0.1:9")
    options = Options(out_dir=tmp_path / "out", cache_dir=tmp_path / "cache")
    with pytest.raises(RegistryError, match=r"127\.0\.0\.1:9"):
        build_variant_image(load_project(ROOT / "variants.toml"), "sklearn", options)


def test_full_output_disk_fails_cleanly_and_leaves_nothing_half_written(
    tmp_path: Path, standin_layout: Path
) -> None:
    project = load_project(ROOT / "variants.toml")
    build(project, "sklearn", tmp_path, standin_layout)  # fill the cache
    small = tmp_path / "small"
    small.mkdir()
    subprocess.run(["mount", "-t", "tmpfs", "-o", "size=2m", "tmpfs", str(small)], check=True)
    try:
        options = Options(
            out_dir=small, cache_dir=tmp_path / "cache", base_source=f"oci:{standin_layout}"
        )
        with pytest.raises(OSError):
            build_variant_image(project, "sklearn", options)
        assert sorted(p.name for p in small.iterdir()) == []
        result = subprocess.run(
            [
                sys.executable,
                "-m",
                "fsnbuild",
                "image",
                "-v",
                "sklearn",
                "--out",
                str(small),
                "--cache-dir",
                str(tmp_path / "cache"),
                "--base",
                f"oci:{standin_layout}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
        )
        assert result.returncode == 1 and "Traceback" not in result.stderr
        assert "No space left on device" in result.stderr
        assert sorted(p.name for p in small.iterdir()) == []
    finally:
        subprocess.run(["umount", str(small)], check=True)


def test_changed_lock_rebuilds_only_the_layers_whose_packages_changed(
    tmp_path: Path, standin_layout: Path
) -> None:
    from fsnbuild.lock import run

    config = copy_project(tmp_path / "p")
    first = build(load_project(config), "sklearn", tmp_path, standin_layout)
    config.write_text(
        config.read_text().replace(
            '"pandas", "flwr-datasets"]', '"pandas", "flwr-datasets", "tabulate"]'
        )
    )
    run.lock(load_project(config), variants=["sklearn"])
    second = build(load_project(config), "sklearn", tmp_path, standin_layout)
    assert not second.cache_hit
    assert (second.layers_built, second.layers_reused) == (1, first.layers_built - 1)
    old, new = [d.digest for d in first.image.layers], [d.digest for d in second.image.layers]
    assert old[:-1] == new[:-1] and old[-1] != new[-1]  # only the shared "packages" layer moved
