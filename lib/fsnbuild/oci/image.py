"""OCI image values (descriptors, images) and ``build_image``, which stacks new layers on a base
image and writes a config and manifest whose digests depend only on their inputs."""

from __future__ import annotations

import copy
import datetime
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsnbuild.digest import Digest
from fsnbuild.errors import ImageError
from fsnbuild.oci.blobs import BlobStore

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
DOCKER_LAYER_FOREIGN = "application/vnd.docker.image.rootfs.foreign.diff.tar.gzip"
OCI_LAYER_NONDIST_GZIP = "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip"

MANIFEST_TYPES = (OCI_MANIFEST, DOCKER_MANIFEST)
INDEX_TYPES = (OCI_INDEX, DOCKER_MANIFEST_LIST)
REF_NAME = "org.opencontainers.image.ref.name"

# The same bytes under their OCI name, so a manifest built on a Docker base is all-OCI.
_TO_OCI_LAYER = {
    DOCKER_LAYER_GZIP: OCI_LAYER_GZIP,
    DOCKER_LAYER_FOREIGN: OCI_LAYER_NONDIST_GZIP,
}

# What a new image takes over from its base's runtime config; anything else (Docker's
# "container_config", "docker_version", healthchecks...) describes how the base was made.
INHERITED_CONFIG = (
    "Cmd",
    "Entrypoint",
    "Env",
    "ExposedPorts",
    "Labels",
    "StopSignal",
    "User",
    "Volumes",
    "WorkingDir",
)


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces: equal values always give equal bytes and so equal digests."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def rfc3339(epoch: int) -> str:
    return datetime.datetime.fromtimestamp(epoch, datetime.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    annotations: Mapping[str, str] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "mediaType": self.media_type,
            "digest": str(self.digest),
            "size": self.size,
        }
        if self.annotations:
            out["annotations"] = dict(sorted(self.annotations.items()))
        return out

    @classmethod
    def from_json(cls, data: Mapping[str, Any], *, what: str) -> Descriptor:
        try:
            return cls(
                media_type=str(data["mediaType"]),
                digest=Digest.parse(str(data["digest"]), what=f"{what} digest"),
                size=int(data["size"]),
                annotations=dict(data.get("annotations") or {}),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise ImageError(
                f"{what}: malformed descriptor {dict(data)!r} ({exc})",
                hint="the manifest or index does not follow the OCI image spec",
            ) from None


@dataclass(frozen=True)
class Image:
    """A stored image: its manifest and config (both in the blob store) and its layers."""

    manifest_digest: Digest
    manifest: dict[str, Any]
    config_digest: Digest
    config: dict[str, Any]
    layers: tuple[Descriptor, ...]

    @property
    def media_type(self) -> str:
        return str(self.manifest.get("mediaType", OCI_MANIFEST))

    @property
    def diff_ids(self) -> tuple[Digest, ...]:
        ids = self.config.get("rootfs", {}).get("diff_ids", [])
        return tuple(Digest.parse(str(d), what="config diff_id") for d in ids)

    @property
    def blob_digests(self) -> tuple[Digest, ...]:
        """Config, then layers: every blob a copy of this image needs besides the manifest."""
        return (self.config_digest, *(layer.digest for layer in self.layers))


@dataclass(frozen=True)
class NewLayer:
    """A gzip-compressed layer tar made by fsnbuild.layers, ready to be stacked on an image."""

    path: Path
    digest: Digest  # of the gzip bytes
    diff_id: Digest  # of the uncompressed tar
    size: int
    comment: str  # names the layer's packages; becomes the history entry


@dataclass(frozen=True)
class ConfigChanges:
    """Runtime settings that replace the base's; None leaves the base's value in place."""

    env: Mapping[str, str] = field(default_factory=dict)  # set or override these variables
    entrypoint: Sequence[str] | None = None
    cmd: Sequence[str] | None = None
    user: str | None = None
    working_dir: str | None = None


def load_image(store: BlobStore, manifest_digest: Digest) -> Image:
    """Read a manifest and its config from the store (both verified) into an Image."""
    manifest = _json_blob(store, manifest_digest, what=f"manifest {manifest_digest}")
    media_type = manifest.get("mediaType", OCI_MANIFEST)
    if media_type not in MANIFEST_TYPES or manifest.get("schemaVersion") != 2:
        raise ImageError(
            f"manifest {manifest_digest} has media type {media_type!r}, schemaVersion "
            f"{manifest.get('schemaVersion')!r}; expected one of {', '.join(MANIFEST_TYPES)}",
            hint="only OCI and Docker schema 2 image manifests are supported",
        )
    what = f"manifest {manifest_digest}"
    config_desc = Descriptor.from_json(manifest.get("config", {}), what=f"{what} config")
    layers = tuple(
        Descriptor.from_json(layer, what=f"{what} layer {i}")
        for i, layer in enumerate(manifest.get("layers", []))
    )
    config = _json_blob(store, config_desc.digest, what=f"config {config_desc.digest}")
    return Image(manifest_digest, manifest, config_desc.digest, config, layers)


def store_image(store: BlobStore, manifest: dict[str, Any]) -> Image:
    """Write a manifest (its config and layers already stored) and return the Image."""
    digest = store.put_bytes(canonical_json(manifest), what="manifest")
    return load_image(store, digest)


def build_image(
    store: BlobStore,
    *,
    base: Image | None,
    layers: Sequence[NewLayer],
    config_changes: ConfigChanges = ConfigChanges(),
    labels: Mapping[str, str] | None = None,
    history: Sequence[str] | None = None,
    created_epoch: int,
) -> Image:
    """Stack ``layers`` on ``base`` (or on nothing) and store the new config and manifest.

    ``history`` gives each new layer's ``created_by`` text (default: ``fsnbuild: <comment>``).
    The same base, layers, changes, labels and epoch always give the same manifest digest.
    """
    if history is not None and len(history) != len(layers):
        raise ImageError(
            f"history has {len(history)} entries for {len(layers)} new layers",
            hint="give one created_by text per layer, or none",
        )
    created = rfc3339(created_epoch)
    new_descriptors = [_store_layer(store, layer) for layer in layers]

    config = _base_config(base)
    runtime = config["config"]
    _apply_changes(runtime, config_changes)
    if labels:
        runtime["Labels"] = dict(sorted({**(runtime.get("Labels") or {}), **labels}.items()))
    config["rootfs"]["diff_ids"].extend(str(layer.diff_id) for layer in layers)
    for i, layer in enumerate(layers):
        created_by = history[i] if history is not None else f"fsnbuild: {layer.comment}"
        entry = {"created": created, "created_by": created_by, "comment": layer.comment}
        config["history"].append(entry)
    config["created"] = created

    config_bytes = canonical_json(config)
    config_digest = store.put_bytes(config_bytes, what="image config")
    base_layers = [_as_oci_layer(d) for d in base.layers] if base is not None else []
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": Descriptor(OCI_CONFIG, config_digest, len(config_bytes)).to_json(),
        "layers": [d.to_json() for d in (*base_layers, *new_descriptors)],
    }
    return store_image(store, manifest)


def _store_layer(store: BlobStore, layer: NewLayer) -> Descriptor:
    digest = store.put_file(layer.path, expected=layer.digest, what=f"layer {layer.path}")
    size = store.size(digest)
    if size != layer.size:
        raise ImageError(
            f"layer {layer.path} is {size} bytes, but {layer.size} were recorded",
            hint="the layer file changed after it was built; rebuild it",
        )
    return Descriptor(OCI_LAYER_GZIP, digest, size)


def _base_config(base: Image | None) -> dict[str, Any]:
    if base is None:
        return {
            "architecture": "amd64",
            "os": "linux",
            "config": {},
            "rootfs": {"type": "layers", "diff_ids": []},
            "history": [],
        }
    old = copy.deepcopy(base.config)
    config: dict[str, Any] = {
        key: old[key] for key in ("architecture", "os", "os.version", "variant") if key in old
    }
    runtime = old.get("config") or {}
    config["config"] = {key: runtime[key] for key in INHERITED_CONFIG if runtime.get(key)}
    config["rootfs"] = {
        "type": "layers",
        "diff_ids": list(old.get("rootfs", {}).get("diff_ids", [])),
    }
    config["history"] = list(old.get("history", []))
    return config


def _apply_changes(runtime: dict[str, Any], changes: ConfigChanges) -> None:
    if changes.env:
        env = dict(item.partition("=")[::2] for item in runtime.get("Env", []))
        # Base order first (PATH stays first), then new variables in sorted order.
        env.update(sorted(changes.env.items()))
        runtime["Env"] = [f"{k}={v}" for k, v in env.items()]
    if changes.entrypoint is not None:
        runtime["Entrypoint"] = list(changes.entrypoint)
    if changes.cmd is not None:
        runtime["Cmd"] = list(changes.cmd)
    if changes.user is not None:
        runtime["User"] = changes.user
    if changes.working_dir is not None:
        runtime["WorkingDir"] = changes.working_dir


def _as_oci_layer(desc: Descriptor) -> Descriptor:
    media_type = _TO_OCI_LAYER.get(desc.media_type, desc.media_type)
    return Descriptor(media_type, desc.digest, desc.size, desc.annotations)


def _json_blob(store: BlobStore, digest: Digest, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(store.read_bytes(digest))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ImageError(f"{what} is not valid JSON: {exc}", hint="the image is corrupt") from None
    if not isinstance(value, dict):
        raise ImageError(f"{what} is not a JSON object", hint="the image is corrupt")
    return value


def select_platform(index: Mapping[str, Any], *, what: str) -> Descriptor:
    """Pick the linux/amd64 manifest from an OCI index or Docker manifest list."""
    entries = [
        Descriptor.from_json(m, what=f"{what} entry {i}")
        for i, m in enumerate(index.get("manifests", []))
    ]
    platforms = [m.get("platform") or {} for m in index.get("manifests", [])]
    for desc, platform in zip(entries, platforms, strict=True):
        if platform.get("os") == "linux" and platform.get("architecture") == "amd64":
            return desc
    seen = sorted({f"{p.get('os')}/{p.get('architecture')}" for p in platforms})
    raise ImageError(
        f"{what} has no linux/amd64 image (it has: {', '.join(seen) or 'none'})",
        hint="pin the digest of an image built for linux/amd64",
    )
