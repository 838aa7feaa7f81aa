"""A BIOS GRUB written straight into a raw disk file: no mount, no device, no device-mapper.

``grub-mkimage`` makes a core image that carries its modules and a boot script; fsnbuild puts
GRUB's boot sector into the MBR and the core into the gap before the first partition, and
fills in the two pointers ``grub-bios-setup`` would (where the core starts, how long it is).
Every byte comes from the inputs, so the result is the same on each build.
"""

from __future__ import annotations

import struct
import subprocess
import tempfile
from pathlib import Path

from fsnbuild.errors import DiskError

GRUB_DIR = Path("/usr/lib/grub/i386-pc")
SECTOR = 512
# Offsets in GRUB's i386-pc boot sector and its diskboot sector (include/grub/i386/pc/boot.h).
_BOOT_CODE_END = 0x1B8  # the MBR's disk signature and partition table follow
_DRIVE_CHECK = 0x66  # a jump that trusts the BIOS drive number only for floppies
_BLOCKLIST = SECTOR - 12  # {u64 start sector, u16 sector count, u16 load segment}
_MODULES = ("biosdisk", "part_msdos", "ext2", "linux", "boot", "echo", "serial", "terminal")


def boot_script(kernel: str, initrd: str, root_uuid: str, cmdline: str) -> str:
    """The script the core image runs: no menu, no files read besides kernel and initrd."""
    return (
        "serial --unit=0 --speed=115200\n"
        "terminal_input serial console\n"
        "terminal_output serial console\n"
        "echo 'fsn-appliance: grub: booting the appliance'\n"
        "set root=(hd0,msdos1)\n"
        f"linux /{kernel} root=UUID={root_uuid} ro {cmdline}\n"
        f"initrd /{initrd}\n"
        "boot\n"
    )


def make_core(script: str, workdir: Path) -> bytes:
    """Run grub-mkimage; the result starts with GRUB's diskboot sector."""
    if not (GRUB_DIR / "boot.img").is_file():
        raise DiskError(
            f"{GRUB_DIR}/boot.img is missing",
            hint="install GRUB's BIOS images: apt-get install -y grub-pc-bin",
        )
    config = workdir / "grub-embedded.cfg"
    config.write_text(script)
    core = workdir / "core.img"
    command = [
        "grub-mkimage",
        "--format=i386-pc",
        f"--directory={GRUB_DIR}",
        f"--config={config}",
        "--prefix=(hd0,msdos1)/boot/grub",
        f"--output={core}",
        *_MODULES,
    ]
    result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DiskError(f"grub-mkimage failed: {result.stderr.strip()}", hint="see the log")
    return core.read_bytes()


def install(disk: Path, core: bytes, first_partition_sector: int) -> None:
    """Write boot sector and core into ``disk``, keeping its partition table."""
    sectors = -(-len(core) // SECTOR)
    if 1 + sectors > first_partition_sector:
        raise DiskError(
            f"GRUB core ({sectors} sectors) does not fit before sector {first_partition_sector}",
            hint="start the first partition later",
        )
    boot = bytearray((GRUB_DIR / "boot.img").read_bytes())
    # A hard disk: use the drive number the BIOS passed (what grub-bios-setup does).
    boot[_DRIVE_CHECK : _DRIVE_CHECK + 2] = b"\x90\x90"
    padded = bytearray(core.ljust(sectors * SECTOR, b"\0"))
    # The core sits at sector 1; its first sector loads the rest, from sector 2 on.
    _, _, segment = struct.unpack_from("<QHH", padded, _BLOCKLIST)
    struct.pack_into("<QHH", padded, _BLOCKLIST, 2, sectors - 1, segment)
    with disk.open("r+b") as stream:
        stream.seek(0)
        stream.write(boot[:_BOOT_CODE_END])
        stream.seek(SECTOR)
        stream.write(padded)


def install_grub(
    disk: Path,
    *,
    kernel: str,
    initrd: str,
    root_uuid: str,
    cmdline: str,
    first_partition_sector: int,
) -> None:
    with tempfile.TemporaryDirectory(prefix="fsn-grub.") as tmp:
        core = make_core(boot_script(kernel, initrd, root_uuid, cmdline), Path(tmp))
    install(disk, core, first_partition_sector)
