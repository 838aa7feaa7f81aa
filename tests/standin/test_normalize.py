"""Normalising a root file system removes build-time state and build-machine facts only."""

from __future__ import annotations

import os
from pathlib import Path

from fsnbuild.standin.normalize import SOURCES_LIST, normalize_rootfs


def _tree(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root


def test_removes_logs_caches_backups_and_bytecode(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "var/log/dpkg.log": "2026-12-04 16:11 install",
            "var/log/apt/history.log": "x",
            "var/cache/ldconfig/aux-cache": "x",
            "var/cache/debconf/config.dat-old": "x",
            "var/lib/dpkg/status-old": "x",
            "var/lib/apt/lists/mirror.example_debian_dists_bookworm_Release": "x",
            "etc/shadow-": "x",
            "etc/ssh/ssh_host_ed25519_key": "x",
            "usr/lib/python3.11/__pycache__/os.cpython-311.pyc": "x",
            "usr/lib/python3/dist-packages/mod.pyc": "x",
        },
    )
    normalize_rootfs(root)
    left = sorted(str(p.relative_to(root)) for p in root.rglob("*") if not p.is_dir())
    assert left == ["etc/apt/sources.list", "etc/hostname", "etc/resolv.conf"]
    assert (root / "var/log/apt").is_dir()


def test_keeps_package_state_and_configuration(tmp_path: Path) -> None:
    kept = {
        "var/lib/dpkg/status": "Package: python3.11",
        "etc/passwd": "app:x:49999:49999::/app:/bin/bash",
        "usr/lib/python3.11/os.py": "import abc",
        "var/cache/debconf/config.dat": "Name: x",
    }
    root = _tree(tmp_path, kept)
    normalize_rootfs(root)
    assert {name: (root / name).read_text() for name in kept} == kept


def test_blanks_host_name_resolver_and_mirror(tmp_path: Path) -> None:
    root = _tree(
        tmp_path,
        {
            "etc/hostname": "buildhost",
            "etc/resolv.conf": "nameserver 192.0.2.1",
            "etc/apt/sources.list": "deb http://mirror.example/debian bookworm main",
        },
    )
    normalize_rootfs(root)
    assert (root / "etc/hostname").read_text() == ""
    assert (root / "etc/resolv.conf").read_text() == ""
    assert (root / "etc/apt/sources.list").read_text() == SOURCES_LIST
    assert "http" not in SOURCES_LIST


def test_empties_runtime_folders_but_keeps_them(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"tmp/x": "", "run/mount/utab": "", "proc/.keep": ""})
    (root / "run/lock").mkdir()
    (root / "dev").mkdir()
    os.mkfifo(root / "dev/initctl")
    normalize_rootfs(root)
    for folder in ("tmp", "proc", "dev"):
        assert (root / folder).is_dir() and not any((root / folder).iterdir())
    assert sorted(p.name for p in (root / "run").iterdir()) == ["lock", "mount"]
    assert not any((root / "run/mount").iterdir())


def test_empties_machine_id_only_when_present(tmp_path: Path) -> None:
    root = _tree(tmp_path, {"etc/machine-id": "0123456789abcdef0123456789abcdef\n"})
    normalize_rootfs(root)
    assert (root / "etc/machine-id").read_text() == ""
    other = _tree(tmp_path / "other", {"etc/passwd": ""})
    normalize_rootfs(other)
    assert not (other / "etc/machine-id").exists()
