"""Where each named index lives for this run: variants.toml, ``--index NAME=URL`` or the
environment, and for the default index the resolver's own configured default.

Addresses are run-time facts, never lock content: a lock records index names only.
"""

from __future__ import annotations

import os
import subprocess
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.config import Project
from fsnbuild.errors import ConfigError, LockError


def env_var(index_name: str) -> str:
    return "FSNBUILD_INDEX_" + index_name.upper().replace("-", "_")


@dataclass(frozen=True)
class IndexUrls:
    """Resolved address per index name; ``None`` where none was given."""

    urls: dict[str, str | None]
    default: str  # name of the default index

    def url(self, name: str) -> str | None:
        return self.urls.get(name)

    def require(self, name: str, *, why: str) -> str:
        url = self.urls.get(name)
        if not url:
            raise LockError(
                f"index '{name}' has no address: {why}",
                hint=f"pass --index {name}=URL or set {env_var(name)}=URL",
            )
        return url

    def name_of(self, url: str) -> str | None:
        wanted = _norm(url)
        for name, candidate in self.urls.items():
            if candidate and _norm(candidate) == wanted:
                return name
        return None


def parse_overrides(values: list[str], project: Project) -> dict[str, str]:
    out = {}
    for value in values:
        name, sep, url = value.partition("=")
        if not sep or not url:
            raise ConfigError(f"--index {value!r} is not NAME=URL", hint="e.g. --index pypi=URL")
        if name not in project.indexes:
            raise ConfigError(
                f"--index names unknown index '{name}'",
                hint=f"declared indexes: {', '.join(sorted(project.indexes))}",
            )
        out[name] = _checked_url(url, f"--index {name}")
    return out


def _checked_url(url: str, where: str) -> str:
    if not url.startswith(("http://", "https://", "file://")):
        raise ConfigError(
            f"{where}: {url!r} is not an index address",
            hint="give an http://, https:// or file:// URL of a PEP 503 simple index",
        )
    return url


def resolve_index_urls(project: Project, overrides: Mapping[str, str]) -> IndexUrls:
    urls: dict[str, str | None] = {}
    for name, index in project.indexes.items():
        from_env = os.environ.get(env_var(name))
        if from_env:
            _checked_url(from_env, env_var(name))
        url = overrides.get(name) or from_env or index.url
        if not url and index.default:
            url = resolver_default_index()
        urls[name] = url.rstrip("/") if url else None
    return IndexUrls(urls=urls, default=project.default_index.name)


def resolver_default_index() -> str:
    """The index uv is configured to use (its own settings and environment), asked at run time."""
    with tempfile.TemporaryDirectory() as tmp:
        empty = Path(tmp) / "empty.txt"
        empty.write_text("")
        result = subprocess.run(
            [uv_binary(), "pip", "compile", str(empty), "--emit-index-url", "--no-header", "-q"],
            capture_output=True,
            text=True,
            check=False,
        )
    for line in result.stdout.splitlines():
        if line.startswith("--index-url "):
            return line.split(" ", 1)[1].strip()
    raise LockError("could not learn uv's default index", hint=result.stderr.strip()[:200])


def uv_binary() -> str:
    from uv import find_uv_bin

    return str(find_uv_bin())


def _norm(url: str) -> str:
    return url.rstrip("/")
