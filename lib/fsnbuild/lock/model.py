"""Typed lock entries, and reading of the PEP 751 ``pylock.toml`` files fsnbuild writes.

fsnbuild's pylock files name each wheel by file name, size and sha256, and the index it comes
from by its canonical name in variants.toml (``[packages.tool.fsnbuild] index``); they carry
no URLs, so a lock made through a mirror is byte-identical to one made without it. The build
finds each file again through the named index and verifies it against the recorded hash.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.utils import NormalizedName, canonicalize_name
from tomlkit.exceptions import TOMLKitError

from fsnbuild.digest import Digest
from fsnbuild.errors import LockError


def read_lock_toml(path: Path) -> dict[str, Any]:
    """A lock file's TOML as plain data; a missing, unreadable or damaged file is a LockError."""
    try:
        data: dict[str, Any] = tomlkit.parse(path.read_text(encoding="utf-8")).unwrap()
    except FileNotFoundError:
        raise LockError(f"{path}: no such lock", hint="run `fsnbuild lock` to create it") from None
    except (TOMLKitError, UnicodeDecodeError) as exc:
        raise LockError(
            f"{path}: damaged lock, not valid TOML ({exc})",
            hint="restore it from git or re-run `fsnbuild lock`",
        ) from None
    return data


@dataclass(frozen=True, order=True)
class LockedWheel:
    filename: str
    sha256: Digest
    size: int | None


@dataclass(frozen=True, order=True)
class LockedPackage:
    name: NormalizedName
    version: str
    index: str  # canonical index name from variants.toml
    wheels: tuple[LockedWheel, ...]  # the wheels usable on the target, best first

    @property
    def pin(self) -> str:
        return f"{self.name}=={self.version}"


@dataclass(frozen=True)
class Lock:
    variant: str
    fingerprint: str
    packages: tuple[LockedPackage, ...]  # sorted by name

    def get(self, name: str) -> LockedPackage | None:
        wanted = canonicalize_name(name)
        return next((p for p in self.packages if p.name == wanted), None)

    @classmethod
    def read(cls, path: Path) -> Lock:
        """Read a pylock.toml written by fsnbuild; raise LockError naming the file on faults."""
        doc = read_lock_toml(path)
        try:
            tool = doc["tool"]["fsnbuild"]
            packages = tuple(
                LockedPackage(
                    name=canonicalize_name(entry["name"]),
                    version=entry["version"],
                    index=entry["tool"]["fsnbuild"]["index"],
                    wheels=tuple(
                        LockedWheel(
                            filename=wheel["name"],
                            sha256=Digest.parse("sha256:" + wheel["hashes"]["sha256"]),
                            size=wheel.get("size"),
                        )
                        for wheel in entry["wheels"]
                    ),
                )
                for entry in doc.get("packages", [])
            )
            return cls(variant=tool["variant"], fingerprint=tool["fingerprint"], packages=packages)
        except (KeyError, TypeError) as exc:
            raise LockError(
                f"{path}: missing field {exc} in a fsnbuild lock", hint="re-run fsnbuild lock"
            ) from None
