"""Deterministic layer blobs: a folder standing for ``/`` becomes a sorted, clamped, gzipped tar.

The same tree gives the same bytes on any machine, under any umask, time zone or build folder,
so a layer's digest depends only on what the layer contains.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import os
import stat
import tarfile
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fsnbuild.digest import Digest
from fsnbuild.errors import ImageError

log = logging.getLogger(__name__)

GZIP_LEVEL = 6
_CHUNK = 1 << 20


@dataclass(frozen=True)
class LayerBlob:
    """A gzipped layer tar on disk, named by its digest."""

    path: Path
    digest: Digest  # sha256 of the gzip bytes: the blob's name in a registry
    diff_id: Digest  # sha256 of the uncompressed tar: what the image config lists
    size: int  # bytes of the gzip
    comment: str


class _HashingWriter:
    """A write-only stream that hashes and counts every byte on its way to ``sink``."""

    def __init__(self, sink: BinaryIO) -> None:
        self._sink = sink
        self.hasher = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hasher.update(data)
        self.size += len(data)
        self._sink.write(data)
        return len(data)

    def flush(self) -> None:
        self._sink.flush()

    def close(self) -> None:
        # The sink belongs to the caller; tarfile and gzip call close() when they finish.
        pass


def _walk(root: Path) -> list[tuple[bytes, str]]:
    """Every entry below ``root`` as (bytes key, path), sorted bytewise; no links followed."""
    found: list[tuple[bytes, str]] = []
    pending = [""]
    while pending:
        rel = pending.pop()
        with os.scandir(root / rel if rel else root) as entries:
            for entry in entries:
                child = f"{rel}/{entry.name}" if rel else entry.name
                found.append((os.fsencode(child), child))
                if entry.is_dir(follow_symlinks=False):
                    pending.append(child)
    found.sort()
    return found


def _tarinfo(
    path: Path,
    arcname: str,
    st: os.stat_result,
    *,
    epoch: int,
    owner: tuple[int, int] | None,
    first_link: dict[tuple[int, int], str],
) -> tarfile.TarInfo | None:
    info = tarfile.TarInfo(arcname)
    # Clamp rather than overwrite: a root file system keeps its older times, and files written
    # during the build (newer than the epoch) all get the epoch.
    info.mtime = min(int(st.st_mtime), epoch)
    mode = st.st_mode
    if stat.S_ISREG(mode) and st.st_nlink > 1:
        key = (st.st_dev, st.st_ino)
        if key in first_link:
            info.type = tarfile.LNKTYPE
            info.linkname = first_link[key]
        else:
            first_link[key] = arcname
    if info.type == tarfile.LNKTYPE:
        pass
    elif stat.S_ISREG(mode):
        info.type = tarfile.REGTYPE
        info.size = st.st_size
    elif stat.S_ISDIR(mode):
        info.type = tarfile.DIRTYPE
    elif stat.S_ISLNK(mode):
        info.type = tarfile.SYMTYPE
        info.linkname = os.readlink(path)
    elif stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        info.type = tarfile.CHRTYPE if stat.S_ISCHR(mode) else tarfile.BLKTYPE
        info.devmajor = os.major(st.st_rdev)
        info.devminor = os.minor(st.st_rdev)
    elif stat.S_ISFIFO(mode):
        info.type = tarfile.FIFOTYPE
    else:
        log.warning("%s: not a file, directory, link or device; left out of the layer", path)
        return None

    if owner is None:
        info.uid, info.gid = st.st_uid, st.st_gid
        info.mode = stat.S_IMODE(mode)
    else:
        info.uid, info.gid = owner
        # Modes written under the builder's umask must not leak into the image.
        if info.type == tarfile.SYMTYPE:
            info.mode = 0o777
        elif info.type == tarfile.DIRTYPE or mode & 0o111:
            info.mode = 0o755
        else:
            info.mode = 0o644
    # Names would tie the blob to the build machine's /etc/passwd; numeric ids are what counts.
    info.uname = info.gname = ""
    return info


def _write_tar(root: Path, stream: BinaryIO, *, epoch: int, owner: tuple[int, int] | None) -> None:
    # GNU format, never PAX: PAX headers carry atime/ctime and a per-build path, which would
    # make two builds of the same tree differ.
    with tarfile.open(
        fileobj=stream,
        mode="w|",
        format=tarfile.GNU_FORMAT,
        encoding="utf-8",
        errors="surrogateescape",
    ) as tar:
        first_link: dict[tuple[int, int], str] = {}
        for _, rel in _walk(root):
            path = root / rel
            st = path.lstat()
            info = _tarinfo(path, rel, st, epoch=epoch, owner=owner, first_link=first_link)
            if info is None:
                continue
            if info.type == tarfile.REGTYPE:
                with path.open("rb") as content:
                    tar.addfile(info, content)
            else:
                tar.addfile(info)


def tar_tree(
    root: Path,
    out_dir: Path,
    *,
    epoch: int,
    owner: tuple[int, int] | None = (0, 0),
    comment: str = "",
) -> LayerBlob:
    """Pack everything below ``root`` (which stands for ``/``) into ``out_dir/<sha256 hex>``.

    With ``owner`` given, every entry belongs to it and modes are normalised to 0644/0755;
    with ``owner=None`` numeric owners and permission bits (setuid included) are kept, which is
    what a root file system needs. Both digests are computed while writing.
    """
    if not root.is_dir():
        raise ImageError(f"{root}: layer root is not a directory")
    out_dir.mkdir(parents=True, exist_ok=True)
    # The name is known only once the bytes are written: write under a temporary name, rename.
    fd, tmp_name = tempfile.mkstemp(prefix=".layer.", suffix=".tmp", dir=out_dir)
    tmp = Path(tmp_name)
    try:
        with os.fdopen(fd, "wb") as out:
            gz_hash = _HashingWriter(out)
            # No file name and mtime 0 in the gzip header: both would differ between builds.
            with gzip.GzipFile(
                filename="", mode="wb", fileobj=gz_hash, compresslevel=GZIP_LEVEL, mtime=0
            ) as gz:
                tar_hash = _HashingWriter(gz)  # type: ignore[arg-type]
                _write_tar(root, tar_hash, epoch=epoch, owner=owner)  # type: ignore[arg-type]
        tmp.chmod(0o644)
        digest = Digest("sha256", gz_hash.hasher.hexdigest())
        target = out_dir / digest.hex
        os.replace(tmp, target)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    diff_id = Digest("sha256", tar_hash.hasher.hexdigest())
    log.debug("layer %s (diff_id %s) from %s", digest, diff_id, root)
    return LayerBlob(target, digest, diff_id, gz_hash.size, comment)
