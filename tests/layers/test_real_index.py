"""Real wheels of the committed sklearn lock, from the real default index, into stable layers."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fsnbuild.layers.build import build_layers
from fsnbuild.layers.fetch import WheelCache, best_wheel, fetch_wheels, target_tags
from fsnbuild.layers.install import VenvScheme
from fsnbuild.layers.plan import plan_layers
from fsnbuild.lock.indexes import env_var, resolver_default_index
from fsnbuild.lock.model import Lock

EPOCH = 1767225600
LOCKS = Path(__file__).resolve().parents[2] / "locks"
SMALL = 3 * 1024 * 1024
TAGS = target_tags()


def _default_index() -> str:
    # The address is a run-time fact: uv's configured default, unless the operator overrides it.
    return os.environ.get(env_var("pypi")) or resolver_default_index()


@pytest.mark.slow
def test_real_sklearn_wheels_install_and_tar_reproducibly(tmp_path: Path) -> None:
    lock = Lock.read(LOCKS / "sklearn.pylock.toml")
    # A real, small slice of the lock: every package with a small wheel, plus numpy.
    packages = [
        p for p in lock.packages if p.name == "numpy" or (best_wheel(p, TAGS).size or 0) < SMALL
    ]
    assert len(packages) > 20
    urls = {"pypi": _default_index()}
    cache = WheelCache(tmp_path / "cache")

    wheels = fetch_wheels(packages, cache, index_urls=urls, target_tags=TAGS, jobs=8)
    assert sorted(wheels) == sorted(p.name for p in packages)
    # A second fetch is served from the cache: offline, with no index, it still succeeds.
    assert fetch_wheels(packages, cache, index_urls={}, target_tags=TAGS, offline=True) == wheels

    plans = plan_layers(packages, heavy={"numpy"}, base_has={})
    assert plans[0].name == "pkg-numpy"
    old_umask = os.umask(0o077)
    try:
        first = build_layers(plans, wheels, tmp_path / "w1", tmp_path / "b1", epoch=EPOCH)
    finally:
        os.umask(old_umask)
    second = build_layers(plans, wheels, tmp_path / "w2", tmp_path / "b2", epoch=EPOCH, jobs=1)

    for one, two in zip(first, second, strict=True):
        assert one.blob.digest == two.blob.digest
        assert one.blob.path.read_bytes() == two.blob.path.read_bytes()

    # Spot checks on a real install: console scripts point at the venv, RECORDs are stable.
    dists = {d.name: d for layer in first for d in layer.dists}
    assert {d.name for d in dists.values()} == {p.name for p in packages}
    site = VenvScheme().site_packages
    click = dists["click"]
    assert click.dist_info.startswith(site)
    assert any(f.startswith("/python/venv/bin/") for d in dists.values() for f in d.files)
    assert not [f for d in dists.values() for f in d.files if f.endswith(".pyc")]


@pytest.mark.slow
def test_real_numpy_layer_is_shared_by_sklearn_and_tensorflow_locks(tmp_path: Path) -> None:
    urls = {"pypi": _default_index()}
    cache = WheelCache(tmp_path / "cache")
    built = {}
    for variant in ("sklearn", "tensorflow"):
        lock = Lock.read(LOCKS / f"{variant}.pylock.toml")
        numpy = lock.get("numpy")
        assert numpy is not None
        wheels = fetch_wheels([numpy], cache, index_urls=urls, target_tags=TAGS)
        (plan,) = plan_layers([numpy], heavy={"numpy"}, base_has={})
        (layer,) = build_layers([plan], wheels, tmp_path / variant, tmp_path / variant, epoch=EPOCH)
        built[variant] = (best_wheel(numpy, TAGS).sha256, layer.blob)

    (sk_wheel, sk_blob), (tf_wheel, tf_blob) = built["sklearn"], built["tensorflow"]
    assert sk_wheel == tf_wheel  # both locks pin the same numpy wheel ...
    assert sk_blob.digest == tf_blob.digest  # ... so both images carry the same numpy layer
    assert sk_blob.path != tf_blob.path
    assert sk_blob.path.read_bytes() == tf_blob.path.read_bytes()
