"""A content-addressed blob store (``ROOT/blobs/sha256/<hex>``) that verifies every blob it
takes in and every blob it hands out, so a corrupt byte is caught where it is read."""

from __future__ import annotations

import hashlib
import logging
import os
import shutil
import tempfile
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import IO

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, ImageError
from fsnbuild.fsutil import atomic_path

log = logging.getLogger(__name__)

CHUNK = 1 << 20


def _mismatch(what: str, expected: Digest, actual: Digest) -> DigestMismatchError:
    return DigestMismatchError(
        f"{what}: expected {expected}, got {actual}",
        hint="the source changed or the transfer was corrupted; the bytes were not kept",
    )


class HashingReader:
    """A read-only file wrapper that hashes what passes through, for verify-while-copying."""

    def __init__(self, raw: IO[bytes]) -> None:
        self._raw = raw
        self._hasher = hashlib.sha256()
        self.size = 0

    def read(self, n: int = -1) -> bytes:
        data = self._raw.read(n)
        self._hasher.update(data)
        self.size += len(data)
        return data

    @property
    def digest(self) -> Digest:
        return Digest("sha256", self._hasher.hexdigest())


class BlobStore:
    """Blobs named by their sha256; writes are atomic (temporary name, then rename)."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._dir = root / "blobs" / "sha256"

    def path(self, digest: Digest) -> Path:
        if digest.algorithm != "sha256":
            raise ImageError(
                f"{digest}: only sha256 blobs are supported",
                hint="OCI images and registries use sha256 digests",
            )
        return self._dir / digest.hex

    def has(self, digest: Digest) -> bool:
        return self.path(digest).is_file()

    def size(self, digest: Digest) -> int:
        return self.path(digest).stat().st_size

    def digests(self) -> list[Digest]:
        """Every blob in the store, sorted (temporary files are not blobs)."""
        if not self._dir.is_dir():
            return []
        return sorted(Digest("sha256", p.name) for p in self._dir.iterdir() if len(p.name) == 64)

    def put_chunks(
        self, chunks: Iterable[bytes], *, expected: Digest | None = None, what: str = "blob"
    ) -> Digest:
        """Store a stream of bytes; with ``expected``, refuse (and keep nothing) on a mismatch."""
        if expected is not None and self.has(expected):
            # Already verified when it came in; drain nothing, the caller's stream is unused.
            return expected
        hasher = hashlib.sha256()
        self._dir.mkdir(parents=True, exist_ok=True)
        # The final name is known only once hashed; a dot-prefixed temporary name is never a blob.
        fd, name = tempfile.mkstemp(prefix=".incoming.", dir=self._dir)
        tmp = Path(name)
        try:
            with os.fdopen(fd, "wb") as out:
                for chunk in chunks:
                    hasher.update(chunk)
                    out.write(chunk)
            actual = Digest("sha256", hasher.hexdigest())
            if expected is not None and actual != expected:
                raise _mismatch(what, expected, actual)
            tmp.chmod(0o644)
            os.replace(tmp, self.path(actual))
        except BaseException:
            tmp.unlink(missing_ok=True)
            raise
        log.debug("stored %s (%s)", actual, what)
        return actual

    def put_bytes(
        self, data: bytes, *, expected: Digest | None = None, what: str = "blob"
    ) -> Digest:
        return self.put_chunks([data], expected=expected, what=what)

    def put_file(self, source: Path, *, expected: Digest | None = None, what: str = "") -> Digest:
        with source.open("rb") as stream:
            return self.put_stream(stream, expected=expected, what=what or str(source))

    def put_stream(
        self, stream: IO[bytes], *, expected: Digest | None = None, what: str = "blob"
    ) -> Digest:
        return self.put_chunks(iter(lambda: stream.read(CHUNK), b""), expected=expected, what=what)

    def chunks(self, digest: Digest) -> Iterator[bytes]:
        """Yield a blob's bytes; after the last chunk, raise (and delete it) if it was corrupt."""
        hasher = hashlib.sha256()
        with self._open(digest) as stream:
            while chunk := stream.read(CHUNK):
                hasher.update(chunk)
                yield chunk
        self._check(digest, Digest("sha256", hasher.hexdigest()))

    def read_bytes(self, digest: Digest) -> bytes:
        with self._open(digest) as stream:
            data = stream.read()
        self._check(digest, Digest.of_bytes(data))
        return data

    def verify(self, digest: Digest) -> None:
        """Rehash a stored blob; a corrupt one is deleted and DigestMismatchError raised."""
        for _ in self.chunks(digest):
            pass

    def copy_to(self, digest: Digest, target: Path) -> None:
        """Copy a blob to ``target`` atomically, verifying the bytes on the way."""
        with atomic_path(target) as tmp, self._open(digest) as src, tmp.open("wb") as out:
            reader = HashingReader(src)
            shutil.copyfileobj(reader, out, CHUNK)
            self._check(digest, reader.digest)
            tmp.chmod(0o644)

    def delete(self, digest: Digest) -> None:
        self.path(digest).unlink(missing_ok=True)

    def _open(self, digest: Digest) -> IO[bytes]:
        try:
            return self.path(digest).open("rb")
        except FileNotFoundError:
            raise ImageError(
                f"blob {digest} is not in the store {self.root}",
                hint="fetch the image again; the store may have been cleaned",
            ) from None

    def _check(self, expected: Digest, actual: Digest) -> None:
        if actual != expected:
            self.delete(expected)
            raise _mismatch(f"stored blob {self.path(expected)}", expected, actual)
