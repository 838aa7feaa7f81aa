"""Split a lock's packages into layers so that variants share the layers of what they share.

A package with a layer of its own is installed alone into an empty tree, so its layer's bytes
depend only on its wheel: two variants locking the same numpy wheel get the same blob.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name
from packaging.version import InvalidVersion, Version

from fsnbuild.errors import ImageError
from fsnbuild.lock.model import LockedPackage

log = logging.getLogger(__name__)

# A wheel this large is worth a layer of its own: re-downloading it because a small neighbour
# changed costs more than one more layer. numpy, scipy and pandas wheels all exceed it.
LARGE_WHEEL_BYTES = 15 * 1024 * 1024
# overlay2 stacks at most 127 layers; the base brings its own, and pulls get slower with many.
MAX_OWN_LAYERS = 40
SHARED_LAYER = "packages"


@dataclass(frozen=True)
class LayerPlan:
    name: str  # "pkg-<name>" for a package of its own, SHARED_LAYER for the rest
    packages: tuple[LockedPackage, ...]  # sorted by name


def _wheel_bytes(package: LockedPackage) -> int:
    return max((wheel.size or 0 for wheel in package.wheels), default=0)


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def plan_layers(
    packages: Iterable[LockedPackage],
    *,
    heavy: Iterable[str],
    base_has: Mapping[str, str] | Mapping[NormalizedName, str],
    large_bytes: int = LARGE_WHEEL_BYTES,
    max_own_layers: int = MAX_OWN_LAYERS,
) -> list[LayerPlan]:
    """Layers for ``packages``: one per heavy or large package (sorted by name), then the rest.

    Packages the base has at the same version are left out; a different version raises
    ImageError, since the lock must not change what the base brings. Past ``max_own_layers``
    the smallest own-layer packages join the shared layer.
    """
    heavy_names = {canonicalize_name(name) for name in heavy}
    base = {canonicalize_name(name): version for name, version in base_has.items()}
    wanted: list[LockedPackage] = []
    for package in sorted(packages, key=lambda p: canonicalize_name(p.name)):
        name = canonicalize_name(package.name)
        if name in base:
            if not _same_version(package.version, base[name]):
                raise ImageError(
                    f"{name}: the lock pins {package.version} but the base image has {base[name]}",
                    hint="re-lock against the base image's packages (variants.toml [base])",
                )
            continue
        wanted.append(package)

    def is_heavy(package: LockedPackage) -> bool:
        return canonicalize_name(package.name) in heavy_names

    own = [p for p in wanted if is_heavy(p) or _wheel_bytes(p) > large_bytes]
    if len(own) > max_own_layers:
        # Heavy first, then by size: the biggest wheels gain most from a layer of their own.
        ranked = sorted(own, key=lambda p: (not is_heavy(p), -_wheel_bytes(p), p.name))
        own = ranked[:max_own_layers]
        log.info("%d large packages share a layer (cap %d)", len(ranked) - len(own), len(own))
    own_names = {p.name for p in own}
    rest = tuple(p for p in wanted if p.name not in own_names)

    plans = [
        LayerPlan(f"pkg-{canonicalize_name(p.name)}", (p,))
        for p in sorted(own, key=lambda p: p.name)
    ]
    if rest:
        plans.append(LayerPlan(SHARED_LAYER, rest))
    return plans


def installed_dists(site_packages: Path | Iterable[Path]) -> dict[NormalizedName, str]:
    """Name -> version of every ``*.dist-info`` in one site-packages folder, or several in order.

    Across folders (layers, lowest first) a later one wins; within one folder two versions of
    the same project is an ImageError, since what the base has would be ambiguous.
    """
    folders = [site_packages] if isinstance(site_packages, Path) else list(site_packages)
    found: dict[NormalizedName, str] = {}
    for folder in folders:
        here: dict[NormalizedName, str] = {}
        for metadata in sorted(folder.glob("*.dist-info/METADATA")):
            headers = HeaderParser().parsestr(
                metadata.read_text(encoding="utf-8", errors="replace")
            )
            if not headers["Name"] or not headers["Version"]:
                log.warning("%s: no Name or Version; ignored", metadata)
                continue
            name = canonicalize_name(headers["Name"])
            if name in here and here[name] != headers["Version"]:
                raise ImageError(
                    f"{folder}: {name} is installed twice ({here[name]} and {headers['Version']})",
                    hint="remove the stale .dist-info folder from the base image",
                )
            here[name] = headers["Version"]
        found.update(here)
    return dict(sorted(found.items()))
