"""Run diskimage-builder for the appliance's root file system (``-t tar``).

DIB's own output (thousands of lines) goes to the log file; the caller's progress callback
hears only which phase is running and for how long.
"""

from __future__ import annotations

import contextlib
import fcntl
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.disk.appliance import CpuNeeds
from fsnbuild.disk.mirrors import Mirror
from fsnbuild.errors import DiskError

log = logging.getLogger(__name__)

Progress = Callable[[str, float], None]
_PHASE = re.compile(r"dib-run-parts Running \S*/([a-z-]+\.d)/(\S+)")


@dataclass(frozen=True)
class DibJob:
    """Everything one DIB run depends on."""

    elements_dir: Path
    distribution: str
    release: str
    framework: str
    version: str
    image_archive: Path
    image_ref: str
    image_digest: str
    epoch: int
    mirror: Mirror

    @property
    def elements(self) -> tuple[str, ...]:
        return (f"{self.distribution}-minimal", "fsn-appliance")

    def environment(self) -> dict[str, str]:
        for value in (self.image_ref, self.image_digest, self.framework, self.version):
            if "'" in value or "\n" in value:
                raise DiskError(f"{value!r}: quotes and newlines cannot be staged", hint="fix it")
        return {
            "ELEMENTS_PATH": str(self.elements_dir),
            "DIB_RELEASE": self.release,
            **self.mirror.environment(),
            "DIB_FSN_IMAGE_ARCHIVE": str(self.image_archive),
            "DIB_FSN_IMAGE_REF": self.image_ref,
            "DIB_FSN_IMAGE_DIGEST": self.image_digest,
            "DIB_FSN_FRAMEWORK": self.framework,
            "DIB_FSN_VERSION": self.version,
            "DIB_FSN_CPU_FLAGS": " ".join(CpuNeeds.of(self.framework).flags),
            "SOURCE_DATE_EPOCH": str(self.epoch),
            # DIB's only "base package" is open-iscsi, whose install writes a random initiator
            # name (into the initrd too); the appliance boots from its own disk, not iSCSI.
            "DIB_SKIP_BASE_PACKAGE_INSTALL": "1",
            # Perl (debconf) and Python write hash-ordered files when their seed is random.
            "PERL_HASH_SEED": "0",
            "PYTHONHASHSEED": "0",
        }


def dib_version() -> str:
    result = subprocess.run(
        [_disk_image_create(), "--version"], capture_output=True, text=True, check=False
    )
    return result.stdout.strip() or result.stderr.strip()


@contextlib.contextmanager
def _dib_cache_lock(env: dict[str, str], progress: Progress | None) -> Iterator[None]:
    """One diskimage-builder run at a time per DIB cache: concurrent runs share its apt and
    debootstrap caches, and apt's lock there fails the second run in root.d."""
    cache = Path(env.get("DIB_IMAGE_CACHE") or Path.home() / ".cache" / "image-create")
    cache.mkdir(parents=True, exist_ok=True)
    with (cache / ".fsnbuild.lock").open("w") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            if progress is not None:
                progress("waiting for another diskimage-builder run to finish", 0.0)
            fcntl.flock(handle, fcntl.LOCK_EX)
        yield


def run_dib(job: DibJob, workdir: Path, log_path: Path, progress: Progress | None) -> Path:
    """Build the root tar in ``workdir``; return its path. DIB's output goes to ``log_path``."""
    output = workdir / "root"
    command = [_disk_image_create(), "-t", "tar", "-o", str(output), *job.elements]
    env = {**os.environ, **job.environment()}
    env["PATH"] = f"{Path(sys.executable).parent}:{env.get('PATH', '/usr/bin:/bin')}"
    log.info("running %s", " ".join(command))
    started = time.monotonic()
    phase = ""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    with _dib_cache_lock(env, progress), log_path.open("a") as log_file:
        log_file.write(f"$ {' '.join(command)}\n")
        log_file.flush()
        process = subprocess.Popen(
            command,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            errors="replace",
        )
        assert process.stdout is not None  # PIPE was asked for
        for line in process.stdout:
            log_file.write(line)
            match = _PHASE.search(line)
            if match and match.group(1) != phase:
                phase = match.group(1)
                if progress is not None:
                    progress(f"diskimage-builder: {phase}", time.monotonic() - started)
        code = process.wait()
    if code != 0:
        raise DiskError(
            f"diskimage-builder failed (exit {code}) in phase {phase or 'setup'}",
            hint=f"the full output is in {log_path}",
        )
    tar = output.with_suffix(".tar")
    if not tar.is_file():
        raise DiskError(f"diskimage-builder made no {tar}", hint=f"see {log_path}")
    return tar


def _disk_image_create() -> str:
    beside = Path(sys.executable).parent / "disk-image-create"
    found = str(beside) if beside.is_file() else shutil.which("disk-image-create")
    if found is None:
        raise DiskError(
            "disk-image-create is not installed",
            hint="install fsnbuild with the disk extra: pip install 'fsnbuild[disk]'",
        )
    return found
