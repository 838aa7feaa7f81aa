"""Image references (``HOST[:PORT]/REPO[:TAG][@DIGEST]``) and the registry mirror setting."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass

from fsnbuild.digest import Digest
from fsnbuild.errors import RegistryError

MIRROR_ENV = "FSNBUILD_REGISTRY_MIRROR"


@dataclass(frozen=True)
class ImageRef:
    """``HOST[:PORT]/REPO[:TAG][@DIGEST]``; ``registry`` is None for a name without a host,
    which only a registry mirror can serve (fsnbuild names no default registry)."""

    registry: str | None
    repository: str
    tag: str | None
    digest: Digest | None

    @classmethod
    def parse(cls, text: str) -> ImageRef:
        name, _, digest_text = text.partition("@")
        digest = Digest.parse(digest_text, what=f"image {text!r}") if digest_text else None
        first, slash, rest = name.partition("/")
        registry: str | None = None
        if slash and ("." in first or ":" in first or first == "localhost"):
            registry, name = first, rest
        tag = None
        last_colon = name.rfind(":")
        if last_colon > name.rfind("/"):
            name, tag = name[:last_colon], name[last_colon + 1 :]
        if registry is None and "/" not in name:
            name = f"library/{name}"  # the convention of Docker's default registry and mirrors
        if not re.fullmatch(r"[a-z0-9]+([._/-][a-z0-9]+)*", name) or tag == "":
            raise RegistryError(
                f"{text!r} is not an image reference",
                hint="write HOST[:PORT]/REPOSITORY[:TAG][@sha256:DIGEST]",
            )
        return cls(registry, name, tag, digest)

    @property
    def reference(self) -> str:
        """What to ask the registry for: the digest when pinned, else the tag."""
        return str(self.digest) if self.digest else (self.tag or "latest")

    def __str__(self) -> str:
        text = f"{self.registry}/{self.repository}" if self.registry else self.repository
        text += f":{self.tag}" if self.tag else ""
        return text + (f"@{self.digest}" if self.digest else "")


def registry_mirror(explicit: str | None = None) -> str | None:
    """The host[:port] to pull from instead of an image's own registry, if one is set."""
    return explicit or os.environ.get(MIRROR_ENV) or None
