"""OCI layouts and both archive kinds: reproducible bytes, faithful round trips, and accepted
by skopeo, the real tool other people will point at them."""

from __future__ import annotations

import json
import shutil
import subprocess
import tarfile
from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, ImageError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.docker_archive import read_docker_archive, write_docker_archive
from fsnbuild.oci.image import Image, build_image
from fsnbuild.oci.layout import read_layout, write_layout, write_oci_archive

EPOCH = 1767225600
REF = "flower-supernode-test:1.0"


@pytest.fixture
def built(tmp_path: Path, make_layer) -> tuple[Image, BlobStore]:
    store = BlobStore(tmp_path / "store")
    layers = [
        make_layer({"opt/one.txt": b"one\n"}, comment="one==1"),
        make_layer({"opt/two.txt": b"two\n" * 1000}, comment="two==2"),
    ]
    return build_image(store, base=None, layers=layers, created_epoch=EPOCH), store


def write_all(image: Image, store: BlobStore, out: Path) -> None:
    write_layout(image, store, out / "layout", ref=REF)
    write_oci_archive(image, store, out / "oci.tar", ref=REF, epoch=EPOCH)
    write_docker_archive(image, store, out / "docker.tar", repo_tags=[REF], epoch=EPOCH)


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()
    }


def test_writing_twice_gives_byte_identical_outputs(tmp_path: Path, built) -> None:
    image, store = built
    write_all(image, store, tmp_path / "first")
    write_all(image, store, tmp_path / "second")
    for name in ("oci.tar", "docker.tar"):
        first = (tmp_path / "first" / name).read_bytes()
        assert first == (tmp_path / "second" / name).read_bytes(), name
    assert tree_bytes(tmp_path / "first/layout") == tree_bytes(tmp_path / "second/layout")


def test_archives_have_sorted_ustar_entries_owned_by_root_at_the_epoch(
    tmp_path: Path, built
) -> None:
    image, store = built
    write_all(image, store, tmp_path)
    for name in ("oci.tar", "docker.tar"):
        with tarfile.open(tmp_path / name) as tar:
            members = tar.getmembers()
        names = [m.name for m in members]
        assert names == sorted(names)
        assert {(m.mtime, m.uid, m.gid, m.uname, m.gname) for m in members} == {
            (EPOCH, 0, 0, "", "")
        }
        assert all(not m.pax_headers for m in members)
        assert "index.json" in names and "oci-layout" in names
    raw = (tmp_path / "oci.tar").read_bytes()
    assert raw[257:263] == b"ustar\x00"  # POSIX USTAR magic, not GNU or PAX


def test_index_names_the_image(tmp_path: Path, built) -> None:
    image, store = built
    write_layout(image, store, tmp_path / "layout", ref=REF)
    index = json.loads((tmp_path / "layout" / "index.json").read_text())
    [entry] = index["manifests"]
    assert entry["digest"] == str(image.manifest_digest)
    assert entry["annotations"] == {"org.opencontainers.image.ref.name": REF}
    assert json.loads((tmp_path / "layout" / "oci-layout").read_text()) == {
        "imageLayoutVersion": "1.0.0"
    }


@pytest.mark.parametrize("name", ["layout", "oci.tar", "docker.tar"])
def test_reading_back_gives_the_same_image(tmp_path: Path, built, name: str) -> None:
    image, store = built
    write_all(image, store, tmp_path)
    fresh = BlobStore(tmp_path / "fresh")
    if name == "docker.tar":
        again = read_docker_archive(tmp_path / name, fresh, expected=image.manifest_digest)
    else:
        again = read_layout(tmp_path / name, fresh, ref=REF, expected=image.manifest_digest)
    assert again.manifest_digest == image.manifest_digest
    assert again.config == image.config
    assert sorted(fresh.digests()) == sorted({image.manifest_digest, *image.blob_digests})


@pytest.mark.parametrize("name", ["layout", "oci.tar", "docker.tar"])
def test_wrong_expected_digest_names_both_and_keeps_nothing(
    tmp_path: Path, built, name: str
) -> None:
    image, store = built
    write_all(image, store, tmp_path)
    wrong = Digest.of_bytes(b"some other image")
    fresh = BlobStore(tmp_path / "fresh")
    read = read_docker_archive if name == "docker.tar" else read_layout
    with pytest.raises(DigestMismatchError) as info:
        read(tmp_path / name, fresh, expected=wrong)
    assert str(wrong) in str(info.value)
    found = image.config_digest if name == "docker.tar" else image.manifest_digest
    assert str(found) in str(info.value)
    assert fresh.digests() == []


def test_docker_archive_may_be_pinned_by_image_id(tmp_path: Path, built) -> None:
    image, store = built
    write_docker_archive(image, store, tmp_path / "d.tar", repo_tags=[REF], epoch=EPOCH)
    again = read_docker_archive(
        tmp_path / "d.tar", BlobStore(tmp_path / "f"), expected=image.config_digest
    )
    assert again.config_digest == image.config_digest


def test_reading_a_layout_with_a_corrupt_layer_fails(tmp_path: Path, built) -> None:
    image, store = built
    write_layout(image, store, tmp_path / "layout", ref=REF)
    (tmp_path / "layout/blobs/sha256" / image.layers[1].digest.hex).write_bytes(b"garbage")
    fresh = BlobStore(tmp_path / "fresh")
    with pytest.raises(DigestMismatchError) as info:
        read_layout(tmp_path / "layout", fresh)
    assert str(image.layers[1].digest) in str(info.value)
    assert not fresh.has(image.layers[1].digest)


def test_unknown_name_lists_the_names_in_the_layout(tmp_path: Path, built) -> None:
    image, store = built
    write_layout(image, store, tmp_path / "layout", ref=REF)
    with pytest.raises(ImageError, match=f"no image named 'nope'.*{REF}"):
        read_layout(tmp_path / "layout", BlobStore(tmp_path / "fresh"), ref="nope")


def test_writing_fails_when_a_store_blob_rotted(tmp_path: Path, built) -> None:
    image, store = built
    store.path(image.layers[0].digest).write_bytes(b"rot")
    with pytest.raises(DigestMismatchError):
        write_oci_archive(image, store, tmp_path / "oci.tar", ref=REF, epoch=EPOCH)
    assert not (tmp_path / "oci.tar").exists()


skopeo = pytest.mark.skipif(shutil.which("skopeo") is None, reason="skopeo is not installed")


def skopeo_inspect(target: str) -> dict[str, object]:
    out = subprocess.run(["skopeo", "inspect", target], check=True, capture_output=True, text=True)
    result: dict[str, object] = json.loads(out.stdout)
    return result


@skopeo
def test_skopeo_reads_all_three_outputs(tmp_path: Path, built) -> None:
    image, store = built
    write_all(image, store, tmp_path)
    layers = [str(d.digest) for d in image.layers]
    # skopeo names a docker archive's layers by their uncompressed digests (diff_ids).
    diff_ids = [str(d) for d in image.diff_ids]
    for target, digest, names in [
        (f"oci:{tmp_path}/layout:{REF}", image.manifest_digest, layers),
        (f"oci-archive:{tmp_path}/oci.tar:{REF}", image.manifest_digest, layers),
        (f"docker-archive:{tmp_path}/docker.tar", None, diff_ids),
    ]:
        info = skopeo_inspect(target)
        assert info["Layers"] == names, target
        assert info["Created"] == "2026-01-01T00:00:00Z", target
        if digest is not None:
            assert info["Digest"] == str(digest), target


@skopeo
def test_skopeo_copies_the_layout_to_another_layout_unchanged(tmp_path: Path, built) -> None:
    image, store = built
    write_layout(image, store, tmp_path / "layout", ref=REF)
    subprocess.run(
        ["skopeo", "copy", f"oci:{tmp_path}/layout:{REF}", f"oci:{tmp_path}/copy:copied"],
        check=True,
        capture_output=True,
    )
    copied = read_layout(tmp_path / "copy", BlobStore(tmp_path / "fresh"), ref="copied")
    assert copied.manifest_digest == image.manifest_digest
