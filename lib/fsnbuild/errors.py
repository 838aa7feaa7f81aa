"""The exception tree: every failure fsnbuild reports to a user derives from FsnbuildError."""

from __future__ import annotations


class FsnbuildError(Exception):
    """A failure with a message naming the file, key, package or digest, and a hint."""

    exit_code = 1

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message


class ConfigError(FsnbuildError):
    """variants.toml (or another input file) is malformed or inconsistent."""

    exit_code = 2


class LockError(FsnbuildError):
    """A lock could not be resolved or written."""


class StaleLockError(LockError):
    """A lock is missing or does not match its inputs."""

    exit_code = 3


class DigestMismatchError(FsnbuildError):
    """Bytes did not hash to the digest they were promised to have."""


class RegistryError(FsnbuildError):
    """A registry, daemon or archive could not provide an image."""


class WheelError(FsnbuildError):
    """A wheel is missing, corrupt or unsafe to install."""


class ImageError(FsnbuildError):
    """A container image could not be built, loaded or checked."""


class DiskError(FsnbuildError):
    """A disk image could not be built or checked."""
