"""Atomic writes: every output is written under a temporary name and renamed into place."""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: Path, *, is_dir: bool = False) -> Iterator[Path]:
    """Yield a temporary sibling of ``target``; rename it onto ``target`` only on success."""
    target.parent.mkdir(parents=True, exist_ok=True)
    if is_dir:
        tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", dir=target.parent))
    else:
        fd, name = tempfile.mkstemp(prefix=f".{target.name}.", dir=target.parent)
        os.close(fd)
        tmp = Path(name)
    try:
        yield tmp
        if is_dir and target.exists():
            shutil.rmtree(target)
        os.replace(tmp, target)
    except BaseException:
        if tmp.is_dir():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            tmp.unlink(missing_ok=True)
        raise


def write_bytes_atomic(target: Path, data: bytes, mode: int = 0o644) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)
        # mkstemp creates 0600 files; outputs get a fixed mode whatever the umask.
        tmp.chmod(mode)


def write_text_atomic(target: Path, text: str, mode: int = 0o644) -> None:
    write_bytes_atomic(target, text.encode(), mode)
