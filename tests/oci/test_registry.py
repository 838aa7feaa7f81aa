"""Pushing to and pulling from the real reference registry on 127.0.0.1."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
import requests

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, FsnbuildError, RegistryError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.credentials import Credentials
from fsnbuild.oci.image import OCI_INDEX, Descriptor, Image, build_image, canonical_json
from fsnbuild.oci.registry import RegistryClient
from fsnbuild.oci.sources import fetch_image, parse_source, push_image

from .conftest import free_port

pytestmark = pytest.mark.slow
EPOCH = 1767225600


def counting_session() -> tuple[requests.Session, Counter[str]]:
    """A real session that counts the requests it sends, as "METHOD /path/kind"."""
    session = requests.Session()
    counts: Counter[str] = Counter()

    def hook(resp: requests.Response, *args: object, **kwargs: object) -> None:
        parts = requests.utils.urlparse(resp.request.url).path.split("/")
        kind = "uploads" if "uploads" in parts else parts[-2] if len(parts) > 2 else ""
        counts[f"{resp.request.method} {kind}"] += 1

    session.hooks["response"].append(hook)
    return session, counts


@pytest.fixture
def image(tmp_path: Path, make_layer, request: pytest.FixtureRequest) -> tuple[Image, BlobStore]:
    store = BlobStore(tmp_path / "store")
    # Content unique to the test, so a shared registry never already holds these blobs.
    layers = [
        make_layer({"id.txt": request.node.name.encode()}, comment="id"),
        make_layer({"data.bin": bytes(range(256)) * 400}, comment="data"),
    ]
    return build_image(store, base=None, layers=layers, created_epoch=EPOCH), store


def test_push_then_pull_by_digest_gives_the_same_image(tmp_path: Path, registry, image) -> None:
    built, store = image
    pushed = push_image(built, store, f"docker://{registry.host}/fsnbuild/roundtrip:1.0")
    assert pushed == built.manifest_digest

    fresh = BlobStore(tmp_path / "fresh")
    source = parse_source(f"docker://{registry.host}/fsnbuild/roundtrip@{pushed}")
    pulled = fetch_image(source, pushed, fresh)
    assert pulled.manifest_digest == built.manifest_digest
    assert fresh.read_bytes(pulled.manifest_digest) == store.read_bytes(built.manifest_digest)
    assert sorted(fresh.digests()) == sorted({pushed, *built.blob_digests})

    by_tag = fetch_image(
        parse_source(f"docker://{registry.host}/fsnbuild/roundtrip:1.0"),
        pushed,
        BlobStore(tmp_path / "by-tag"),
    )
    assert by_tag.manifest_digest == pushed


def test_second_push_uploads_no_blob(registry, image) -> None:
    built, store = image
    target = f"{registry.host}/fsnbuild/twice:1"
    first_session, first = counting_session()
    second_session, second = counting_session()
    with first_session, second_session:
        push_image(built, store, target, session=first_session)
        push_image(built, store, target, session=second_session)
    assert first["POST uploads"] == 3  # config and two layers
    assert first["PUT uploads"] == 3
    assert second["HEAD blobs"] == 3
    assert second["POST uploads"] == 0 and second["PUT uploads"] == 0
    assert second["PUT manifests"] == 1


def test_wrong_expected_digest_names_both_and_keeps_no_blob(
    tmp_path: Path, registry, image
) -> None:
    built, store = image
    push_image(built, store, f"{registry.host}/fsnbuild/pinned:1")
    wrong = Digest.of_bytes(b"not this image")
    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(DigestMismatchError) as info:
        fetch_image(parse_source(f"docker://{registry.host}/fsnbuild/pinned:1"), wrong, fresh)
    assert str(wrong) in str(info.value)
    assert str(built.manifest_digest) in str(info.value)
    assert fresh.digests() == []


def test_index_resolves_to_the_linux_amd64_manifest(tmp_path: Path, registry, image) -> None:
    built, store = image
    other = build_image(store, base=None, layers=[], created_epoch=EPOCH + 5)  # the "arm64" one
    with RegistryClient(registry.host) as client:
        client.push(built, store, "fsnbuild/multi", None)
        client.push(other, store, "fsnbuild/multi", None)

    def entry(img: Image, arch: str) -> dict[str, object]:
        desc = Descriptor(img.media_type, img.manifest_digest, store.size(img.manifest_digest))
        return {**desc.to_json(), "platform": {"os": "linux", "architecture": arch}}

    index = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [entry(other, "arm64"), entry(built, "amd64")],
    }
    data = canonical_json(index)
    resp = requests.put(
        f"{registry.url}/v2/fsnbuild/multi/manifests/multi",
        data=data,
        headers={"Content-Type": OCI_INDEX},
        timeout=10,
    )
    assert resp.status_code == 201, resp.text
    index_digest = Digest.of_bytes(data)
    pulled = fetch_image(
        parse_source(f"docker://{registry.host}/fsnbuild/multi:multi"),
        index_digest,  # pinning the index is enough
        BlobStore(tmp_path / "fresh"),
    )
    assert pulled.manifest_digest == built.manifest_digest


def test_missing_manifest_names_reference_and_digest(tmp_path: Path, registry) -> None:
    missing = Digest.of_bytes(b"never pushed")
    text = f"{registry.host}/fsnbuild/absent:9.9@{missing}"
    with pytest.raises(RegistryError) as info:
        fetch_image(parse_source(f"docker://{text}"), None, BlobStore(tmp_path))
    assert text in str(info.value) and registry.host in str(info.value)


def test_blob_corrupted_in_registry_storage_is_refused(tmp_path: Path, registry, image) -> None:
    built, store = image
    push_image(built, store, f"{registry.host}/fsnbuild/rotten:1")
    # The reference registry does not re-hash what it serves: damage its stored copy in place.
    layer = built.layers[0].digest  # this layer holds the test name: no other test shares it
    stored = registry.root / "docker/registry/v2/blobs/sha256" / layer.hex[:2] / layer.hex / "data"
    data = bytearray(stored.read_bytes())
    data[len(data) // 2] ^= 0xFF
    stored.write_bytes(bytes(data))

    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(DigestMismatchError) as info:
        fetch_image(parse_source(f"docker://{registry.host}/fsnbuild/rotten:1"), None, fresh)
    assert str(layer) in str(info.value)
    assert str(Digest.of_bytes(bytes(data))) in str(info.value)
    assert not fresh.has(layer)
    assert built.manifest_digest not in fresh.digests()


def test_unreachable_registry_names_host_and_port(tmp_path: Path) -> None:
    port = free_port()  # bound and released: nothing listens there now
    source = parse_source(f"docker://127.0.0.1:{port}/fsnbuild/x:1")
    with pytest.raises(RegistryError) as info:
        fetch_image(source, None, BlobStore(tmp_path))
    assert f"127.0.0.1:{port}" in str(info.value)
    assert "connection refused" in str(info.value)


def test_mirror_serves_an_image_named_without_a_host(
    tmp_path: Path, registry, image, monkeypatch: pytest.MonkeyPatch
) -> None:
    built, store = image
    push_image(built, store, f"{registry.host}/flwr/mirrored:1.25.0")
    monkeypatch.setenv("FSNBUILD_REGISTRY_MIRROR", registry.host)
    pulled = fetch_image(
        parse_source("docker://flwr/mirrored:1.25.0"), built.manifest_digest, BlobStore(tmp_path)
    )
    assert pulled.manifest_digest == built.manifest_digest


def test_name_without_host_and_without_mirror_asks_for_one(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("FSNBUILD_REGISTRY_MIRROR", raising=False)
    with pytest.raises(FsnbuildError, match="names no registry host"):
        fetch_image(parse_source("docker://flwr/supernode:1.25.0"), None, BlobStore(tmp_path))


def test_basic_auth_with_credentials_pushes_and_pulls(
    tmp_path: Path, htpasswd_registry, image
) -> None:
    built, store = image
    creds = Credentials("tester", "s3cret-pass")
    ref = f"{htpasswd_registry.host}/fsnbuild/private:1"
    push_image(built, store, ref, credentials=creds)
    pulled = fetch_image(
        parse_source(f"docker://{ref}"),
        built.manifest_digest,
        BlobStore(tmp_path / "fresh"),
        credentials=creds,
    )
    assert pulled.manifest_digest == built.manifest_digest


def test_basic_auth_reads_docker_config(
    tmp_path: Path, htpasswd_registry, image, monkeypatch: pytest.MonkeyPatch
) -> None:
    import base64

    built, store = image
    config_dir = tmp_path / "docker-config"
    config_dir.mkdir()
    token = base64.b64encode(b"tester:s3cret-pass").decode()
    auths = {"auths": {htpasswd_registry.host: {"auth": token}}}
    (config_dir / "config.json").write_text(json.dumps(auths))
    monkeypatch.setenv("DOCKER_CONFIG", str(config_dir))
    digest = push_image(built, store, f"{htpasswd_registry.host}/fsnbuild/from-config:1")
    assert digest == built.manifest_digest


def test_basic_auth_without_credentials_says_how_to_log_in(
    tmp_path: Path, htpasswd_registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))  # no config.json there
    source = parse_source(f"docker://{htpasswd_registry.host}/fsnbuild/private:1")
    with pytest.raises(RegistryError) as info:
        fetch_image(source, None, BlobStore(tmp_path / "store"))
    assert htpasswd_registry.host in str(info.value)
    assert "HTTP 401" in str(info.value)
    assert info.value.hint is not None and "docker login" in info.value.hint


def test_basic_auth_with_a_wrong_password_is_refused(tmp_path: Path, htpasswd_registry) -> None:
    source = parse_source(f"docker://{htpasswd_registry.host}/fsnbuild/private:1")
    with pytest.raises(RegistryError, match=r"as 'tester'.*HTTP 401"):
        fetch_image(source, None, BlobStore(tmp_path), credentials=Credentials("tester", "wrong"))
