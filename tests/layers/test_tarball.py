"""tar_tree: the same tree gives the same bytes, whatever the umask, time zone or folder."""

from __future__ import annotations

import gzip
import hashlib
import io
import os
import stat
import tarfile
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from fsnbuild.layers.tarball import LayerBlob, tar_tree

EPOCH = 1767225600


@pytest.fixture
def restore_umask_and_tz() -> Iterator[None]:
    umask = os.umask(0o022)
    os.umask(umask)
    tz = os.environ.get("TZ")
    try:
        yield
    finally:
        os.umask(umask)
        if tz is None:
            os.environ.pop("TZ", None)
        else:
            os.environ["TZ"] = tz
        time.tzset()


def _make_tree(root: Path) -> Path:
    """A small tree made with the process umask: files, an executable, a link, a hard link."""
    (root / "python/venv/bin").mkdir(parents=True)
    (root / "python/venv/lib/pkg").mkdir(parents=True)
    (root / "python/venv/lib/pkg/__init__.py").write_text("A = 1\n")
    (root / "python/venv/lib/pkg/a.b").write_text("sorts before pkg/a/ bytewise\n")
    (root / "python/venv/lib/pkg/a").mkdir()
    (root / "python/venv/lib/pkg/a/z.txt").write_text("z\n")
    (root / "python/venv/lib/pkg/ünïcode.txt").write_text("u\n")
    tool = root / "python/venv/bin/tool"
    tool.write_text("#!/python/venv/bin/python\n")
    tool.chmod(0o700)
    (root / "python/venv/bin/python").symlink_to("/usr/bin/python3.11")
    os.link(root / "python/venv/lib/pkg/__init__.py", root / "python/venv/lib/pkg/same.py")
    long_dir = root / ("d" * 120) / ("e" * 120)
    long_dir.mkdir(parents=True)
    (long_dir / "long-name-needs-gnu-header.txt").write_text("long\n")
    return root


def _members(blob: LayerBlob) -> list[tarfile.TarInfo]:
    with tarfile.open(blob.path, "r:gz") as tar:
        return tar.getmembers()


def test_same_tree_under_other_umask_and_tz_gives_identical_bytes(
    tmp_path: Path, restore_umask_and_tz: None
) -> None:
    os.umask(0o022)
    os.environ["TZ"] = "UTC"
    time.tzset()
    one = tar_tree(_make_tree(tmp_path / "a" / "tree"), tmp_path / "out1", epoch=EPOCH)

    os.umask(0o077)
    os.environ["TZ"] = "Pacific/Kiritimati"
    time.tzset()
    two = tar_tree(_make_tree(tmp_path / "b" / "other"), tmp_path / "out2", epoch=EPOCH)

    assert one.path.read_bytes() == two.path.read_bytes()
    assert (one.digest, one.diff_id, one.size) == (two.digest, two.diff_id, two.size)


def test_digests_are_those_of_the_written_bytes(tmp_path: Path) -> None:
    blob = tar_tree(_make_tree(tmp_path / "tree"), tmp_path / "out", epoch=EPOCH, comment="c")

    data = blob.path.read_bytes()
    assert blob.digest.hex == hashlib.sha256(data).hexdigest()
    assert blob.diff_id.hex == hashlib.sha256(gzip.decompress(data)).hexdigest()
    assert blob.path == tmp_path / "out" / blob.digest.hex
    assert blob.size == len(data)
    assert blob.comment == "c"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [blob.digest.hex]


def test_gzip_header_has_no_name_and_no_time(tmp_path: Path) -> None:
    blob = tar_tree(_make_tree(tmp_path / "tree"), tmp_path / "out", epoch=EPOCH)
    header = blob.path.read_bytes()[:10]
    flags = header[3]
    assert header[:3] == b"\x1f\x8b\x08"
    assert flags & 0x08 == 0  # FNAME
    assert header[4:8] == b"\0\0\0\0"  # MTIME


def test_entries_are_sorted_normalised_and_without_pax_headers(
    tmp_path: Path, restore_umask_and_tz: None
) -> None:
    os.umask(0o077)
    blob = tar_tree(_make_tree(tmp_path / "tree"), tmp_path / "out", epoch=EPOCH)

    members = _members(blob)
    names = [m.name for m in members]
    assert names == sorted(names, key=os.fsencode)
    assert names.index("python/venv/lib/pkg/a.b") < names.index("python/venv/lib/pkg/a/z.txt")
    by_name = {m.name: m for m in members}
    assert by_name["python/venv/bin/tool"].mode == 0o755
    assert by_name["python/venv/lib/pkg/__init__.py"].mode == 0o644
    assert by_name["python/venv/lib/pkg"].mode == 0o755
    assert by_name["python/venv/bin/python"].issym()
    assert by_name["python/venv/bin/python"].linkname == "/usr/bin/python3.11"
    same = by_name["python/venv/lib/pkg/same.py"]
    assert same.islnk() and same.linkname == "python/venv/lib/pkg/__init__.py"
    assert "python/venv/lib/pkg/ünïcode.txt" in by_name
    assert any(len(n) > 240 for n in names)
    for member in members:
        assert (member.uid, member.gid, member.uname, member.gname) == (0, 0, "", "")
        assert member.mtime == EPOCH
        assert member.pax_headers == {}

    raw = gzip.decompress(blob.path.read_bytes())
    typeflags = {raw[offset + 156 : offset + 157] for offset in _header_offsets(raw)}
    assert b"x" not in typeflags and b"g" not in typeflags  # PAX extended headers
    assert b"L" in typeflags  # GNU long name, as GNU format uses instead


def _header_offsets(raw: bytes) -> Iterator[int]:
    with tarfile.open(fileobj=io.BytesIO(raw), format=tarfile.GNU_FORMAT) as tar:
        for member in tar.getmembers():
            # offset is where the member's first header (long-name header included) starts
            yield member.offset
            if member.offset != member.offset_data - 512:
                yield member.offset_data - 512


def test_older_times_are_kept_and_newer_ones_clamped(tmp_path: Path) -> None:
    root = tmp_path / "tree"
    root.mkdir()
    (root / "old").write_text("old\n")
    (root / "new").write_text("new\n")
    os.utime(root / "old", (1000, 1000))
    os.utime(root / "new", (EPOCH + 500, EPOCH + 500))

    times = {m.name: m.mtime for m in _members(tar_tree(root, tmp_path / "out", epoch=EPOCH))}
    assert times == {"new": EPOCH, "old": 1000}


def test_without_owner_keeps_owners_special_bits_and_devices(tmp_path: Path) -> None:
    if os.geteuid() != 0:
        pytest.skip("chown and mknod need root")
    root = tmp_path / "rootfs"
    (root / "usr/bin").mkdir(parents=True)
    (root / "dev").mkdir()
    su = root / "usr/bin/su"
    su.write_bytes(b"\x7fELF")
    su.chmod(0o4755)
    home = root / "home/app"
    home.mkdir(parents=True)
    home.chmod(0o700)
    os.chown(home, 49999, 49999)
    os.mknod(root / "dev/null", 0o666 | stat.S_IFCHR, os.makedev(1, 3))
    os.chmod(root / "dev/null", 0o666)

    by_name = {
        m.name: m for m in _members(tar_tree(root, tmp_path / "out", epoch=EPOCH, owner=None))
    }
    assert by_name["usr/bin/su"].mode == 0o4755
    assert (by_name["home/app"].uid, by_name["home/app"].gid) == (49999, 49999)
    assert by_name["home/app"].mode == 0o700
    null = by_name["dev/null"]
    assert null.ischr() and (null.devmajor, null.devminor) == (1, 3) and null.mode == 0o666


def test_owner_given_overrides_file_system_owners(tmp_path: Path) -> None:
    root = _make_tree(tmp_path / "tree")
    blob = tar_tree(root, tmp_path / "out", epoch=EPOCH, owner=(49999, 49999))
    assert {(m.uid, m.gid) for m in _members(blob)} == {(49999, 49999)}
