"""Install a wheel into a folder standing for the image's ``/``, for the image's venv, safely.

Nothing runs: no interpreter of the target, no code from the wheel. The wheel is checked
whole (paths, symlinks, RECORD hashes) before the first byte is written.
"""

from __future__ import annotations

import contextlib
import logging
import os
import posixpath
import stat
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import installer
from installer.destinations import SchemeDictionaryDestination
from installer.exceptions import InstallerError
from installer.records import RecordEntry
from installer.sources import WheelFile
from installer.utils import Scheme, parse_metadata_file
from packaging.utils import NormalizedName, canonicalize_name

from fsnbuild.errors import WheelError

log = logging.getLogger(__name__)

INSTALLER_NAME = b"fsnbuild\n"
_DATA_SCHEMES = ("purelib", "platlib", "scripts", "data", "headers")


@dataclass(frozen=True)
class VenvScheme:
    """Where a wheel's parts go inside the image's virtual environment."""

    prefix: str = "/python/venv"
    python: str = "3.11"

    @property
    def site_packages(self) -> str:
        return f"{self.prefix}/lib/python{self.python}/site-packages"

    @property
    def interpreter(self) -> str:
        return f"{self.prefix}/bin/python"

    def paths(self, dist: str) -> dict[str, str]:
        """The image paths of installer's schemes, for the distribution ``dist``."""
        return {
            "purelib": self.site_packages,
            "platlib": self.site_packages,
            "scripts": f"{self.prefix}/bin",
            "data": self.prefix,
            "headers": f"{self.prefix}/include/site/python{self.python}/{dist}",
        }


@dataclass(frozen=True)
class InstalledDist:
    name: NormalizedName
    version: str
    wheel: str  # file name of the wheel it came from
    dist_info: str  # image path of the .dist-info folder
    files: tuple[str, ...]  # image paths of every file written, sorted


class _TreeDestination(SchemeDictionaryDestination):
    """installer's scheme destination that remembers what it wrote, so a failure can undo it."""

    def __init__(self, tree: Path, scheme_dict: dict[str, str], interpreter: str) -> None:
        super().__init__(
            scheme_dict=scheme_dict,
            interpreter=interpreter,
            script_kind="posix",
            # No bytecode: .pyc files embed source mtimes and would differ between builds.
            bytecode_optimization_levels=(),
            destdir=str(tree),
            # pip overwrites a file another wheel in the same environment already wrote (shared
            # namespace __init__.py files); wheels are installed in sorted order, so the
            # result is still deterministic.
            overwrite_existing=True,
        )
        self.tree = tree
        self.written: list[Path] = []
        self.created: list[Path] = []  # written and not there before: what undo() removes
        self.created_dirs: list[Path] = []

    def write_to_fs(
        self, scheme: Scheme, path: str, stream: BinaryIO, is_executable: bool
    ) -> RecordEntry:
        target = self._path_with_destdir(scheme, path)
        _refuse_escape(self.tree, target, what=path)
        existed = os.path.lexists(target)
        missing = target.parent
        while not missing.exists():
            self.created_dirs.append(missing)
            missing = missing.parent
        if not existed:
            # Noted before writing: a write that fails halfway leaves a partial file to remove.
            self.created.append(target)
        entry = super().write_to_fs(scheme, path, stream, is_executable)
        self.written.append(target)
        return entry

    def undo(self) -> None:
        for path in self.created:
            path.unlink(missing_ok=True)
        # Deepest first, and only if empty: a folder is never taken from under another wheel.
        for folder in sorted(self.created_dirs, key=lambda p: len(p.parts), reverse=True):
            with contextlib.suppress(OSError):
                folder.rmdir()


def _refuse_escape(tree: Path, target: Path, *, what: str) -> None:
    """Raise unless ``target`` and every existing folder above it stay inside ``tree``."""
    real_tree = os.path.realpath(tree)
    if os.path.lexists(target) and os.path.islink(target):
        raise _unsafe(what, f"{target} is an existing symlink")
    real_parent = os.path.realpath(target.parent)
    if os.path.commonpath([real_tree, real_parent]) != real_tree:
        raise _unsafe(what, f"it would be written through a symlink to {real_parent}")


def _unsafe(what: str, why: str) -> WheelError:
    return WheelError(f"unsafe path {what!r}: {why}")


def _member_problem(info: zipfile.ZipInfo) -> str | None:
    name = info.filename
    parts = name.split("/")
    if name.startswith("/") or (len(name) > 1 and name[1] == ":") or "\\" in name:
        return "absolute path"
    if ".." in parts:
        return "path climbs out with '..'"
    if "\0" in name:
        return "NUL in path"
    if stat.S_ISLNK(info.external_attr >> 16):
        return "symlink entry (wheels carry regular files only)"
    return None


def _check_wheel(
    archive: zipfile.ZipFile, source: WheelFile, tree: Path, scheme: VenvScheme
) -> list[str]:
    """Every reason not to install the wheel, found without writing anything."""
    problems: list[str] = []
    for info in archive.infolist():
        problem = _member_problem(info)
        if problem:
            problems.append(f"{info.filename!r}: {problem}")
    if problems:
        return problems  # paths not safe even to map onto the scheme

    try:
        source.validate_record(validate_contents=True)
    except source.validation_error as exc:
        problems.extend(getattr(exc, "issues", [str(exc)]))
    except InstallerError as exc:
        problems.append(str(exc))

    paths = scheme.paths(source.distribution)
    data_dir = source.data_dir + "/"
    for info in archive.infolist():
        if info.filename.endswith("/"):
            continue
        rel = info.filename
        root = paths["purelib"]
        if rel.startswith(data_dir):
            key, _, rel = rel[len(data_dir) :].partition("/")
            if key not in _DATA_SCHEMES:
                problems.append(f"{info.filename!r}: unknown .data scheme {key!r}")
                continue
            root = paths[key]
        target = tree / posixpath.join(root, rel).lstrip("/")
        try:
            _refuse_escape(tree, target, what=info.filename)
        except WheelError as exc:
            problems.append(exc.message)
            continue
        if os.path.isdir(target):
            problems.append(f"{info.filename!r}: {target} is a folder in the tree")
        elif os.path.lexists(target):
            log.warning("%s: %s overwrites a file of another wheel", source.distribution, rel)
    return problems


def install_wheel(wheel: Path, tree: Path, scheme: VenvScheme | None = None) -> InstalledDist:
    """Install ``wheel`` into ``tree`` (the image's ``/``) for the venv ``scheme``.

    Refuses (WheelError naming the wheel and the path) absolute or ``..`` paths, symlink
    entries, writes through or onto symlinks, files where the tree has a folder, and RECORD
    mismatches; a refused or failed wheel leaves nothing in ``tree``. Like pip, a file another
    wheel already wrote is overwritten (with a warning).
    """
    scheme = scheme or VenvScheme()
    tree.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(wheel) as archive:
            source = WheelFile(archive)
            problems = _check_wheel(archive, source, tree, scheme)
            if problems:
                raise WheelError(
                    f"{wheel.name}: refused to install: " + "; ".join(problems),
                    hint="the wheel is corrupt or unsafe; check where it came from",
                )
            paths = scheme.paths(source.distribution)
            destination = _TreeDestination(tree, paths, scheme.interpreter)
            try:
                # INSTALLER tells tools who installed it; no direct_url.json, as pip writes one
                # only for direct URL installs.
                installer.install(source, destination, {"INSTALLER": INSTALLER_NAME})
            except BaseException:
                destination.undo()
                raise
            metadata = parse_metadata_file(source.read_dist_info("METADATA"))
            dist_info = f"{paths['purelib']}/{source.dist_info_dir}"
    except (InstallerError, zipfile.BadZipFile, ValueError, KeyError, OSError) as exc:
        raise WheelError(
            f"{wheel.name}: cannot install: {exc}",
            hint="the wheel is corrupt or unsafe; check where it came from",
        ) from exc

    files = sorted("/" + str(path.relative_to(tree)) for path in destination.written)
    log.debug("installed %s: %d files", wheel.name, len(files))
    return InstalledDist(
        name=canonicalize_name(metadata["Name"] or source.distribution),
        version=metadata["Version"] or source.version,
        wheel=wheel.name,
        dist_info=dist_info,
        files=tuple(files),
    )
