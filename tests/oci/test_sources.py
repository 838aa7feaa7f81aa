"""Transport names as skopeo and podman write them, and fetching through each file transport."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import FsnbuildError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.docker_archive import write_docker_archive
from fsnbuild.oci.image import (
    DOCKER_LAYER_GZIP,
    DOCKER_MANIFEST,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Image,
    build_image,
)
from fsnbuild.oci.layout import write_layout, write_oci_archive
from fsnbuild.oci.reference import ImageRef
from fsnbuild.oci.sources import Source, fetch_image, parse_source

EPOCH = 1767225600
DIGEST = "sha256:" + "ab" * 32


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            "docker://127.0.0.1:5000/flwr/supernode:1.25.0",
            Source("docker", "127.0.0.1:5000/flwr/supernode:1.25.0"),
        ),
        (
            f"docker://reg.example:443/a/b@{DIGEST}",
            Source("docker", f"reg.example:443/a/b@{DIGEST}"),
        ),
        ("docker-daemon:flwr/supernode:1.25.0", Source("docker-daemon", "flwr/supernode:1.25.0")),
        ("oci:/out/layout", Source("oci", "/out/layout")),
        (
            "oci:/out/layout:flower-supernode-sklearn:1.25.0",
            Source("oci", "/out/layout", "flower-supernode-sklearn:1.25.0"),
        ),
        ("oci-archive:out/image.tar:latest", Source("oci-archive", "out/image.tar", "latest")),
        ("docker-archive:/out/image.tar", Source("docker-archive", "/out/image.tar")),
    ],
)
def test_parses_skopeo_style_names(text: str, expected: Source) -> None:
    assert parse_source(text) == expected
    assert str(parse_source(text)) == text


def test_unknown_transport_lists_the_known_ones() -> None:
    with pytest.raises(FsnbuildError) as info:
        parse_source("containers-storage:flwr/supernode")
    for known in ("docker", "docker-daemon", "oci", "oci-archive", "docker-archive"):
        assert known in str(info.value)


def test_docker_transport_needs_slashes_and_a_valid_reference() -> None:
    with pytest.raises(FsnbuildError, match="docker://HOST/REPO"):
        parse_source("docker:127.0.0.1:5000/x")
    with pytest.raises(FsnbuildError, match="not an image reference"):
        parse_source("docker://127.0.0.1:5000/UPPER/case")


def test_image_reference_parts() -> None:
    ref = ImageRef.parse(f"127.0.0.1:5000/flwr/supernode:1.25.0@{DIGEST}")
    assert (ref.registry, ref.repository, ref.tag) == ("127.0.0.1:5000", "flwr/supernode", "1.25.0")
    assert ref.digest == Digest.parse(DIGEST)
    assert ref.reference == DIGEST  # the digest wins over the tag when asking the registry
    bare = ImageRef.parse("busybox")
    assert (bare.registry, bare.repository, bare.reference) == (None, "library/busybox", "latest")
    assert ImageRef.parse("localhost/x").registry == "localhost"


@pytest.fixture
def image(tmp_path: Path, make_layer) -> tuple[Image, BlobStore]:
    store = BlobStore(tmp_path / "store")
    layers = [make_layer({"a": b"a"}, comment="a"), make_layer({"b": b"b"}, comment="b")]
    return build_image(store, base=None, layers=layers, created_epoch=EPOCH), store


def test_fetches_through_every_file_transport(tmp_path: Path, image) -> None:
    built, store = image
    write_layout(built, store, tmp_path / "layout", ref="x:1")
    write_oci_archive(built, store, tmp_path / "oci.tar", ref="x:1", epoch=EPOCH)
    write_docker_archive(built, store, tmp_path / "docker.tar", repo_tags=["x:1"], epoch=EPOCH)
    for text in (
        f"oci:{tmp_path}/layout:x:1",
        f"oci-archive:{tmp_path}/oci.tar",
        f"docker-archive:{tmp_path}/docker.tar:x:1",
    ):
        fresh = BlobStore(tmp_path / text.split(":")[0])
        got = fetch_image(parse_source(text), built.manifest_digest, fresh)
        assert got.manifest_digest == built.manifest_digest, text


def test_missing_path_is_named(tmp_path: Path) -> None:
    with pytest.raises(FsnbuildError, match=r"nowhere\.tar does not exist"):
        fetch_image(parse_source(f"oci-archive:{tmp_path}/nowhere.tar"), None, BlobStore(tmp_path))


@pytest.mark.slow
@pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")
def test_pulls_what_skopeo_pushed_as_docker_schema_2(tmp_path: Path, registry, image) -> None:
    built, store = image
    write_layout(built, store, tmp_path / "layout", ref="x:1")
    subprocess.run(
        [
            "skopeo",
            "copy",
            "--dest-tls-verify=false",
            "--format",
            "v2s2",
            f"oci:{tmp_path}/layout:x:1",
            f"docker://{registry.host}/fsnbuild/by-skopeo:v2s2",
        ],
        check=True,
        capture_output=True,
    )
    fresh = BlobStore(tmp_path / "fresh")
    pulled = fetch_image(
        parse_source(f"docker://{registry.host}/fsnbuild/by-skopeo:v2s2"), None, fresh
    )
    assert pulled.manifest["mediaType"] == DOCKER_MANIFEST
    assert [d.media_type for d in pulled.layers] == [DOCKER_LAYER_GZIP] * 2
    assert pulled.config_digest == built.config_digest

    # Built upon, the Docker base's layers keep their bytes under their OCI media type.
    on_top = build_image(fresh, base=pulled, layers=[], created_epoch=EPOCH)
    assert on_top.manifest["mediaType"] == OCI_MANIFEST
    assert [d.media_type for d in on_top.layers] == [OCI_LAYER_GZIP] * 2
    assert [d.digest for d in on_top.layers] == [d.digest for d in built.layers]
