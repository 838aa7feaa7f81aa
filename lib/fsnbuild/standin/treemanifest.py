"""A listing of a file tree (path, type, mode, owner, size, sha256, link target) for diffing.

Two builds of a root file system are reproducible exactly when their manifests are equal;
the entries that differ are what the normaliser still has to handle. Times are left out
because the layer writer clamps them to the epoch.
"""

from __future__ import annotations

import hashlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class TreeEntry:
    path: str  # relative to the tree root, "/"-separated
    kind: str  # "file", "dir", "link", "char", "block", "fifo", "socket"
    mode: int  # permission bits, setuid/setgid/sticky included
    uid: int
    gid: int
    size: int  # bytes for files, 0 otherwise
    sha256: str  # hex for files, "" otherwise
    target: str  # link target for symlinks, "" otherwise

    def line(self) -> str:
        detail = self.sha256 or self.target or "-"
        return (
            f"{self.kind:6} {self.mode:04o} {self.uid}:{self.gid} {self.size:>10} "
            f"{detail} {self.path}"
        )


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISREG, "file"),
        (stat.S_ISDIR, "dir"),
        (stat.S_ISLNK, "link"),
        (stat.S_ISCHR, "char"),
        (stat.S_ISBLK, "block"),
        (stat.S_ISFIFO, "fifo"),
    ):
        if test(mode):
            return name
    return "socket"


def _sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def tree_manifest(root: Path) -> tuple[TreeEntry, ...]:
    """Every entry below ``root`` (symlinks not followed), sorted by path."""
    entries: list[TreeEntry] = []
    for dirpath, dirnames, filenames in os.walk(root):
        for name in dirnames + filenames:
            path = Path(dirpath, name)
            st = path.lstat()
            kind = _kind(st.st_mode)
            entries.append(
                TreeEntry(
                    path=path.relative_to(root).as_posix(),
                    kind=kind,
                    mode=stat.S_IMODE(st.st_mode),
                    uid=st.st_uid,
                    gid=st.st_gid,
                    size=st.st_size if kind == "file" else 0,
                    sha256=_sha256(path) if kind == "file" else "",
                    target=os.readlink(path) if kind == "link" else "",
                )
            )
    return tuple(sorted(entries))


def diff_manifests(
    left: tuple[TreeEntry, ...], right: tuple[TreeEntry, ...]
) -> list[tuple[TreeEntry | None, TreeEntry | None]]:
    """Pairs (left, right) of entries that differ; None where a path is on one side only."""
    by_left = {e.path: e for e in left}
    by_right = {e.path: e for e in right}
    return [
        (by_left.get(path), by_right.get(path))
        for path in sorted(by_left.keys() | by_right.keys())
        if by_left.get(path) != by_right.get(path)
    ]


def write_manifest(entries: tuple[TreeEntry, ...], dest: Path) -> None:
    dest.write_text("".join(entry.line() + "\n" for entry in entries))
