"""Boot an appliance QCOW2 under QEMU with a context CD-ROM and watch its serial console.

Used by the integration tests and by anyone checking a disk by hand: the context disc is
OpenNebula's (ISO 9660 labelled CONTEXT holding context.sh of KEY='value' lines).
"""

from __future__ import annotations

import re
import subprocess
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import DiskError


def context_sh(values: dict[str, str]) -> str:
    """KEY='value' lines; a quote inside a value is written as '\\'' as OpenNebula does."""
    lines = []
    for key in sorted(values):
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key) or "\n" in values[key]:
            raise DiskError(f"context variable {key!r} cannot be written", hint="KEY='one line'")
        quoted = values[key].replace("'", "'\\''")
        lines.append(f"{key}='{quoted}'\n")
    return "".join(lines)


def write_context_iso(path: Path, values: dict[str, str]) -> None:
    with tempfile.TemporaryDirectory(prefix="fsn-context.") as tmp:
        (Path(tmp) / "context.sh").write_text(context_sh(values))
        command = ["genisoimage", "-quiet", "-V", "CONTEXT", "-J", "-R", "-o", str(path), tmp]
        result = subprocess.run(command, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise DiskError(
            f"genisoimage failed: {result.stderr.strip()}", hint="apt-get install -y genisoimage"
        )


@dataclass(frozen=True)
class BootResult:
    matched: str | None  # the pattern that ended the watch, None on timeout
    seconds: float
    console: str


def boot(
    qcow2: Path,
    context_iso: Path | None,
    *,
    until: tuple[str, ...],
    console_log: Path,
    timeout: float = 600,
    cpu: str = "max",
    memory_mib: int = 2048,
) -> BootResult:
    """Boot with software emulation until a console line matches one of ``until``.

    The disk is opened with snapshot=on: the QCOW2 is never written, so boots can share it.
    """
    command = [
        "qemu-system-x86_64",
        "-machine",
        "pc",
        "-accel",
        "tcg",
        "-cpu",
        cpu,
        "-smp",
        "2",
        "-m",
        str(memory_mib),
        "-display",
        "none",
        "-monitor",
        "none",
        "-serial",
        f"file:{console_log}",
        "-no-reboot",
        "-nic",
        "none",
        "-drive",
        f"file={qcow2},format=qcow2,if=virtio,snapshot=on",
    ]
    if context_iso is not None:
        command += ["-drive", f"file={context_iso},format=raw,media=cdrom,readonly=on"]
    console_log.unlink(missing_ok=True)
    patterns = [re.compile(p) for p in until]
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    try:
        while time.monotonic() - started < timeout:
            text = console_log.read_text(errors="replace") if console_log.exists() else ""
            for pattern in patterns:
                if pattern.search(text):
                    return BootResult(pattern.pattern, time.monotonic() - started, text)
            if process.poll() is not None:
                break
            time.sleep(1)
    finally:
        process.kill()
        process.wait()
    text = console_log.read_text(errors="replace") if console_log.exists() else ""
    return BootResult(None, time.monotonic() - started, text)
