"""The blob store keeps only bytes that hash to their name, and notices when they rot."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError
from fsnbuild.oci.blobs import BlobStore


def test_stores_blob_under_its_sha256(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put_bytes(b"hello")
    assert digest == Digest.of_bytes(b"hello")
    assert (tmp_path / "blobs" / "sha256" / digest.hex).read_bytes() == b"hello"
    assert store.read_bytes(digest) == b"hello"
    assert store.digests() == [digest]


def test_refuses_bytes_that_do_not_match_the_expected_digest(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    wanted = Digest.of_bytes(b"the real thing")
    with pytest.raises(DigestMismatchError) as info:
        store.put_bytes(b"an impostor", expected=wanted, what="layer x")
    assert str(wanted) in str(info.value)
    assert str(Digest.of_bytes(b"an impostor")) in str(info.value)
    assert store.digests() == []
    assert list((tmp_path / "blobs" / "sha256").iterdir()) == []  # no temporary left behind


def test_verify_deletes_a_corrupted_blob_and_names_both_digests(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put_bytes(b"original bytes")
    store.path(digest).write_bytes(b"bit rot")
    with pytest.raises(DigestMismatchError) as info:
        store.verify(digest)
    assert str(digest) in str(info.value)
    assert str(Digest.of_bytes(b"bit rot")) in str(info.value)
    assert not store.has(digest)


def test_streaming_read_raises_after_a_corrupted_blob(tmp_path: Path) -> None:
    store = BlobStore(tmp_path)
    digest = store.put_bytes(b"x" * 3_000_000)
    store.path(digest).write_bytes(b"y" * 3_000_000)
    with pytest.raises(DigestMismatchError):
        b"".join(store.chunks(digest))
    assert not store.has(digest)


def test_copy_to_writes_a_verified_copy(tmp_path: Path) -> None:
    store = BlobStore(tmp_path / "store")
    digest = store.put_bytes(b"payload")
    store.copy_to(digest, tmp_path / "out" / "copy")
    assert (tmp_path / "out" / "copy").read_bytes() == b"payload"
