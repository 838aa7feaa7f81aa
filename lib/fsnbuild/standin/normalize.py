"""Remove or reset everything in a fresh debootstrap that differs between two builds, or that
tells about the machine that built it (its host name, DNS server and mirror address).

The list was found by building twice and diffing the trees (``treemanifest``); the test
``tests/standin`` repeats that measurement.
"""

from __future__ import annotations

import logging
import shutil
from pathlib import Path

log = logging.getLogger(__name__)

# Whole files that are logs, caches or backups: nothing in the image needs them.
_REMOVE_GLOBS = (
    "var/cache/apt/**/*.bin",
    "var/cache/apt/archives/*.deb",
    "var/cache/debconf/*-old",
    "var/cache/ldconfig/aux-cache",
    "var/lib/apt/lists/*_*",  # files named after the mirror's host
    "var/lib/dpkg/*-old",
    "etc/*-",  # passwd-, group-, shadow-, gshadow-, subuid-, subgid- backups
    "etc/ssh/ssh_host_*",
    "var/lib/systemd/random-seed",
    "var/lib/urandom/random-seed",
    "etc/.pwd.lock",
)
# Folders whose files record when and how the build ran, or hold run-time state; the
# folders themselves stay (/run/lock is the target of /var/lock).
_EMPTY_FILES_BELOW = ("var/log", "run")
# Folders filled at run time by the container engine or the kernel: emptied, kept.
_EMPTY_DIRS = ("dev", "proc", "sys", "tmp", "var/tmp")
# debootstrap copies these from the build machine; the container engine mounts its own.
_BLANK_FILES = ("etc/hostname", "etc/resolv.conf")
SOURCES_LIST = (
    "# fsnbuild stand-in image: apt sources were removed so the image names no mirror.\n"
    "# Add a `deb <mirror> bookworm main` line here before using apt.\n"
)


def normalize_rootfs(root: Path) -> list[str]:
    """Make ``root`` independent of build time and machine; return the paths changed."""
    changed: list[str] = []

    for pattern in _REMOVE_GLOBS:
        for path in sorted(root.glob(pattern)):
            if path.is_file() or path.is_symlink():
                path.unlink()
                changed.append(_rel(root, path))

    for folder in _EMPTY_FILES_BELOW:
        for path in sorted((root / folder).rglob("*")):
            if not path.is_dir() or path.is_symlink():
                path.unlink()
                changed.append(_rel(root, path))

    for folder in _EMPTY_DIRS:
        changed.extend(_empty_dir(root, root / folder))

    changed.extend(_remove_bytecode(root))

    for name in _BLANK_FILES:
        _write(root / name, "")
        changed.append(name)
    machine_id = root / "etc/machine-id"
    if machine_id.exists():
        # Empty rather than absent: systemd reads an empty file as "generate one at boot".
        _write(machine_id, "", mode=0o444)
        changed.append("etc/machine-id")
    _write(root / "etc/apt/sources.list", SOURCES_LIST)
    changed.append("etc/apt/sources.list")

    log.info("normalised %d paths in %s", len(changed), root)
    return changed


def _remove_bytecode(root: Path) -> list[str]:
    # Debian's py3compile output is not reliably deterministic (marshal's reference flags
    # depend on object refcounts at compile time); the interpreter rebuilds what it needs.
    removed = []
    for path in sorted(root.rglob("__pycache__")):
        if path.is_dir() and not path.is_symlink():
            shutil.rmtree(path)
            removed.append(_rel(root, path))
    for path in sorted(root.rglob("*.py[co]")):
        if path.is_file():
            path.unlink()
            removed.append(_rel(root, path))
    return removed


def _empty_dir(root: Path, folder: Path) -> list[str]:
    if not folder.is_dir() or folder.is_symlink():
        return []
    removed = []
    for child in sorted(folder.iterdir()):
        if child.is_dir() and not child.is_symlink():
            shutil.rmtree(child)
        else:
            child.unlink()
        removed.append(_rel(root, child))
    return removed


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    if path.is_symlink():
        path.unlink()
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def _rel(root: Path, path: Path) -> str:
    return path.relative_to(root).as_posix()
