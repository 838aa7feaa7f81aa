"""``docker save`` archives: write one that ``docker load`` accepts, and read one (from a file or
a running engine) into the blob store.

A docker archive carries no manifest, so the identity it can prove is the image ID: the digest
of its config. Reading checks each layer's uncompressed digest against the config's
``rootfs.diff_ids``, and accepts an expected digest equal either to the image ID or to the
digest of the OCI manifest fsnbuild derives (for an archive fsnbuild wrote, that is the
digest of the manifest the image was built with).
"""

from __future__ import annotations

import gzip
import hashlib
import json
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, ImageError
from fsnbuild.oci.blobs import CHUNK, BlobStore
from fsnbuild.oci.image import (
    OCI_CONFIG,
    OCI_LAYER,
    OCI_LAYER_GZIP,
    Descriptor,
    Image,
    canonical_json,
    store_image,
)
from fsnbuild.oci.layout import TarEntry, Tree, layout_entries, open_tree, write_tar

log = logging.getLogger(__name__)

_GZIP_MAGIC = b"\x1f\x8b"
_CORRUPT = "the archive is incomplete or corrupt; save it again"


def write_docker_archive(
    image: Image, store: BlobStore, dest: Path, *, repo_tags: Sequence[str], epoch: int
) -> None:
    """Write ``image`` as a ``docker load``-able archive, the same bytes every time.

    The archive is laid out as Docker 25+ saves images: an OCI layout (``blobs/sha256/...``,
    ``index.json``) plus ``manifest.json`` naming the config and the layers by path. Docker
    20.10 and later load it (they decompress gzip layers), and it is an OCI archive as well.
    """
    ref = repo_tags[0] if repo_tags else str(image.manifest_digest)
    entries = layout_entries(image, store, ref=ref)
    docker_manifest = [
        {
            "Config": f"blobs/sha256/{image.config_digest.hex}",
            "RepoTags": sorted(repo_tags),
            "Layers": [f"blobs/sha256/{layer.digest.hex}" for layer in image.layers],
        }
    ]
    entries.append(TarEntry("manifest.json", canonical_json(docker_manifest)))
    write_tar(dest, entries, store, epoch=epoch)
    log.info("wrote docker archive %s (%s as %s)", dest, image.config_digest, ", ".join(repo_tags))


@dataclass(frozen=True)
class _LayerFile:
    name: str
    digest: Digest  # of the bytes in the archive
    diff_id: Digest  # of the uncompressed tar
    size: int
    gzipped: bool


def read_docker_archive(
    path: Path, store: BlobStore, *, tag: str | None = None, expected: Digest | None = None
) -> Image:
    """Copy one image from a ``docker save`` archive into the store, as an OCI image."""
    with open_tree(path) as tree:
        entry = _choose_entry(tree, tag)
        config_name = str(entry["Config"])
        with tree.open(config_name) as stream:
            config_bytes = stream.read()
        image_id = Digest.of_bytes(config_bytes)
        _check_named_digest(tree, config_name, image_id)
        config: dict[str, Any] = json.loads(config_bytes)

        layer_files = [_hash_layer(tree, str(name)) for name in entry.get("Layers", [])]
        _check_diff_ids(tree, config, layer_files)
        manifest = {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "config": Descriptor(OCI_CONFIG, image_id, len(config_bytes)).to_json(),
            "layers": [
                Descriptor(OCI_LAYER_GZIP if f.gzipped else OCI_LAYER, f.digest, f.size).to_json()
                for f in layer_files
            ],
        }
        manifest_digest = Digest.of_bytes(canonical_json(manifest))
        if expected is not None and expected not in (image_id, manifest_digest):
            raise DigestMismatchError(
                f"{tree.label}: expected image {expected}, found image ID {image_id} "
                f"(manifest {manifest_digest})",
                hint="the archive holds another image than the pinned one; nothing was copied",
            )

        for f in layer_files:
            with tree.open(f.name) as stream:
                store.put_stream(stream, expected=f.digest, what=f"{tree.label} {f.name}")
        store.put_bytes(config_bytes, expected=image_id, what=f"{tree.label} {config_name}")
        return store_image(store, manifest)


def _choose_entry(tree: Tree, tag: str | None) -> dict[str, Any]:
    entries = tree.read_json("manifest.json")
    if not isinstance(entries, list) or not entries:
        raise ImageError(f"{tree.label}: manifest.json lists no image", hint=_CORRUPT)
    tags = sorted(t for e in entries for t in (e.get("RepoTags") or []))
    if tag is not None:
        matches = [e for e in entries if tag in (e.get("RepoTags") or [])]
        if not matches:
            raise ImageError(
                f"{tree.label}: no image tagged {tag!r} (tags: {', '.join(tags) or 'none'})",
                hint="name one of the listed tags",
            )
        entries = matches
    if len(entries) > 1:
        raise ImageError(
            f"{tree.label}: holds {len(entries)} images (tags: {', '.join(tags)}); which one?",
            hint="name the tag to read",
        )
    entry: dict[str, Any] = entries[0]
    return entry


def _check_named_digest(tree: Tree, name: str, actual: Digest) -> None:
    # Both the legacy (<hex>.json) and the OCI-style (blobs/sha256/<hex>) names claim a digest.
    match = re.search(r"([0-9a-f]{64})(\.json)?$", name)
    if match and match.group(1) != actual.hex:
        raise DigestMismatchError(
            f"{tree.label}: {name}: expected sha256:{match.group(1)}, got {actual}", hint=_CORRUPT
        )


def _hash_layer(tree: Tree, name: str) -> _LayerFile:
    """Hash a layer as stored and, for a gzip layer, also its uncompressed tar."""
    with tree.open(name) as stream:
        head = stream.read(2)
    gzipped = head == _GZIP_MAGIC
    outer, size = hashlib.sha256(), 0
    with tree.open(name) as stream:
        while chunk := stream.read(CHUNK):
            outer.update(chunk)
            size += len(chunk)
    digest = Digest("sha256", outer.hexdigest())
    if not gzipped:
        return _LayerFile(name, digest, digest, size, gzipped=False)
    inner = hashlib.sha256()
    with tree.open(name) as stream, gzip.GzipFile(fileobj=stream) as plain:
        while chunk := plain.read(CHUNK):
            inner.update(chunk)
    return _LayerFile(name, digest, Digest("sha256", inner.hexdigest()), size, gzipped=True)


def _check_diff_ids(tree: Tree, config: dict[str, Any], layers: list[_LayerFile]) -> None:
    diff_ids = [str(d) for d in config.get("rootfs", {}).get("diff_ids", [])]
    if len(diff_ids) != len(layers):
        raise ImageError(
            f"{tree.label}: config lists {len(diff_ids)} layers, manifest.json {len(layers)}",
            hint=_CORRUPT,
        )
    for want, layer in zip(diff_ids, layers, strict=True):
        if want != str(layer.diff_id):
            raise DigestMismatchError(
                f"{tree.label}: layer {layer.name}: expected {want}, got {layer.diff_id}",
                hint=_CORRUPT,
            )
