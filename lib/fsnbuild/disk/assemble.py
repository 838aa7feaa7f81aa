"""Whole-disk assembly without device-mapper: an MBR table written by sfdisk into a plain
file, an ext4 root made by ``mke2fs -d`` at the partition's offset, GRUB in the MBR gap, and
``qemu-img convert`` to QCOW2. Identifiers come from the inputs, times from the epoch.
"""

from __future__ import annotations

import hashlib
import logging
import os
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.disk import grub
from fsnbuild.errors import DiskError

log = logging.getLogger(__name__)

FIRST_SECTOR = 2048  # 1 MiB: room for GRUB's core image, and aligned for any storage
BLOCK = 4096
KERNEL_CMDLINE = "console=tty0 console=ttyS0,115200n8"


@dataclass(frozen=True)
class Layout:
    """Size and identifiers of one disk, all derived from the build's input key."""

    size_bytes: int
    disk_id: int  # the MBR's 32-bit disk signature
    root_uuid: str
    root_label: str  # what the image's fstab mounts as /
    hash_seed: str  # ext4 directory-hash seed: random by default, so fixed here

    @classmethod
    def derive(cls, key: str, size_gib: int, root_label: str) -> Layout:
        def named(purpose: str) -> uuid.UUID:
            return uuid.uuid5(uuid.NAMESPACE_URL, f"fsnbuild:disk:{key}:{purpose}")

        disk_id = int.from_bytes(hashlib.sha256(f"{key}:mbr".encode()).digest()[:4], "big")
        return cls(size_gib << 30, disk_id, str(named("root")), root_label, str(named("hash-seed")))

    @property
    def partition_bytes(self) -> int:
        return self.size_bytes - FIRST_SECTOR * grub.SECTOR


def assemble(root: Path, raw: Path, layout: Layout, epoch: int, kernel: str, initrd: str) -> None:
    """Write a bootable raw disk image of ``root`` to ``raw``."""
    raw.unlink(missing_ok=True)
    with raw.open("wb") as stream:
        stream.truncate(layout.size_bytes)

    partition(raw, layout)

    make_filesystem(root, raw, layout, epoch)

    grub.install_grub(
        raw,
        kernel=kernel,
        initrd=initrd,
        root_uuid=layout.root_uuid,
        cmdline=KERNEL_CMDLINE,
        first_partition_sector=FIRST_SECTOR,
    )


def partition(raw: Path, layout: Layout) -> None:
    script = (
        "label: dos\n"
        f"label-id: 0x{layout.disk_id:08x}\n"
        "unit: sectors\n"
        f"start={FIRST_SECTOR}, type=83, bootable\n"
    )
    _run(["sfdisk", "--quiet", "--no-reread", "--no-tell-kernel", str(raw)], stdin=script)


def make_filesystem(root: Path, raw: Path, layout: Layout, epoch: int) -> None:
    """mke2fs fills the partition from ``root``; debugfs then sets the times it copied."""
    env = _fake_time(epoch)
    offset = FIRST_SECTOR * grub.SECTOR
    features = f"offset={offset},hash_seed={layout.hash_seed},assume_storage_prezeroed=1"
    command = ["mke2fs", "-q", "-F", "-t", "ext4", "-b", str(BLOCK), "-L", layout.root_label]
    command += ["-U", layout.root_uuid, "-E", features, "-d", str(root), str(raw)]
    _run([*command, str(layout.partition_bytes // BLOCK)], env=env)
    normalize_inode_times(root, f"{raw}?offset={offset}", epoch, env)


def normalize_inode_times(root: Path, device: str, epoch: int, env: dict[str, str]) -> None:
    """Set atime, ctime and crtime of every inode to the epoch.

    mke2fs -d copies each source file's ctime, which is the time it was unpacked here and
    cannot be set from user space, and its atime, which hashing the tree has just moved;
    debugfs can set both inside the image.
    """
    commands = []
    for path in _paths(root):
        if '"' in path or "\n" in path:
            raise DiskError(f"{root}{path}: a quote or newline in a path", hint="rename it")
        for field in ("atime", "ctime", "crtime"):
            commands.append(f'sif "{path}" {field} @{epoch}\n')
    script = root.parent / f".{root.name}.debugfs"
    script.write_text("".join(commands))
    try:
        result = _run(["debugfs", "-w", "-f", str(script), device], env=env)
    finally:
        script.unlink()
    errors = [line for line in result.stderr.splitlines() if not line.startswith("debugfs ")]
    if errors:
        raise DiskError(f"debugfs could not set times: {errors[0]}", hint="see the log")


def _paths(root: Path) -> list[str]:
    out = ["/"]
    for dirpath, dirnames, filenames in os.walk(root):
        base = "/" + Path(dirpath).relative_to(root).as_posix()
        base = "" if base == "/." else base
        out.extend(f"{base}/{name}" for name in sorted(dirnames + filenames))
    return out


def to_qcow2(raw: Path, qcow2: Path, *, compress: bool = True) -> None:
    """Convert in order with one coroutine, so the clusters land in the same places."""
    options = ["-c"] if compress else []
    command = ["qemu-img", "convert", "-f", "raw", "-O", "qcow2", *options, "-m", "1"]
    _run([*command, "-o", "cluster_size=65536,compression_type=zlib", str(raw), str(qcow2)])


def virtual_size(qcow2: Path) -> int:
    import json

    result = _run(["qemu-img", "info", "--output=json", str(qcow2)])
    return int(json.loads(result.stdout)["virtual-size"])


def _fake_time(epoch: int) -> dict[str, str]:
    # e2fsprogs stamps superblock and root times with the clock unless told otherwise.
    return {**os.environ, "E2FSPROGS_FAKE_TIME": str(epoch), "SOURCE_DATE_EPOCH": str(epoch)}


def _run(
    command: list[str], *, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    log.debug("running %s", " ".join(command))
    result = subprocess.run(
        command, input=stdin, capture_output=True, text=True, env=env, check=False
    )
    if result.returncode != 0:
        raise DiskError(
            f"{command[0]} failed (exit {result.returncode}): {result.stderr.strip()[-2000:]}",
            hint=f"the command was: {' '.join(command)}",
        )
    return result
