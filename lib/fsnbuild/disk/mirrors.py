"""The Debian mirror this machine is configured with, read from its apt sources at run time.

diskimage-builder needs the archive and the security archive of one mirror; fsnbuild never
carries a host name of its own, so both come from ``sources.list`` or deb822 ``*.sources``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import DiskError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class Mirror:
    """Where DIB fetches packages: DIB_DISTRIBUTION_MIRROR and DIB_DEBIAN_SECURITY_MIRROR."""

    distribution: str
    security: str

    def environment(self) -> dict[str, str]:
        return {
            "DIB_DISTRIBUTION_MIRROR": self.distribution,
            "DIB_DEBIAN_SECURITY_MIRROR": self.security,
        }


@dataclass(frozen=True)
class _Source:
    uri: str
    suites: tuple[str, ...]


def find_mirror(release: str, apt_dir: Path = APT_DIR) -> Mirror:
    """The mirror serving ``release`` and ``release-security`` in the apt configuration."""
    sources = _read_sources(apt_dir)
    main = _uri_for(sources, release)
    if main is None:
        raise DiskError(
            f"{apt_dir}: no apt source serves suite {release!r}",
            hint="add the Debian mirror to /etc/apt/sources.list or sources.list.d/*.sources",
        )
    security = _uri_for(sources, f"{release}-security")
    # A mirror that carries the security archive does so at the sibling path by convention.
    return Mirror(distribution=main, security=security or f"{main}-security")


def _uri_for(sources: list[_Source], suite: str) -> str | None:
    for source in sources:
        if suite in source.suites:
            return source.uri.rstrip("/")
    return None


def _read_sources(apt_dir: Path) -> list[_Source]:
    found: list[_Source] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            found.extend(parse_one_line(path.read_text()))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        found.extend(parse_deb822(path.read_text()))
    return found


def parse_one_line(text: str) -> list[_Source]:
    """``deb [options] URI SUITE COMPONENT...`` lines; deb-src and comments are skipped."""
    out: list[_Source] = []
    for line in text.splitlines():
        words = re.sub(r"\[[^]]*\]", " ", line.split("#", 1)[0]).split()
        if len(words) >= 3 and words[0] == "deb":
            out.append(_Source(words[1], (words[2],)))
    return out


def parse_deb822(text: str) -> list[_Source]:
    """Stanzas of ``Types:``/``URIs:``/``Suites:`` fields, separated by blank lines."""
    out: list[_Source] = []
    for stanza in re.split(r"\n\s*\n", text):
        fields: dict[str, str] = {}
        for line in stanza.splitlines():
            if line.startswith("#") or ":" not in line or line[:1].isspace():
                continue
            key, _, value = line.partition(":")
            fields[key.strip().lower()] = value.strip()
        if "deb" not in fields.get("types", "").split() or fields.get("enabled") == "no":
            continue
        suites = tuple(fields.get("suites", "").split())
        out.extend(_Source(uri, suites) for uri in fields.get("uris", "").split())
    return out
