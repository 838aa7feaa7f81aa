"""Frozen dataclasses for everything variants.toml describes."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from packaging.utils import NormalizedName, canonicalize_name

from fsnbuild.digest import Digest


@dataclass(frozen=True)
class Product:
    name: str
    version: str
    image_name: str  # pattern with {framework} and {version}
    epoch: int  # seconds since 1970: every time stamp fsnbuild writes

    def image_ref(self, framework: str) -> str:
        return self.image_name.format(framework=framework, version=self.version)


@dataclass(frozen=True)
class Base:
    repository: str
    tag: str
    digest: Digest
    provides: tuple[str, ...]  # requirements the base image already satisfies
    standin: bool  # True when the digest names fsnbuild's local stand-in, not upstream

    @property
    def reference(self) -> str:
        return f"{self.repository}:{self.tag}@{self.digest}"


@dataclass(frozen=True)
class Target:
    python: str  # "3.11"
    implementation: str  # "cpython"
    os: str  # "linux"
    arch: str  # "x86_64"
    libc: str  # "glibc"
    glibc: str  # "2.28": the oldest glibc the appliance may have

    @property
    def manylinux_tag(self) -> str:
        return f"manylinux_{self.glibc.replace('.', '_')}_{self.arch}"

    @property
    def uv_platform(self) -> str:
        return f"{self.arch}-manylinux_{self.glibc.replace('.', '_')}"

    @property
    def platform_tags(self) -> tuple[str, ...]:
        """Every platform tag the target accepts, best first (pip's --platform takes them one
        by one: it does not widen a manylinux tag to older glibc levels)."""
        newest = int(self.glibc.split(".")[1])
        tags = [f"manylinux_2_{minor}_{self.arch}" for minor in range(newest, 4, -1)]
        legacy = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}
        tags += [f"{legacy[m]}_{self.arch}" for m in (17, 12, 5) if m <= newest]
        return tuple(tags)

    @property
    def abi(self) -> str:
        return "cp" + self.python.replace(".", "")

    def describe(self) -> str:
        return f"{self.implementation} {self.python} on {self.manylinux_tag}"


@dataclass(frozen=True)
class Index:
    name: str
    url: str | None  # None: the resolver's configured default (default index) or unset
    default: bool


@dataclass(frozen=True)
class Variant:
    name: str
    framework: str
    packages: tuple[str, ...]
    routes: tuple[tuple[NormalizedName, str], ...]  # package -> index name, sorted
    smoke: tuple[str, ...]  # modules the smoke check imports
    heavy: tuple[NormalizedName, ...]  # packages that get a layer of their own

    def index_for(self, package: str) -> str | None:
        name = canonicalize_name(package)
        return dict(self.routes).get(name)


@dataclass(frozen=True)
class DiskSettings:
    distribution: str
    release: str
    size_gib: int


@dataclass(frozen=True)
class Project:
    path: Path
    product: Product
    base: Base
    target: Target
    indexes: dict[str, Index]
    variants: dict[str, Variant]
    disk: DiskSettings
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def root(self) -> Path:
        return self.path.parent

    @property
    def locks_dir(self) -> Path:
        return self.root / "locks"

    @property
    def default_index(self) -> Index:
        return next(index for index in self.indexes.values() if index.default)

    def canonical(self, value: Any) -> str:
        """A stable JSON text of a dataclass, for fingerprints."""
        return json.dumps(_plain(value), sort_keys=True, separators=(",", ":"))


def _plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return _plain(asdict(value))
    if isinstance(value, dict):
        return {str(k): _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_plain(v) for v in value]
    if isinstance(value, Digest):
        return str(value)
    if isinstance(value, Path):
        return value.as_posix()
    return value
