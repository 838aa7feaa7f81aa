"""The Debian mirrors this machine's apt is configured with, read at run time from /etc/apt.

fsnbuild never names a mirror host: debootstrap and diskimage-builder get whatever the
machine's own ``sources.list`` (one-line format) or ``*.sources`` (deb822) files point at.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import ConfigError

APT_DIR = Path("/etc/apt")


@dataclass(frozen=True)
class AptSource:
    """One ``deb`` entry: a URI and the suites it serves."""

    uri: str
    suites: tuple[str, ...]

    @property
    def is_security(self) -> bool:
        return any(s.endswith("-security") or s.endswith("/updates") for s in self.suites)


def debian_mirror(apt_dir: Path = APT_DIR) -> str:
    """The URI of the main Debian archive (the entry that serves a suite like ``bookworm``)."""
    return _pick(apt_dir, security=False)


def debian_security_mirror(apt_dir: Path = APT_DIR) -> str:
    """The URI of the Debian security archive (the entry serving ``bookworm-security``)."""
    return _pick(apt_dir, security=True)


def apt_sources(apt_dir: Path = APT_DIR) -> tuple[AptSource, ...]:
    """Every ``deb`` entry in ``sources.list``, ``sources.list.d/*.list`` and ``*.sources``."""
    found: list[AptSource] = []
    one_line = [apt_dir / "sources.list", *sorted((apt_dir / "sources.list.d").glob("*.list"))]
    for path in one_line:
        if path.is_file():
            found.extend(_parse_one_line(path.read_text()))
    for path in sorted((apt_dir / "sources.list.d").glob("*.sources")):
        found.extend(_parse_deb822(path.read_text()))
    return tuple(found)


def _pick(apt_dir: Path, *, security: bool) -> str:
    sources = apt_sources(apt_dir)
    for source in sources:
        if source.is_security == security and _looks_like_debian(source.uri, security=security):
            return source.uri.rstrip("/")
    kind = "debian-security" if security else "debian"
    raise ConfigError(
        f"{apt_dir}: no {kind} archive among {len(sources)} apt source entries",
        hint="add a `deb` line (sources.list) or a deb822 `URIs:` stanza for the Debian archive",
    )


def _looks_like_debian(uri: str, *, security: bool) -> bool:
    # Third-party repositories (cloud SDKs, node) are `deb` entries too; Debian's archives sit
    # at a path ending in debian or debian-security, or at the root of a dedicated mirror host.
    path = uri.split("://", 1)[-1].partition("/")[2].rstrip("/")
    last = path.rsplit("/", 1)[-1] if path else ""
    if security:
        return last in ("debian-security", "") or "security" in last
    return last in ("debian", "")


def _parse_one_line(text: str) -> list[AptSource]:
    found = []
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words or words[0] != "deb":
            continue
        words = words[1:]
        if words and words[0].startswith("["):
            # Options such as [signed-by=...] may span several words up to the closing bracket.
            while words and not words[0].endswith("]"):
                words = words[1:]
            words = words[1:]
        if len(words) >= 2:
            found.append(AptSource(uri=words[0], suites=(words[1],)))
    return found


def _parse_deb822(text: str) -> list[AptSource]:
    found: list[AptSource] = []
    for stanza in _stanzas(text):
        if "deb" not in stanza.get("types", "").split():
            continue
        if stanza.get("enabled", "yes").lower() == "no":
            continue
        suites = tuple(stanza.get("suites", "").split())
        found.extend(AptSource(uri=uri, suites=suites) for uri in stanza.get("uris", "").split())
    return found


def _stanzas(text: str) -> list[dict[str, str]]:
    stanzas: list[dict[str, str]] = []
    fields: dict[str, str] = {}
    key = ""
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        if not line.strip():
            if fields:
                stanzas.append(fields)
            fields, key = {}, ""
        elif line[0] in " \t" and key:
            fields[key] += " " + line.strip()
        elif ":" in line:
            key, _, value = line.partition(":")
            key = key.strip().lower()
            fields[key] = value.strip()
    if fields:
        stanzas.append(fields)
    return stanzas
