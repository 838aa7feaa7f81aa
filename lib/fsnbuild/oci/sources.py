"""Image sources and sinks named the way skopeo and podman name them (``docker://``,
``docker-daemon:``, ``oci:``, ``oci-archive:``, ``docker-archive:``), and one entry point each
to fetch an image into the blob store, push it to a registry, or load it into Docker."""

from __future__ import annotations

import contextlib
import json
import logging
import tarfile
import tempfile
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import requests

from fsnbuild.digest import Digest
from fsnbuild.errors import ConfigError, DigestMismatchError, RegistryError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.credentials import Credentials
from fsnbuild.oci.docker_archive import read_docker_archive
from fsnbuild.oci.image import Image
from fsnbuild.oci.layout import read_layout
from fsnbuild.oci.reference import ImageRef, registry_mirror
from fsnbuild.oci.registry import client_for

log = logging.getLogger(__name__)

TRANSPORTS = ("docker", "docker-daemon", "oci", "oci-archive", "docker-archive")
_FORMS = (
    "docker://HOST[:PORT]/REPO[:TAG][@DIGEST], docker-daemon:REPO:TAG, oci:PATH[:NAME], "
    "oci-archive:PATH[:NAME], docker-archive:PATH[:REPO:TAG]"
)


@dataclass(frozen=True)
class Source:
    """Where an image comes from: a transport, its location (reference or path), a name."""

    transport: str
    location: str  # image reference (docker, docker-daemon) or filesystem path
    name: str | None = None  # the image's name inside a layout or archive

    def __str__(self) -> str:
        sep = "//" if self.transport == "docker" else ""
        tail = f":{self.name}" if self.name else ""
        return f"{self.transport}:{sep}{self.location}{tail}"


def parse_source(text: str) -> Source:
    """Parse ``TRANSPORT:LOCATION``; an unknown transport is an error listing the known ones."""
    transport, sep, rest = text.partition(":")
    if not sep or transport not in TRANSPORTS:
        raise ConfigError(
            f"{text!r}: unknown image transport {transport!r} (known: {', '.join(TRANSPORTS)})",
            hint=f"write one of {_FORMS}",
        )
    if not rest:
        raise ConfigError(f"{text!r}: nothing after {transport}:", hint=f"write one of {_FORMS}")
    if transport == "docker":
        if not rest.startswith("//"):
            raise ConfigError(f"{text!r}: write docker://HOST/REPO", hint=f"forms: {_FORMS}")
        ImageRef.parse(rest[2:])  # reject a malformed reference now, not at fetch time
        return Source("docker", rest[2:])
    if transport == "docker-daemon":
        return Source("docker-daemon", rest)
    # A path ends at the first colon, as in skopeo: what follows names the image inside.
    path, _, name = rest.partition(":")
    return Source(transport, path, name or None)


def fetch_image(
    source: Source,
    expected: Digest | None,
    store: BlobStore,
    *,
    credentials: Credentials | None = None,
    mirror: str | None = None,
    session: requests.Session | None = None,
    docker_client: Any = None,
) -> Image:
    """Bring the image ``source`` names into ``store``, verified, and return it.

    ``expected`` is the pinned digest: a manifest (or index) digest for registries and OCI
    layouts; for Docker archives and the daemon, which keep no manifest, the image ID (config
    digest) or the digest of the OCI manifest fsnbuild derives from them. A mismatch raises
    DigestMismatchError naming both digests before anything is stored.
    """
    log.info("fetching %s", source)
    if source.transport == "docker":
        ref = ImageRef.parse(source.location)
        mirror = registry_mirror(mirror)
        with client_for(ref, credentials=credentials, mirror=mirror, session=session) as client:
            return client.pull(ref, store, expected=expected)
    if source.transport == "docker-daemon":
        return _fetch_from_daemon(source.location, expected, store, docker_client)
    path = Path(source.location)
    if not path.exists():
        raise RegistryError(f"{source}: {path} does not exist", hint="check the path")
    if source.transport == "oci-archive" and path.is_dir():
        raise RegistryError(f"{source}: {path} is a folder", hint=f"use oci:{path}")
    try:
        if source.transport in ("oci", "oci-archive"):
            return read_layout(path, store, ref=source.name, expected=expected)
        return read_docker_archive(path, store, tag=source.name, expected=expected)
    except (
        tarfile.TarError,
        EOFError,
        zlib.error,
        UnicodeDecodeError,
        json.JSONDecodeError,
    ) as exc:
        raise RegistryError(
            f"{source}: cannot read {path}: {' '.join(str(exc).split())}",
            hint="the archive or layout is truncated or not an image; write it again",
        ) from None


def push_image(
    image: Image,
    store: BlobStore,
    ref: str,
    *,
    credentials: Credentials | None = None,
    session: requests.Session | None = None,
) -> Digest:
    """Push ``image`` to ``[docker://]HOST/REPO[:TAG]``; return the manifest digest."""
    target = ImageRef.parse(ref.removeprefix("docker://"))
    if target.digest is not None and target.digest != image.manifest_digest:
        raise DigestMismatchError(
            f"cannot push {image.manifest_digest} as {target}: the reference pins another digest",
            hint="drop @DIGEST from the target or push the image it names",
        )
    with client_for(target, credentials=credentials, session=session) as client:
        digest = client.push(image, store, target.repository, target.tag)
    log.info("pushed %s as %s", digest, target)
    return digest


def load_into_docker(archive_path: Path, *, docker_client: Any = None) -> str:
    """``docker load`` a docker archive into the engine; return the image ID it reports."""
    import docker.errors

    with _docker(docker_client) as client, archive_path.open("rb") as stream:
        try:
            images = client.images.load(stream)
        except docker.errors.DockerException as exc:
            raise RegistryError(
                f"Docker could not load {archive_path}: {exc}",
                hint="check `docker info`; the archive must come from write_docker_archive",
            ) from None
    if not images:
        raise RegistryError(f"Docker loaded no image from {archive_path}", hint="check the archive")
    image_id: str = images[0].id
    return image_id


def _fetch_from_daemon(
    name: str, expected: Digest | None, store: BlobStore, docker_client: Any
) -> Image:
    import docker.errors

    store.root.mkdir(parents=True, exist_ok=True)
    # Next to the store, not in /tmp: a saved image is as large as the image.
    with (
        _docker(docker_client) as client,
        tempfile.TemporaryDirectory(prefix=".daemon-", dir=store.root) as tmp,
    ):
        archive = Path(tmp) / "image.tar"
        try:
            image = client.images.get(name)
            # named=<tag> keeps the tag asked for; named=True would use the image's first tag.
            named = name if name in (image.tags or []) else True
            with archive.open("wb") as out:
                for chunk in image.save(named=named):
                    out.write(chunk)
        except docker.errors.ImageNotFound:
            raise RegistryError(
                f"docker-daemon:{name}: no such image in the local Docker engine",
                hint=f"check `docker images`, or `docker pull {name}` first",
            ) from None
        except docker.errors.DockerException as exc:
            raise RegistryError(
                f"docker-daemon:{name}: the Docker engine could not save it: {exc}",
                hint="check `docker info` and the engine's log",
            ) from None
        # The saved archive holds just this one image, so no tag needs choosing inside it.
        return read_docker_archive(archive, store, expected=expected)


@contextlib.contextmanager
def _docker(given: Any) -> Iterator[Any]:
    """The caller's Docker client, or one made from the environment and closed afterwards."""
    if given is not None:
        yield given
        return
    import docker
    import docker.errors

    try:
        client = docker.from_env()
    except docker.errors.DockerException as exc:
        raise RegistryError(
            f"cannot reach the Docker engine: {exc}",
            hint="start dockerd, or set DOCKER_HOST to its socket",
        ) from None
    try:
        yield client
    finally:
        client.close()
