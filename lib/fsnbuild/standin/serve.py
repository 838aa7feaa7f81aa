"""Put a built stand-in into a registry, so builds can pin and pull it like any base image."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path

from fsnbuild.digest import Digest
from fsnbuild.errors import ImageError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.image import Image
from fsnbuild.oci.layout import read_layout
from fsnbuild.oci.sources import push_image
from fsnbuild.standin.build import REPOSITORY, TAG

log = logging.getLogger(__name__)


def serve_standin(
    layout: Path,
    registry_url: str,
    repo: str = REPOSITORY,
    tag: str = TAG,
    *,
    expected: Digest | None = None,
) -> Digest:
    """Push the stand-in in the OCI layout ``layout`` to ``registry_url`` as ``repo:tag``.

    ``registry_url`` is ``HOST:PORT`` (``http://`` or ``https://`` in front is accepted). With
    ``expected`` (the digest pinned in variants.toml), a different image is refused before any
    byte is sent. Returns the manifest digest the registry now serves.
    """
    host = registry_url.split("://", 1)[-1].rstrip("/")
    with tempfile.TemporaryDirectory(prefix="fsnbuild-standin-") as tmp:
        store = BlobStore(Path(tmp))
        image = read_layout(layout, store, ref=tag, expected=expected)
        check_is_standin(image)
        digest = push_image(image, store, f"{host}/{repo}:{tag}")
    log.info("serving stand-in %s at %s/%s:%s", digest, host, repo, tag)
    return digest


def check_is_standin(image: Image) -> None:
    """Refuse an image without the stand-in label: this path never publishes anything else."""
    labels = image.config.get("config", {}).get("Labels") or {}
    if labels.get("io.fsnbuild.standin") != "true":
        raise ImageError(
            f"image {image.manifest_digest} has no io.fsnbuild.standin=true label",
            hint="serve_standin only pushes images built by build_standin",
        )
