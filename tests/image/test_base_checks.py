"""Reading a base image's facts from its layers, and refusing a base the locks cannot run on."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.errors import ImageError
from fsnbuild.image.base import check_target, inspect_base
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.image import ConfigChanges, Image, build_image
from tests.oci.conftest import EPOCH, make_layer_file

from .conftest import ROOT

METADATA = "Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n"


def _base(
    tmp_path: Path, *, libc: str, python: str, venv_env: bool = True
) -> tuple[Image, BlobStore]:
    site = f"python/venv/lib/python{python}/site-packages"
    files = {
        "python/venv/pyvenv.cfg": f"home = /usr/bin\nversion = {python}.2\n".encode(),
        f"{site}/flwr-1.25.0.dist-info/METADATA": METADATA.format(
            name="flwr", version="1.25.0"
        ).encode(),
        f"{site}/Numpy-2.4.6.dist-info/METADATA": METADATA.format(
            name="Numpy", version="2.4.6"
        ).encode(),
        (
            "lib/ld-musl-x86_64.so.1" if libc == "musl" else "lib/x86_64-linux-gnu/libc.so.6"
        ): b"\x7fELF",
    }
    store = BlobStore(tmp_path / "store")
    layer = make_layer_file(tmp_path / "layer.tar.gz", files, comment="base")
    env = {"VIRTUAL_ENV": "/python/venv"} if venv_env else {}
    image = build_image(
        store, base=None, layers=[layer], config_changes=ConfigChanges(env=env), created_epoch=EPOCH
    )
    return image, store


def test_reads_venv_python_libc_and_installed_distributions(tmp_path: Path) -> None:
    image, store = _base(tmp_path, libc="glibc", python="3.11")
    facts = inspect_base(image, store, tmp_path / "facts")
    assert (facts.venv, facts.python, facts.libc) == ("/python/venv", "3.11", "glibc")
    assert facts.dists == {"flwr": "1.25.0", "numpy": "2.4.6"}
    # cached by manifest digest: the second read does not scan the layers
    store.delete(image.layers[0].digest)
    assert inspect_base(image, store, tmp_path / "facts") == facts


def test_finds_the_venv_from_pyvenv_cfg_without_virtual_env(tmp_path: Path) -> None:
    image, store = _base(tmp_path, libc="glibc", python="3.11", venv_env=False)
    assert inspect_base(image, store, tmp_path / "facts").venv == "/python/venv"


def test_refuses_a_musl_base_before_any_download(tmp_path: Path) -> None:
    image, store = _base(tmp_path, libc="musl", python="3.11")
    facts = inspect_base(image, store, tmp_path / "facts")
    target = load_project(ROOT / "variants.toml").target
    with pytest.raises(ImageError, match=r"uses musl, but the locks target glibc"):
        check_target(facts, target, "flwr/supernode:1.25.0")


def test_refuses_a_base_with_another_python(tmp_path: Path) -> None:
    image, store = _base(tmp_path, libc="glibc", python="3.12")
    facts = inspect_base(image, store, tmp_path / "facts")
    target = load_project(ROOT / "variants.toml").target
    with pytest.raises(
        ImageError, match=r"has Python 3\.12 in /python/venv, but the locks target Python 3\.11"
    ):
        check_target(facts, target, "example/base")
