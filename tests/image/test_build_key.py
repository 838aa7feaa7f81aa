"""The build key covers every input: any change to what the image depends on is a new key."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.digest import Digest
from fsnbuild.image.build import build_key

from .conftest import ROOT

LOCK = Digest.of_bytes(b"a lock")


def _key(tmp_path: Path, old: str = "", new: str = "", lock: Digest = LOCK) -> str:
    text = (ROOT / "variants.toml").read_text()
    assert old in text
    (tmp_path / "variants.toml").write_text(text.replace(old, new, 1))
    return build_key(load_project(tmp_path / "variants.toml"), "sklearn", lock)


@pytest.mark.parametrize(
    ("old", "new"),
    [
        ('smoke = ["sklearn", "pandas", "flwr"]', 'smoke = ["sklearn"]\nheavy = ["pandas"]'),
        ('tag = "1.25.0-py3.11-bookworm"', 'tag = "other-tag"'),
        ('repository = "fsnbuild/supernode-standin"', 'repository = "example/base"'),
        ('version = "1.25.0"', 'version = "1.25.1"'),
        ("epoch = 1767225600", "epoch = 1767225601"),
        (
            'image-name = "flower-supernode-{framework}:{version}"',
            'image-name = "fs-{framework}:{version}"',
        ),
        ('glibc = "2.28"', 'glibc = "2.31"'),
        ('framework = "sklearn"', 'framework = "scikit"'),
    ],
)
def test_every_setting_the_image_depends_on_changes_the_key(
    tmp_path: Path, old: str, new: str
) -> None:
    assert _key(tmp_path, old, new) != _key(tmp_path)


def test_same_inputs_same_key_and_lock_is_an_input(tmp_path: Path) -> None:
    assert _key(tmp_path) == _key(tmp_path)
    assert _key(tmp_path, lock=Digest.of_bytes(b"another lock")) != _key(tmp_path)


def test_another_variants_change_leaves_the_key_alone(tmp_path: Path) -> None:
    assert _key(tmp_path, '"tensorflow-cpu", "flwr-datasets[vision]"', '"tensorflow-cpu"') == _key(
        tmp_path
    )
