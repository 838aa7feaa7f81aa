"""Build trees are never deleted while something is mounted inside them."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from fsnbuild.errors import ImageError
from fsnbuild.standin.rootfs import debootstrap, mounts_below, remove_tree

needs_root = pytest.mark.skipif(os.geteuid() != 0, reason="mounting needs root")


@needs_root
def test_remove_tree_unmounts_what_is_left_mounted_then_deletes(tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "proc").mkdir(parents=True)
    subprocess.run(["mount", "-t", "tmpfs", "tmpfs", str(root / "proc")], check=True)
    (root / "proc/inside").write_text("x")
    assert mounts_below(root) == [root / "proc"]
    remove_tree(root)
    assert mounts_below(tmp_path) == []
    assert not root.exists()


def test_mounts_below_ignores_a_sibling_with_a_common_prefix(tmp_path: Path) -> None:
    assert mounts_below(tmp_path / "nothing-mounted-here") == []


def test_debootstrap_refuses_a_path_with_spaces_before_running(tmp_path: Path) -> None:
    # debootstrap leaves such a tree without /lib64 and fails late; fsnbuild says so first.
    root = tmp_path / "with space" / "root"
    with pytest.raises(ImageError, match="path with spaces"):
        debootstrap(root, mirror="http://127.0.0.1:9/debian", epoch=0)
    assert not root.exists()
