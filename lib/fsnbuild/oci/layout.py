"""OCI image layouts: write one as a folder or as a deterministic tar (an OCI archive), and read
an image back from either into the blob store, verifying every blob on the way."""

from __future__ import annotations

import contextlib
import io
import json
import logging
import posixpath
import tarfile
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, ImageError
from fsnbuild.fsutil import atomic_path, write_bytes_atomic
from fsnbuild.oci.blobs import BlobStore, HashingReader
from fsnbuild.oci.image import (
    INDEX_TYPES,
    OCI_INDEX,
    REF_NAME,
    Descriptor,
    Image,
    canonical_json,
    load_image,
    select_platform,
)

log = logging.getLogger(__name__)

OCI_LAYOUT_FILE = canonical_json({"imageLayoutVersion": "1.0.0"})
_MAX_JSON = 64 << 20  # index, manifest and config files are small; refuse to slurp a huge one


# ---------------------------------------------------------------- writing


@dataclass(frozen=True)
class TarEntry:
    """One member of an archive: a folder, literal bytes, or a blob streamed from the store."""

    name: str
    data: bytes | None = None
    blob: Digest | None = None

    @property
    def is_dir(self) -> bool:
        return self.data is None and self.blob is None


def layout_entries(image: Image, store: BlobStore, *, ref: str) -> list[TarEntry]:
    """The files of an OCI image layout holding ``image`` under the name ``ref``."""
    manifest = Descriptor(
        image.media_type,
        image.manifest_digest,
        store.size(image.manifest_digest),
        {REF_NAME: ref},
    )
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": [manifest.to_json()]}
    blobs = sorted({image.manifest_digest, *image.blob_digests})
    return [
        TarEntry("blobs/"),
        TarEntry("blobs/sha256/"),
        *(TarEntry(f"blobs/sha256/{d.hex}", blob=d) for d in blobs),
        TarEntry("index.json", canonical_json(index)),
        TarEntry("oci-layout", OCI_LAYOUT_FILE),
    ]


def write_layout(image: Image, store: BlobStore, dest: Path, *, ref: str) -> None:
    """Write ``image`` as an OCI layout folder at ``dest``, replacing what was there."""
    with atomic_path(dest, is_dir=True) as tmp:
        for entry in layout_entries(image, store, ref=ref):
            target = tmp / entry.name
            if entry.is_dir:
                target.mkdir(exist_ok=True)
            elif entry.blob is not None:
                store.copy_to(entry.blob, target)
            elif entry.data is not None:
                write_bytes_atomic(target, entry.data)
        tmp.chmod(0o755)
    log.info("wrote OCI layout %s (%s as %s)", dest, image.manifest_digest, ref)


def write_oci_archive(image: Image, store: BlobStore, dest: Path, *, ref: str, epoch: int) -> None:
    """Write ``image`` as an OCI archive: the layout as a tar, the same bytes every time."""
    write_tar(dest, layout_entries(image, store, ref=ref), store, epoch=epoch)
    log.info("wrote OCI archive %s (%s as %s)", dest, image.manifest_digest, ref)


def write_tar(dest: Path, entries: Sequence[TarEntry], store: BlobStore, *, epoch: int) -> None:
    """Write a reproducible tar: sorted names, one mtime, owner 0:0, plain USTAR headers.

    USTAR has no PAX records, so no atime/ctime or sub-second times can sneak in; names stay
    far below its 100-byte limit (``blobs/sha256/`` + 64 hex digits is 77).
    """
    with atomic_path(dest) as tmp, tarfile.open(tmp, "w", format=tarfile.USTAR_FORMAT) as tar:
        for entry in sorted(entries, key=lambda e: e.name):
            info = tarfile.TarInfo(entry.name.rstrip("/"))
            info.mtime = epoch
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            if entry.is_dir:
                info.type = tarfile.DIRTYPE
                info.mode = 0o755
                tar.addfile(info)
                continue
            info.mode = 0o644
            if entry.data is not None:
                info.size = len(entry.data)
                tar.addfile(info, io.BytesIO(entry.data))
            elif entry.blob is not None:
                info.size = store.size(entry.blob)
                with store.path(entry.blob).open("rb") as raw:
                    reader = HashingReader(raw)
                    tar.addfile(info, reader)
                if reader.digest != entry.blob:
                    store.delete(entry.blob)
                    raise DigestMismatchError(
                        f"stored blob {entry.blob} hashes to {reader.digest}",
                        hint="the blob store was corrupted; fetch or build the image again",
                    )
    dest.chmod(0o644)


# ---------------------------------------------------------------- reading


class Tree:
    """Read-only access to the files of a layout, in a folder or inside a tar."""

    def __init__(self, label: str, root: Path | None, tar: tarfile.TarFile | None) -> None:
        self.label = label
        self._root = root
        self._tar = tar
        self._members: dict[str, tarfile.TarInfo] = {}
        if tar is not None:
            for member in tar.getmembers():
                self._members[posixpath.normpath(member.name.lstrip("/"))] = member

    def open(self, name: str) -> IO[bytes]:
        name = posixpath.normpath(name)
        if name.startswith("../") or name.startswith("/"):
            raise ImageError(f"{self.label}: path {name!r} leaves the archive", hint=_CORRUPT)
        if self._root is not None:
            try:
                return (self._root / name).open("rb")
            except FileNotFoundError:
                raise ImageError(f"{self.label}: {name} is missing", hint=_CORRUPT) from None
        return self._open_member(name, hops=0)

    def _open_member(self, name: str, *, hops: int) -> IO[bytes]:
        assert self._tar is not None
        member = self._members.get(name)
        if member is None:
            raise ImageError(f"{self.label}: {name} is missing", hint=_CORRUPT)
        if member.issym() and hops < 8:
            # docker save links a layer that two images share instead of storing it twice.
            target = posixpath.normpath(posixpath.join(posixpath.dirname(name), member.linkname))
            return self._open_member(target, hops=hops + 1)
        stream = self._tar.extractfile(member) if member.isfile() else None
        if stream is None:
            raise ImageError(f"{self.label}: {name} is not a regular file", hint=_CORRUPT)
        return stream

    def read_json(self, name: str) -> Any:
        with self.open(name) as stream:
            data = stream.read(_MAX_JSON)
        try:
            return json.loads(data)
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise ImageError(
                f"{self.label}: {name} is not valid JSON ({exc})", hint=_CORRUPT
            ) from None

    def read_blob(self, digest: Digest, *, what: str) -> bytes:
        """Read a small blob fully and check it hashes to ``digest`` before anyone parses it."""
        with self.open(f"blobs/{digest.algorithm}/{digest.hex}") as stream:
            data = stream.read(_MAX_JSON)
        actual = Digest.of_bytes(data)
        if actual != digest:
            raise DigestMismatchError(
                f"{self.label}: {what}: expected {digest}, got {actual}", hint=_CORRUPT
            )
        return data


_CORRUPT = "the layout or archive is incomplete or corrupt; write or save it again"


@contextlib.contextmanager
def open_tree(path: Path) -> Iterator[Tree]:
    """Open a layout folder or a (possibly compressed) tar archive for reading."""
    if path.is_dir():
        yield Tree(str(path), path, None)
        return
    try:
        tar = tarfile.open(path, "r:*")  # noqa: SIM115 - closed by the with below
    except (OSError, tarfile.TarError) as exc:
        reason = " ".join(str(exc).split())
        raise ImageError(
            f"{path}: cannot open as a tar archive ({reason})", hint=_CORRUPT
        ) from None
    with tar:
        yield Tree(str(path), None, tar)


def read_layout(
    path: Path, store: BlobStore, *, ref: str | None = None, expected: Digest | None = None
) -> Image:
    """Copy one image from an OCI layout folder or OCI archive into the store.

    ``expected`` is checked against the chosen manifest (or the index that lists it) before
    a single blob is stored, so a mismatch leaves the store as it was.
    """
    with open_tree(path) as tree:
        return read_layout_tree(tree, store, ref=ref, expected=expected)


def read_layout_tree(
    tree: Tree, store: BlobStore, *, ref: str | None, expected: Digest | None
) -> Image:
    if tree.read_json("oci-layout").get("imageLayoutVersion") is None:
        raise ImageError(f"{tree.label}: oci-layout has no imageLayoutVersion", hint=_CORRUPT)
    top = _choose_manifest(tree, tree.read_json("index.json"), ref)
    chosen = top
    if top.media_type in INDEX_TYPES:
        nested = json.loads(tree.read_blob(top.digest, what=f"index {top.digest}"))
        chosen = select_platform(nested, what=f"{tree.label} index {top.digest}")
    if expected is not None and expected not in (top.digest, chosen.digest):
        raise DigestMismatchError(
            f"{tree.label}: expected image {expected}, found manifest {chosen.digest}",
            hint="the image at this path is not the pinned one; nothing was copied",
        )

    manifest_bytes = tree.read_blob(chosen.digest, what=f"manifest {chosen.digest}")
    manifest = json.loads(manifest_bytes)
    config = Descriptor.from_json(manifest.get("config", {}), what=f"manifest {chosen.digest}")
    for layer in manifest.get("layers", []):
        desc = Descriptor.from_json(layer, what=f"manifest {chosen.digest} layer")
        with tree.open(f"blobs/sha256/{desc.digest.hex}") as stream:
            store.put_stream(stream, expected=desc.digest, what=f"{tree.label} layer {desc.digest}")
    config_bytes = tree.read_blob(config.digest, what=f"config {config.digest}")
    store.put_bytes(config_bytes, expected=config.digest, what="config")
    store.put_bytes(manifest_bytes, expected=chosen.digest, what="manifest")
    return load_image(store, chosen.digest)


def _choose_manifest(tree: Tree, index: Mapping[str, Any], ref: str | None) -> Descriptor:
    entries = [
        Descriptor.from_json(m, what=f"{tree.label} index.json entry {i}")
        for i, m in enumerate(index.get("manifests", []))
    ]
    names = sorted(e.annotations.get(REF_NAME, "") for e in entries)
    if ref is not None:
        matches = [e for e in entries if e.annotations.get(REF_NAME) == ref]
    else:
        matches = entries
    if len(matches) == 1:
        return matches[0]
    listed = ", ".join(repr(n) for n in names) or "none"
    if not matches:
        raise ImageError(
            f"{tree.label}: no image named {ref!r} (names: {listed})",
            hint="name one of the listed images after the path, as oci:PATH:NAME",
        )
    raise ImageError(
        f"{tree.label}: holds {len(matches)} images (names: {listed}); which one?",
        hint="name one after the path, as oci:PATH:NAME",
    )
