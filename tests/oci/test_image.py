"""build_image stacks layers on a base and gives the same digests for the same inputs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from fsnbuild.errors import DigestMismatchError, ImageError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.image import (
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    ConfigChanges,
    build_image,
    canonical_json,
)

EPOCH = 1767225600


def test_same_inputs_give_the_same_manifest_digest(tmp_path: Path, make_layer) -> None:
    layers = [make_layer({"a.txt": b"A"}, comment="a"), make_layer({"b.txt": b"B"}, comment="b")]
    first = build_image(BlobStore(tmp_path / "s1"), base=None, layers=layers, created_epoch=EPOCH)
    second = build_image(BlobStore(tmp_path / "s2"), base=None, layers=layers, created_epoch=EPOCH)
    later = build_image(
        BlobStore(tmp_path / "s3"), base=None, layers=layers, created_epoch=EPOCH + 1
    )
    assert first.manifest_digest == second.manifest_digest
    assert first.config_digest == second.config_digest
    assert later.manifest_digest != first.manifest_digest


def test_manifest_and_config_are_canonical_oci_json(tmp_path: Path, make_layer) -> None:
    store = BlobStore(tmp_path / "store")
    layer = make_layer({"a.txt": b"A"}, comment="pkg-a==1.0")
    image = build_image(store, base=None, layers=[layer], created_epoch=EPOCH)
    manifest_bytes = store.read_bytes(image.manifest_digest)
    assert manifest_bytes == canonical_json(json.loads(manifest_bytes))
    assert image.manifest["mediaType"] == OCI_MANIFEST
    assert [d.media_type for d in image.layers] == [OCI_LAYER_GZIP]
    assert image.layers[0].digest == layer.digest
    assert image.config["created"] == "2026-01-01T00:00:00Z"
    assert image.config["rootfs"]["diff_ids"] == [str(layer.diff_id)]
    assert image.config["history"] == [
        {
            "created": "2026-01-01T00:00:00Z",
            "created_by": "fsnbuild: pkg-a==1.0",
            "comment": "pkg-a==1.0",
        }
    ]
    assert (image.config["architecture"], image.config["os"]) == ("amd64", "linux")


def test_inherits_base_config_and_appends_layers(tmp_path: Path, make_layer) -> None:
    store = BlobStore(tmp_path / "store")
    base_layer = make_layer({"etc/os": b"base"}, comment="base")
    base = build_image(
        store,
        base=None,
        layers=[base_layer],
        config_changes=ConfigChanges(
            env={"PATH": "/python/venv/bin:/usr/bin", "LANG": "C.UTF-8"},
            entrypoint=["flower-supernode"],
            user="app",
            working_dir="/app",
        ),
        labels={"org.example.base": "standin", "shared": "base"},
        created_epoch=EPOCH - 100,
    )
    top = make_layer({"app/x.py": b"print(1)"}, comment="torch==2.13.0")
    image = build_image(
        store,
        base=base,
        layers=[top],
        config_changes=ConfigChanges(env={"PYTHONDONTWRITEBYTECODE": "1", "LANG": "C"}),
        labels={"shared": "top"},
        history=["pip install torch==2.13.0"],
        created_epoch=EPOCH,
    )
    runtime = image.config["config"]
    assert runtime["Env"] == [
        "LANG=C",
        "PATH=/python/venv/bin:/usr/bin",
        "PYTHONDONTWRITEBYTECODE=1",
    ]
    assert runtime["Entrypoint"] == ["flower-supernode"]
    assert (runtime["User"], runtime["WorkingDir"]) == ("app", "/app")
    assert runtime["Labels"] == {"org.example.base": "standin", "shared": "top"}
    assert image.config["rootfs"]["diff_ids"] == [str(base_layer.diff_id), str(top.diff_id)]
    assert [h["created_by"] for h in image.config["history"]] == [
        "fsnbuild: base",
        "pip install torch==2.13.0",
    ]
    assert [d.digest for d in image.layers] == [base_layer.digest, top.digest]


def test_rejects_a_layer_file_that_changed_since_it_was_hashed(tmp_path: Path, make_layer) -> None:
    layer = make_layer({"a.txt": b"A"})
    layer.path.write_bytes(b"something else")
    store = BlobStore(tmp_path / "store")
    with pytest.raises(DigestMismatchError) as info:
        build_image(store, base=None, layers=[layer], created_epoch=EPOCH)
    assert str(layer.digest) in str(info.value)
    assert store.digests() == []


def test_rejects_history_of_the_wrong_length(tmp_path: Path, make_layer) -> None:
    with pytest.raises(ImageError, match="history has 2 entries for 1 new layers"):
        build_image(
            BlobStore(tmp_path),
            base=None,
            layers=[make_layer({"a": b"a"})],
            history=["one", "two"],
            created_epoch=EPOCH,
        )
