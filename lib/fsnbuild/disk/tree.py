"""The appliance's root file system as a folder: unpacked from DIB's tar, times clamped, and
described by a file-tree manifest (path, type, mode, owner, size, content hash, link target).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import stat
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import DiskError

_TYPES = {
    stat.S_IFREG: "file",
    stat.S_IFDIR: "dir",
    stat.S_IFLNK: "symlink",
    stat.S_IFCHR: "char",
    stat.S_IFBLK: "block",
    stat.S_IFIFO: "fifo",
    stat.S_IFSOCK: "socket",
}


@dataclass(frozen=True)
class TreeManifest:
    """The manifest's text (one JSON object per path, sorted) and its sha256."""

    text: str
    sha256: str
    entries: int


def unpack(tar: Path, root: Path) -> None:
    """Unpack DIB's root tar as root would see it: numeric owners, modes and xattrs kept."""
    root.mkdir(parents=True, exist_ok=True)
    command = ["tar", "--numeric-owner", "--xattrs", "--xattrs-include=*", "-xpf", str(tar)]
    result = subprocess.run([*command, "-C", str(root)], capture_output=True, text=True)
    if result.returncode != 0:
        raise DiskError(f"{tar}: could not unpack: {result.stderr.strip()}", hint="see the log")


# DIB's tar leaves out /proc and /sys and carries the build host's /dev and /run, which were
# mounted during the build; at boot the kernel and systemd mount fresh ones over all four.
_MOUNT_POINTS = {"dev": 0o755, "proc": 0o555, "run": 0o755, "sys": 0o555}


def reset_mount_points(root: Path) -> None:
    """Make /dev, /proc, /run and /sys empty root-owned folders, as on a fresh install."""
    for name, mode in sorted(_MOUNT_POINTS.items()):
        path = root / name
        if path.is_symlink() or path.is_file():
            path.unlink()
        elif path.is_dir():
            shutil.rmtree(path)
        path.mkdir()
        os.chown(path, 0, 0)
        path.chmod(mode)


def clamp_times(root: Path, epoch: int) -> None:
    """Set access times to modification times, and both to at most ``epoch``.

    mke2fs copies both into the file system; a file unpacked later must not look newer.
    """
    for path in _walk(root):
        info = path.lstat()
        when = min(int(info.st_mtime), epoch)
        os.utime(path, (when, when), follow_symlinks=False)


def _walk(root: Path) -> list[Path]:
    out = [root]
    for dirpath, dirnames, filenames in os.walk(root):
        base = Path(dirpath)
        out.extend(base / name for name in dirnames + filenames)
    return out


def manifest(root: Path) -> TreeManifest:
    """Describe every path under ``root`` in a stable text; times are left out on purpose."""
    lines = []
    for path in sorted(_walk(root), key=lambda p: p.as_posix()):
        info = path.lstat()
        rel = "/" + path.relative_to(root).as_posix() if path != root else "/"
        entry: dict[str, object] = {
            "path": rel,
            "type": _TYPES.get(stat.S_IFMT(info.st_mode), "unknown"),
            "mode": f"{stat.S_IMODE(info.st_mode):04o}",
            "uid": info.st_uid,
            "gid": info.st_gid,
        }
        if stat.S_ISREG(info.st_mode):
            entry["size"] = info.st_size
            entry["sha256"] = _file_sha256(path)
        elif stat.S_ISLNK(info.st_mode):
            entry["target"] = os.readlink(path)
        elif stat.S_ISCHR(info.st_mode) or stat.S_ISBLK(info.st_mode):
            entry["rdev"] = f"{os.major(info.st_rdev)}:{os.minor(info.st_rdev)}"
        xattrs = _xattrs(path)
        if xattrs:
            entry["xattrs"] = xattrs
        lines.append(json.dumps(entry, sort_keys=True, separators=(",", ":")))
    text = "\n".join(lines) + "\n"
    return TreeManifest(text, hashlib.sha256(text.encode()).hexdigest(), len(lines))


def _file_sha256(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as stream:
        while chunk := stream.read(1 << 20):
            hasher.update(chunk)
    return hasher.hexdigest()


def _xattrs(path: Path) -> dict[str, str]:
    try:
        names = os.listxattr(path, follow_symlinks=False)
    except OSError:
        return {}
    return {
        name: hashlib.sha256(os.getxattr(path, name, follow_symlinks=False)).hexdigest()
        for name in sorted(names)
    }


def find_boot_files(root: Path) -> tuple[str, str]:
    """The one installed kernel and its initrd, as paths relative to ``root``."""
    kernels = sorted((root / "boot").glob("vmlinuz-*"))
    if len(kernels) != 1:
        raise DiskError(
            f"{root}/boot holds {len(kernels)} kernels, expected exactly one",
            hint="the distribution element installs one kernel package",
        )
    version = kernels[0].name.removeprefix("vmlinuz-")
    initrd = root / "boot" / f"initrd.img-{version}"
    if not initrd.is_file():
        raise DiskError(f"{initrd} is missing", hint="the kernel's initramfs was not built")
    return f"boot/{kernels[0].name}", f"boot/{initrd.name}"


def root_label(root: Path) -> str:
    """The file-system label that the image's /etc/fstab mounts as ``/``.

    DIB writes fstab for the file system it would have made itself; the disk fsnbuild makes
    carries that label, so systemd can remount the root read-write at boot.
    """
    fstab = root / "etc/fstab"
    for line in fstab.read_text().splitlines() if fstab.is_file() else []:
        fields = line.split("#", 1)[0].split()
        if len(fields) >= 2 and fields[1] == "/" and fields[0].startswith("LABEL="):
            return fields[0].removeprefix("LABEL=")
    raise DiskError(f"{fstab} mounts no LABEL= file system at /", hint="check DIB's fstab")
