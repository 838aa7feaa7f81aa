"""From planned layers and fetched wheels to layer blobs: install each plan alone, then tar it."""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.utils import NormalizedName

from fsnbuild.errors import WheelError
from fsnbuild.layers.install import InstalledDist, VenvScheme, install_wheel
from fsnbuild.layers.plan import LayerPlan
from fsnbuild.layers.tarball import LayerBlob, tar_tree

log = logging.getLogger(__name__)

# Mapping keys are invariant for type checkers: accept plain and normalized names alike.
Wheels = Mapping[NormalizedName, Path] | Mapping[str, Path]


@dataclass(frozen=True)
class BuiltLayer:
    plan: LayerPlan
    blob: LayerBlob
    dists: tuple[InstalledDist, ...]  # in install order (by name)


def _set_times(tree: Path, epoch: int) -> None:
    # Files written now are newer than any epoch in the past and get clamped by tar_tree, but a
    # build machine whose clock is behind the epoch would leak its clock; set them explicitly.
    for folder, dirs, files in os.walk(tree):
        for name in (*dirs, *files):
            os.utime(os.path.join(folder, name), (epoch, epoch), follow_symlinks=False)


def build_layer(
    plan: LayerPlan,
    wheels: Wheels,
    work_dir: Path,
    out_dir: Path,
    *,
    epoch: int,
    scheme: VenvScheme | None = None,
    owner: tuple[int, int] | None = (0, 0),
) -> BuiltLayer:
    """Install the wheels of ``plan`` into an empty tree under ``work_dir`` and tar it."""
    scheme = scheme or VenvScheme()
    work_dir.mkdir(parents=True, exist_ok=True)
    tree = Path(tempfile.mkdtemp(prefix=f"{plan.name}.", dir=work_dir))
    try:
        dists = []
        for package in sorted(plan.packages, key=lambda p: p.name):
            wheel = wheels.get(package.name)
            if wheel is None:
                raise WheelError(f"{package.pin}: no fetched wheel for layer {plan.name}")
            dists.append(install_wheel(wheel, tree, scheme))

        _set_times(tree, epoch)

        pins = " ".join(p.pin for p in plan.packages)
        blob = tar_tree(tree, out_dir, epoch=epoch, owner=owner, comment=f"fsnbuild: {pins}")
    finally:
        shutil.rmtree(tree, ignore_errors=True)
    log.info("layer %s: %s (%d bytes)", plan.name, blob.digest.short, blob.size)
    return BuiltLayer(plan, blob, tuple(dists))


def build_layers(
    plans: Sequence[LayerPlan],
    wheels: Wheels,
    work_dir: Path,
    out_dir: Path,
    *,
    epoch: int,
    scheme: VenvScheme | None = None,
    owner: tuple[int, int] | None = (0, 0),
    jobs: int | None = None,
    on_layer: Callable[[BuiltLayer], None] | None = None,
) -> list[BuiltLayer]:
    """``build_layer`` for every plan; returned (and reported to ``on_layer``) in plan order.

    Layers are independent, so ``jobs`` of them are built at once (default: one per core, at
    most 4); gzip and zlib release the GIL, so threads use the cores. The bytes do not depend
    on ``jobs``.
    """
    workers = jobs or min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="layer") as pool:
        futures = [
            pool.submit(
                build_layer,
                plan,
                wheels,
                work_dir,
                out_dir,
                epoch=epoch,
                scheme=scheme,
                owner=owner,
            )
            for plan in plans
        ]
        built = []
        for future in futures:
            layer = future.result()
            if on_layer is not None:
                on_layer(layer)
            built.append(layer)
    return built
