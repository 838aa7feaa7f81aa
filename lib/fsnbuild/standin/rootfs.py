"""The stand-in's operating system: a debootstrapped Debian with python3.11, a user and a venv.

Each step runs a real tool (debootstrap, chroot useradd, chroot python3.11 -m venv) with
``SOURCE_DATE_EPOCH`` set, so tools that honour it (shadow's ``lastchg``) write the epoch
and not the day of the build.
"""

from __future__ import annotations

import logging
import os
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path

from fsnbuild.errors import ImageError

log = logging.getLogger(__name__)

SUITE = "bookworm"
# python3.11-venv is left out on purpose: its Depends names the virtual package
# python3.11-distutils, which debootstrap's resolver cannot satisfy, and the venv module that
# `--without-pip` needs is in libpython3.11-stdlib anyway.
PACKAGES = ("python3.11", "ca-certificates")
CHROOT_PATH = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"


def _env(epoch: int) -> dict[str, str]:
    # A fixed environment: the builder's locale, time zone and PATH must not reach the tree.
    # Proxy settings are the one thing passed on, as they only say how to reach the mirror.
    env = {key: value for key, value in os.environ.items() if key.lower().endswith("_proxy")}
    env.update(
        PATH=CHROOT_PATH,
        LC_ALL="C",
        LANG="C",
        TZ="UTC",
        HOME="/root",
        DEBIAN_FRONTEND="noninteractive",
        SOURCE_DATE_EPOCH=str(epoch),
    )
    return env


def _run(args: Sequence[str], *, epoch: int, what: str) -> None:
    log.debug("running %s", " ".join(args))
    result = subprocess.run(
        list(args), env=_env(epoch), capture_output=True, text=True, check=False, umask=0o022
    )
    if result.returncode != 0:
        tail = "\n".join((result.stdout + result.stderr).strip().splitlines()[-15:])
        raise ImageError(
            f"{what} failed (exit {result.returncode}): {' '.join(args)}\n{tail}",
            hint="see the output above; debootstrap also keeps debootstrap/debootstrap.log",
        )


def debootstrap(root: Path, *, mirror: str, epoch: int, packages: Sequence[str] = PACKAGES) -> None:
    """Install a minimal Debian ``bookworm`` with ``packages`` into the empty folder ``root``."""
    if shutil.which("debootstrap") is None:
        raise ImageError("debootstrap is not installed", hint="apt-get install -y debootstrap")
    if any(ch.isspace() for ch in str(root.resolve())):
        # debootstrap 1.0.128's merged-/usr step leaves the path unquoted: the tree then has
        # no /lib64 and its first chroot fails. Refuse up front with a clear message.
        raise ImageError(
            f"{str(root)!r}: debootstrap cannot build in a path with spaces",
            hint="choose a work folder whose path has no whitespace",
        )
    if root.exists() and any(root.iterdir()):
        raise ImageError(f"{root}: not empty; debootstrap needs an empty folder")
    root.mkdir(parents=True, exist_ok=True)
    args = ["debootstrap", "--variant=minbase", f"--include={','.join(sorted(packages))}"]
    try:
        _run([*args, SUITE, str(root), mirror], epoch=epoch, what=f"debootstrap into {root}")
    finally:
        unmount_below(root)


def add_user(root: Path, *, name: str, uid: int, gid: int, home: str, epoch: int) -> None:
    """Create group and user ``name`` with fixed ids inside ``root`` (no home is created)."""
    chroot = ["chroot", str(root)]
    _run([*chroot, "groupadd", "--gid", str(gid), name], epoch=epoch, what=f"groupadd {name}")
    useradd = [
        *chroot,
        "useradd",
        "--uid",
        str(uid),
        "--gid",
        str(gid),
        "--no-create-home",
        "--home-dir",
        home,
        "--shell",
        "/bin/bash",
        name,
    ]
    _run(useradd, epoch=epoch, what=f"useradd {name}")


def make_venv(root: Path, *, prefix: str, python: str = "python3.11", epoch: int) -> None:
    """Create an empty virtual environment at ``prefix`` with the chroot's own interpreter."""
    args = ["chroot", str(root), python, "-m", "venv", "--without-pip", prefix]
    _run(args, epoch=epoch, what=f"{python} -m venv {prefix}")
    cfg = (root / prefix.lstrip("/") / "pyvenv.cfg").read_text()
    # pyvenv.cfg records the interpreter and the command line; neither may name the build
    # folder, which would make two builds in different folders differ.
    if str(root) in cfg:
        raise ImageError(f"{prefix}/pyvenv.cfg names the build folder {root}:\n{cfg}")


def mounts_below(root: Path) -> list[Path]:
    """Mount points at or under ``root``, deepest first (the order to unmount them in)."""
    base = os.path.realpath(root)
    found = []
    for line in Path("/proc/self/mountinfo").read_text().splitlines():
        # Field 5 is the mount point, with spaces and the like written as octal escapes.
        point = line.split()[4].encode().decode("unicode_escape")
        if point == base or point.startswith(base + "/"):
            found.append(Path(point))
    return sorted(found, key=lambda p: len(p.parts), reverse=True)


def unmount_below(root: Path) -> None:
    """Unmount whatever a tool left mounted under ``root`` (debootstrap mounts /proc there)."""
    for point in mounts_below(root):
        log.info("unmounting %s", point)
        result = subprocess.run(["umount", "--lazy", str(point)], capture_output=True, check=False)
        if result.returncode != 0:
            raise ImageError(
                f"{point}: still mounted and umount failed: {result.stderr.decode().strip()}",
                hint=f"unmount it by hand (umount --lazy {point}) before deleting {root}",
            )


def remove_tree(root: Path) -> None:
    """Delete a build tree, refusing while anything is still mounted inside it."""
    if not root.exists():
        return
    unmount_below(root)
    if mounts_below(root):
        raise ImageError(f"{root}: still has mounts; refusing to delete it")
    shutil.rmtree(root)
