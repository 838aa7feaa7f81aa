"""Input fingerprints: what a lock was made from, hashed part by part so that ``--check`` can
say which part changed without touching the network."""

from __future__ import annotations

import hashlib
import json
from typing import Any

from fsnbuild.config import Project, Variant

BASE_LOCK = "base"


def parts(
    project: Project, variant: Variant | None, resolver: str, base_lock: str | None
) -> dict[str, str]:
    """Named hashes of every input; ``variant`` None means the base lock."""
    index_routing = {
        name: {"default": index.default} for name, index in sorted(project.indexes.items())
    }
    raw: dict[str, Any] = {
        "target": project.canonical(project.target),
        "indexes": index_routing,
        "resolver": resolver,
        "base-provides": sorted(project.base.provides),
    }
    if variant is not None:
        raw["packages"] = sorted(variant.packages)
        raw["routes"] = [list(route) for route in variant.routes]
        raw["base-digest"] = str(project.base.digest)
        raw["base-lock"] = base_lock or ""
    return {key: _hash(value) for key, value in sorted(raw.items())}


def combine(components: dict[str, str]) -> str:
    return _hash(components)


def _hash(value: Any) -> str:
    text = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()
