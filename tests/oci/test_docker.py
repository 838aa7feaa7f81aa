"""The real Docker engine loads fsnbuild's docker archives and runs them, and images it holds
come back out through the docker-daemon: transport."""

from __future__ import annotations

import contextlib
import re
import tarfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, RegistryError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.docker_archive import write_docker_archive
from fsnbuild.oci.image import (
    OCI_LAYER,
    OCI_LAYER_GZIP,
    ConfigChanges,
    Image,
    NewLayer,
    build_image,
)
from fsnbuild.oci.sources import fetch_image, load_into_docker, parse_source

docker = pytest.importorskip("docker")

pytestmark = pytest.mark.slow
EPOCH = 1767225600
BUSYBOX = Path("/bin/busybox")
REPO = "fsnbuild-test-oci/busybox"


@pytest.fixture(scope="module")
def client() -> Iterator[object]:
    try:
        engine = docker.from_env()
        engine.ping()
    except docker.errors.DockerException as exc:
        pytest.skip(f"no Docker engine: {exc}")
    yield engine
    engine.close()


@pytest.fixture
def tag(client, request: pytest.FixtureRequest) -> Iterator[Callable[[str], str]]:
    """Make tags unique to this test; untag them afterwards (identical images share an ID,
    so removing by ID would pull the image from under a test running in parallel)."""
    made: list[str] = []
    test = re.sub(r"[^a-z0-9]+", "-", request.node.name.lower()).strip("-")[:80]

    def make(suffix: str) -> str:
        name = f"{REPO}:{test}-{suffix}"
        if name not in made:
            made.append(name)
        return name

    yield make
    for name in made:
        with contextlib.suppress(docker.errors.ImageNotFound):
            client.images.remove(name)


@pytest.fixture
def busybox_layer(make_layer) -> NewLayer:
    if not BUSYBOX.is_file():
        pytest.skip("busybox-static is not installed (apt-get install busybox-static)")
    return make_layer(
        {"bin/busybox": BUSYBOX.read_bytes()},
        comment="busybox (Debian busybox-static)",
        symlinks={"bin/sh": "busybox", "bin/echo": "busybox", "bin/cat": "busybox"},
    )


def build_busybox(store: BlobStore, layer: NewLayer, make_layer) -> Image:
    greeting = make_layer({"etc/greeting": b"hello from fsnbuild\n"}, comment="greeting")
    return build_image(
        store,
        base=None,
        layers=[layer, greeting],
        config_changes=ConfigChanges(env={"PATH": "/bin"}, cmd=["/bin/sh"]),
        created_epoch=EPOCH,
    )


def run(client, image_ref: str, *command: str) -> str:
    out: bytes = client.containers.run(image_ref, list(command), remove=True, network_mode="none")
    return out.decode()


def test_docker_loads_and_runs_a_built_image(
    tmp_path: Path, client, tag, busybox_layer, make_layer
) -> None:
    store = BlobStore(tmp_path / "store")
    image = build_busybox(store, busybox_layer, make_layer)
    archive = tmp_path / "image.tar"
    write_docker_archive(image, store, archive, repo_tags=[tag("built")], epoch=EPOCH)

    image_id = load_into_docker(archive)
    assert image_id == str(image.config_digest)
    assert run(client, tag("built"), "cat", "/etc/greeting") == "hello from fsnbuild\n"
    loaded = client.images.get(tag("built"))
    assert loaded.attrs["RootFS"]["Layers"] == [str(d) for d in image.diff_ids]
    assert loaded.attrs["Created"].startswith("2026-01-01T00:00:00")


def test_docker_daemon_round_trip_keeps_the_image_id(
    tmp_path: Path, client, tag, busybox_layer, make_layer
) -> None:
    store = BlobStore(tmp_path / "store")
    image = build_busybox(store, busybox_layer, make_layer)
    archive = tmp_path / "image.tar"
    write_docker_archive(image, store, archive, repo_tags=[tag("roundtrip")], epoch=EPOCH)
    load_into_docker(archive)

    fresh = BlobStore(tmp_path / "fresh")
    source = parse_source(f"docker-daemon:{tag('roundtrip')}")
    back = fetch_image(source, image.config_digest, fresh)
    assert back.config_digest == image.config_digest
    assert back.diff_ids == image.diff_ids
    # docker save writes uncompressed layers: stored as such, digest = diff_id.
    assert [d.media_type for d in back.layers] == [OCI_LAYER, OCI_LAYER]
    assert [d.digest for d in back.layers] == list(image.diff_ids)

    # An image pulled from the daemon serves as a base for a new layer that Docker runs.
    extra = make_layer({"etc/extra": b"stacked\n"}, comment="extra")
    stacked = build_image(fresh, base=back, layers=[extra], created_epoch=EPOCH)
    assert [d.media_type for d in stacked.layers] == [OCI_LAYER, OCI_LAYER, OCI_LAYER_GZIP]
    write_docker_archive(
        stacked, fresh, tmp_path / "s.tar", repo_tags=[tag("stacked")], epoch=EPOCH
    )
    assert load_into_docker(tmp_path / "s.tar") == str(stacked.config_digest)
    assert run(client, tag("stacked"), "cat", "/etc/greeting", "/etc/extra") == (
        "hello from fsnbuild\nstacked\n"
    )


def test_docker_daemon_with_wrong_digest_names_both_and_keeps_nothing(
    tmp_path: Path, client, tag, busybox_layer, make_layer
) -> None:
    store = BlobStore(tmp_path / "store")
    image = build_busybox(store, busybox_layer, make_layer)
    write_docker_archive(image, store, tmp_path / "i.tar", repo_tags=[tag("pinned")], epoch=EPOCH)
    load_into_docker(tmp_path / "i.tar")
    wrong = Digest.of_bytes(b"another image")
    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(DigestMismatchError) as info:
        fetch_image(parse_source(f"docker-daemon:{tag('pinned')}"), wrong, fresh)
    assert str(wrong) in str(info.value) and str(image.config_digest) in str(info.value)
    assert fresh.digests() == []


def test_docker_daemon_unknown_image_is_a_clear_error(tmp_path: Path, client) -> None:
    with pytest.raises(RegistryError, match="no such image"):
        fetch_image(
            parse_source(f"docker-daemon:{REPO}:absent-{tmp_path.name}"), None, BlobStore(tmp_path)
        )


def test_reads_docker_save_output_that_links_a_repeated_layer(
    tmp_path: Path, client, tag, make_layer
) -> None:
    store = BlobStore(tmp_path / "store")
    a, b = make_layer({"a": b"a"}, comment="a"), make_layer({"b": b"b"}, comment="b")
    image = build_image(store, base=None, layers=[a, b, a], created_epoch=EPOCH)
    write_docker_archive(image, store, tmp_path / "i.tar", repo_tags=[tag("dup")], epoch=EPOCH)
    load_into_docker(tmp_path / "i.tar")

    saved = tmp_path / "saved.tar"
    with saved.open("wb") as out:
        for chunk in client.images.get(tag("dup")).save(named=True):
            out.write(chunk)
    with tarfile.open(saved) as tar:
        assert any(m.issym() for m in tar.getmembers())  # docker save stored the repeat as a link

    back = fetch_image(
        parse_source(f"docker-archive:{saved}"), image.config_digest, BlobStore(tmp_path / "f")
    )
    assert back.diff_ids == (a.diff_id, b.diff_id, a.diff_id)
