"""Damaged cache records and base archives: rebuilt or refused with one error, never trusted."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

import pytest

from fsnbuild.errors import ImageError, RegistryError
from fsnbuild.image.build import collect_garbage
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.sources import fetch_image, parse_source


@pytest.mark.parametrize("keep", [700, 5000])
def test_truncated_docker_archive_base_is_one_error(tmp_path: Path, keep: int) -> None:
    archive = tmp_path / "base.tar"
    with tarfile.open(archive, "w") as tar:
        data = bytes(range(256)) * 40
        info = tarfile.TarInfo("manifest.json")
        info.size = len(data)
        tar.addfile(info, io.BytesIO(data))
    archive.write_bytes(archive.read_bytes()[:keep])
    with pytest.raises((RegistryError, ImageError)) as info:
        fetch_image(parse_source(f"docker-archive:{archive}"), None, BlobStore(tmp_path / "s"))
    assert str(archive) in info.value.message and "\n" not in info.value.message


def test_oci_archive_pointing_at_a_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(RegistryError, match="is a folder"):
        fetch_image(parse_source(f"oci-archive:{tmp_path}"), None, BlobStore(tmp_path / "s"))


def test_gc_skips_damaged_records_and_removes_unreferenced_blobs(tmp_path: Path) -> None:
    (tmp_path / "layers").mkdir()
    (tmp_path / "layers" / "bad.json").write_text("{not json")
    (tmp_path / "builds").mkdir()
    (tmp_path / "builds" / "bad.json").write_text('{"manifest": "nope"}')
    junk = BlobStore(tmp_path / "oci").put_bytes(b"orphan")
    assert collect_garbage(tmp_path) == (1, len(b"orphan"))
    assert not BlobStore(tmp_path / "oci").has(junk)
    assert list((tmp_path / "layers").iterdir()) == []
