"""plan_layers and build_layers: variants that share a wheel share its layer, byte for byte."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import ImageError
from fsnbuild.layers.build import build_layers
from fsnbuild.layers.plan import LARGE_WHEEL_BYTES, SHARED_LAYER, installed_dists, plan_layers
from fsnbuild.lock.model import LockedPackage, LockedWheel

from .wheels import build_wheel, locked

EPOCH = 1767225600


def _pkg(name: str, version: str = "1.0", size: int = 1000) -> LockedPackage:
    wheel = LockedWheel(f"{name}-{version}-py3-none-any.whl", Digest.of_bytes(name.encode()), size)
    return LockedPackage(name, version, "pypi", (wheel,))  # type: ignore[arg-type]


def _names(plans: list) -> list[tuple[str, list[str]]]:  # type: ignore[type-arg]
    return [(p.name, [q.name for q in p.packages]) for p in plans]


def test_heavy_and_large_packages_get_layers_of_their_own() -> None:
    packages = [
        _pkg("tqdm"),
        _pkg("numpy", size=LARGE_WHEEL_BYTES + 1),
        _pkg("torch"),
        _pkg("idna"),
        _pkg("small-but-at-limit", size=LARGE_WHEEL_BYTES),
    ]
    plans = plan_layers(packages, heavy={"Torch"}, base_has={})
    assert _names(plans) == [
        ("pkg-numpy", ["numpy"]),
        ("pkg-torch", ["torch"]),
        (SHARED_LAYER, ["idna", "small-but-at-limit", "tqdm"]),
    ]


def test_skips_packages_the_base_has_at_the_same_version() -> None:
    plans = plan_layers(
        [_pkg("flwr", "1.25.0"), _pkg("grpcio", "1.70"), _pkg("tqdm")],
        heavy=set(),
        base_has={"Flwr": "1.25.0", "grpcio": "1.70.0"},
    )
    assert _names(plans) == [(SHARED_LAYER, ["tqdm"])]


def test_rejects_a_lock_that_changes_a_base_package_version() -> None:
    with pytest.raises(ImageError) as caught:
        plan_layers([_pkg("flwr", "1.26.0")], heavy=set(), base_has={"flwr": "1.25.0"})
    assert "flwr" in caught.value.message
    assert "1.26.0" in caught.value.message and "1.25.0" in caught.value.message


def test_caps_own_layers_keeping_heavy_then_largest() -> None:
    packages = [_pkg(f"big{i:02d}", size=LARGE_WHEEL_BYTES + i) for i in range(10)]
    plans = plan_layers([*packages, _pkg("torch")], heavy={"torch"}, base_has={}, max_own_layers=3)
    assert _names(plans) == [
        ("pkg-big08", ["big08"]),
        ("pkg-big09", ["big09"]),
        ("pkg-torch", ["torch"]),
        (SHARED_LAYER, [f"big{i:02d}" for i in range(8)]),
    ]


def test_plan_is_independent_of_input_order() -> None:
    packages = [_pkg("b"), _pkg("a", size=LARGE_WHEEL_BYTES * 2), _pkg("c")]
    forward = plan_layers(packages, heavy=set(), base_has={})
    backward = plan_layers(list(reversed(packages)), heavy=set(), base_has={})
    assert forward == backward


def test_two_variants_sharing_a_package_get_the_identical_layer(tmp_path: Path) -> None:
    wheels = {
        name: build_wheel(
            tmp_path / "w",
            name,
            files={f"{name}/__init__.py": f"NAME = {name!r}\n".encode()},
            entry_points=f"[console_scripts]\n{name}-cli = {name}:main\n",
        )
        for name in ("numpy", "sklearnish", "tfish")
    }
    packages = {name: locked(path) for name, path in wheels.items()}
    paths = {packages[name].name: path for name, path in wheels.items()}

    def variant(label: str, extra: str) -> dict[str, Digest]:
        plans = plan_layers([packages[extra], packages["numpy"]], heavy={"numpy"}, base_has={})
        built = build_layers(
            plans, paths, tmp_path / label / "work", tmp_path / label / "blobs", epoch=EPOCH
        )
        return {layer.plan.name: layer.blob.digest for layer in built}

    sklearn = variant("sklearn", "sklearnish")
    tensorflow = variant("tensorflow", "tfish")

    assert list(sklearn) == list(tensorflow) == ["pkg-numpy", SHARED_LAYER]
    assert sklearn["pkg-numpy"] == tensorflow["pkg-numpy"]
    assert sklearn[SHARED_LAYER] != tensorflow[SHARED_LAYER]
    blob = tmp_path / "sklearn/blobs" / sklearn["pkg-numpy"].hex
    assert (
        blob.read_bytes() == (tmp_path / "tensorflow/blobs" / sklearn["pkg-numpy"].hex).read_bytes()
    )
    assert list((tmp_path / "sklearn/work").iterdir()) == []


def test_installed_dists_reads_metadata_of_site_packages(tmp_path: Path) -> None:
    lower = tmp_path / "lower"
    upper = tmp_path / "upper"
    for folder, name, version in [
        (lower, "Flwr", "1.25.0"),
        (lower, "grpcio", "1.70.0"),
        (upper, "grpcio", "1.71.0"),
    ]:
        info = folder / f"{name}-{version}.dist-info"
        info.mkdir(parents=True)
        (info / "METADATA").write_text(
            f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n\nbody\n"
        )
    (lower / "not_a_dist").mkdir()

    assert installed_dists(lower) == {"flwr": "1.25.0", "grpcio": "1.70.0"}
    assert installed_dists([lower, upper]) == {"flwr": "1.25.0", "grpcio": "1.71.0"}


def test_installed_dists_rejects_two_versions_in_one_folder(tmp_path: Path) -> None:
    for version in ("1.0", "2.0"):
        info = tmp_path / f"dup-{version}.dist-info"
        info.mkdir()
        (info / "METADATA").write_text(f"Name: dup\nVersion: {version}\n")
    with pytest.raises(ImageError, match=r"dup is installed twice \(1\.0 and 2\.0\)"):
        installed_dists(tmp_path)
