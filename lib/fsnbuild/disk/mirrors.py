"""The Debian mirror diskimage-builder uses, chosen from the machine's apt sources by suite.

fsnbuild never carries a host name of its own: DIB_DISTRIBUTION_MIRROR is the source serving
the disk's release, DIB_DEBIAN_SECURITY_MIRROR the one serving ``{release}-security``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import DiskError
from fsnbuild.mirrors import APT_DIR, AptSource, apt_sources


@dataclass(frozen=True)
class Mirror:
    """Where DIB fetches packages from."""

    distribution: str
    security: str

    def environment(self) -> dict[str, str]:
        return {
            "DIB_DISTRIBUTION_MIRROR": self.distribution,
            "DIB_DEBIAN_SECURITY_MIRROR": self.security,
        }


def find_mirror(release: str, apt_dir: Path = APT_DIR) -> Mirror:
    """The mirror serving ``release`` and ``release-security`` in the apt configuration."""
    sources = apt_sources(apt_dir)
    main = _uri_for(sources, release)
    if main is None:
        raise DiskError(
            f"{apt_dir}: no apt source serves suite {release!r}",
            hint="add the Debian mirror to /etc/apt/sources.list or sources.list.d/*.sources",
        )
    security = _uri_for(sources, f"{release}-security")
    # A mirror that carries the security archive does so at the sibling path by convention.
    return Mirror(distribution=main, security=security or f"{main}-security")


def _uri_for(sources: tuple[AptSource, ...], suite: str) -> str | None:
    for source in sources:
        if suite in source.suites:
            return source.uri.rstrip("/")
    return None
