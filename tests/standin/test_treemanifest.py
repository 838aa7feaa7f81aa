"""Tree manifests tell two trees apart by content, mode, owner and link target, not by time."""

from __future__ import annotations

import os
from pathlib import Path

from fsnbuild.standin.treemanifest import diff_manifests, tree_manifest


def _pair(tmp_path: Path) -> tuple[Path, Path]:
    trees = []
    for side in ("a", "b"):
        root = tmp_path / side
        (root / "etc").mkdir(parents=True)
        (root / "etc/passwd").write_text("root:x:0:0")
        (root / "bin").symlink_to("usr/bin")
        trees.append(root)
    return trees[0], trees[1]


def test_equal_trees_with_different_times_have_no_difference(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    os.utime(b / "etc/passwd", (0, 0))
    assert diff_manifests(tree_manifest(a), tree_manifest(b)) == []


def test_reports_changed_content_mode_and_link(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    (b / "etc/passwd").write_text("root:x:0:0:changed")
    (b / "etc").chmod(0o700)
    (b / "bin").unlink()
    (b / "bin").symlink_to("/usr/bin")
    changed = [
        (left.path if left else None)
        for left, _ in diff_manifests(tree_manifest(a), tree_manifest(b))
    ]
    assert changed == ["bin", "etc", "etc/passwd"]


def test_reports_a_path_on_one_side_only(tmp_path: Path) -> None:
    a, b = _pair(tmp_path)
    (b / "etc/extra").write_text("")
    [(left, right)] = diff_manifests(tree_manifest(a), tree_manifest(b))
    assert left is None and right is not None and right.path == "etc/extra"
    assert right.sha256 == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
