"""Content digests (``algorithm:hex``) as a typed value, and streaming hashing of files."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

from fsnbuild.errors import DigestMismatchError, FsnbuildError

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
_CHUNK = 1 << 20


@dataclass(frozen=True, order=True)
class Digest:
    """A digest such as ``sha256:9f86d0...``; always lower-case hex."""

    algorithm: str
    hex: str

    @classmethod
    def parse(cls, text: str, *, what: str = "digest") -> Digest:
        algorithm, sep, hexpart = text.partition(":")
        length = _HEX_LENGTH.get(algorithm)
        if not sep or length is None or not re.fullmatch(rf"[0-9a-f]{{{length}}}", hexpart):
            raise FsnbuildError(
                f"{what} {text!r} is not a valid digest",
                hint="write it as sha256: followed by 64 lower-case hex digits",
            )
        return cls(algorithm, hexpart)

    @classmethod
    def of_bytes(cls, data: bytes) -> Digest:
        return cls("sha256", hashlib.sha256(data).hexdigest())

    @classmethod
    def of_file(cls, path: Path) -> Digest:
        with path.open("rb") as stream:
            return cls.of_stream(stream)

    @classmethod
    def of_stream(cls, stream: BinaryIO) -> Digest:
        hasher = hashlib.sha256()
        while chunk := stream.read(_CHUNK):
            hasher.update(chunk)
        return cls("sha256", hasher.hexdigest())

    @property
    def short(self) -> str:
        return self.hex[:12]

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    def verify_file(self, path: Path, *, what: str) -> None:
        """Raise, naming both digests, unless the file at ``path`` hashes to this digest."""
        actual = Digest.of_file(path)
        if actual != self:
            raise DigestMismatchError(
                f"{what}: expected {self}, got {actual}",
                hint="the source changed or the download was corrupted; nothing was kept",
            )
