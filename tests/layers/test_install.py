"""install_wheel: venv layout, scripts, RECORD, and refusal of unsafe wheels before any write."""

from __future__ import annotations

import base64
import csv
import hashlib
from pathlib import Path

import pytest

from fsnbuild.errors import WheelError
from fsnbuild.layers.install import VenvScheme, install_wheel

from .wheels import build_wheel

SITE = "python/venv/lib/python3.11/site-packages"


def _listing(tree: Path) -> list[str]:
    return sorted(str(p.relative_to(tree)) for p in tree.rglob("*"))


def test_scheme_paths_are_those_of_the_image_venv() -> None:
    paths = VenvScheme().paths("demo")
    assert paths["purelib"] == "/python/venv/lib/python3.11/site-packages"
    assert paths["platlib"] == paths["purelib"]
    assert paths["scripts"] == "/python/venv/bin"
    assert paths["data"] == "/python/venv"
    assert paths["headers"] == "/python/venv/include/site/python3.11/demo"
    assert VenvScheme().interpreter == "/python/venv/bin/python"


def test_console_script_gets_venv_shebang(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "w", "tool", entry_points="[console_scripts]\ntool-cli = tool:main\n"
    )
    dist = install_wheel(wheel, tmp_path / "tree")

    script = tmp_path / "tree/python/venv/bin/tool-cli"
    assert script.read_bytes().splitlines()[0] == b"#!/python/venv/bin/python"
    assert b"from tool import main" in script.read_bytes()
    assert script.stat().st_mode & 0o111
    assert "/python/venv/bin/tool-cli" in dist.files
    assert (dist.name, dist.version) == ("tool", "1.0")


def test_data_folders_go_to_their_scheme_paths(tmp_path: Path) -> None:
    data = "datapkg-2.0.data"
    wheel = build_wheel(
        tmp_path / "w",
        "datapkg",
        "2.0",
        files={
            "datapkg/__init__.py": b"",
            f"{data}/scripts/run-me": b"#!python\nprint('hi')\n",
            f"{data}/data/share/datapkg/table.csv": b"a,b\n",
            f"{data}/headers/datapkg.h": b"int x;\n",
        },
        executable=frozenset({f"{data}/scripts/run-me"}),
    )
    install_wheel(wheel, tmp_path / "tree")

    tree = tmp_path / "tree"
    assert (tree / "python/venv/bin/run-me").read_bytes() == (
        b"#!/python/venv/bin/python\nprint('hi')\n"
    )
    assert (tree / "python/venv/share/datapkg/table.csv").read_bytes() == b"a,b\n"
    assert (tree / "python/venv/include/site/python3.11/datapkg/datapkg.h").exists()
    assert not (tree / SITE / data).exists()


def test_record_is_true_sorted_and_names_fsnbuild_as_installer(tmp_path: Path) -> None:
    wheel = build_wheel(
        tmp_path / "w",
        "rec",
        files={"rec/__init__.py": b"A = 1\n", "rec/sub/m.py": b"B = 2\n"},
        entry_points="[console_scripts]\nrec = rec:main\n",
    )
    install_wheel(wheel, tmp_path / "one")
    install_wheel(wheel, tmp_path / "two")

    info = tmp_path / "one" / SITE / "rec-1.0.dist-info"
    record = (info / "RECORD").read_bytes()
    assert record == (tmp_path / "two" / SITE / "rec-1.0.dist-info/RECORD").read_bytes()
    assert (info / "INSTALLER").read_text() == "fsnbuild\n"
    assert not (info / "direct_url.json").exists()
    rows = list(csv.reader(record.decode().splitlines()))
    assert [r[0] for r in rows] == sorted(r[0] for r in rows)
    assert "../../../bin/rec" in [r[0] for r in rows]
    for path, digest, size in rows:
        if not digest:
            assert path == "rec-1.0.dist-info/RECORD"
            continue
        data = (info.parent / path).read_bytes()
        expected = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
        assert digest == f"sha256={expected}"
        assert int(size) == len(data)
    assert not [p for p in (tmp_path / "one").rglob("*") if p.suffix == ".pyc"]


@pytest.mark.parametrize(
    ("files", "bad"),
    [
        ({"evil/__init__.py": b"", "../evil.py": b"x"}, "../evil.py"),
        ({"evil/__init__.py": b"", "evil/../../../etc/x": b"x"}, "evil/../../../etc/x"),
        ({"evil/__init__.py": b"", "/abs/evil.py": b"x"}, "/abs/evil.py"),
    ],
    ids=["parent", "nested-parent", "absolute"],
)
def test_rejects_wheel_with_climbing_or_absolute_path(
    tmp_path: Path, files: dict[str, bytes], bad: str
) -> None:
    tree = tmp_path / "tree"
    (tree / "keep").mkdir(parents=True)
    wheel = build_wheel(tmp_path / "w", "evil", files=files)

    with pytest.raises(WheelError) as caught:
        install_wheel(wheel, tree)

    assert wheel.name in caught.value.message
    assert bad in caught.value.message
    assert _listing(tree) == ["keep"]
    assert not (tmp_path / "evil.py").exists()


def test_rejects_write_through_symlink_out_of_tree(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    tree = tmp_path / "tree"
    (tree / SITE).mkdir(parents=True)
    # A link left in the tree (say by a base layer) that points out of it.
    (tree / SITE / "trick").symlink_to(outside)
    wheel = build_wheel(tmp_path / "w", "trick", files={"trick/__init__.py": b"owned = 1\n"})

    with pytest.raises(WheelError) as caught:
        install_wheel(wheel, tree)

    assert "trick/__init__.py" in caught.value.message
    assert wheel.name in caught.value.message
    assert list(outside.iterdir()) == []
    assert _listing(tree) == ["python", *_prefixes(SITE), f"{SITE}/trick"]


def _prefixes(path: str) -> list[str]:
    parts = path.split("/")
    return ["/".join(parts[:i]) for i in range(2, len(parts) + 1)]


def test_rejects_dangling_symlink_at_a_file_path(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / SITE / "dang").mkdir(parents=True)
    (tree / SITE / "dang/__init__.py").symlink_to(tmp_path / "created-outside")
    wheel = build_wheel(tmp_path / "w", "dang", files={"dang/__init__.py": b"x = 1\n"})

    with pytest.raises(WheelError, match=r"dang/__init__\.py"):
        install_wheel(wheel, tree)
    assert not (tmp_path / "created-outside").exists()


def test_rejects_wheel_carrying_a_symlink_entry(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    wheel = build_wheel(
        tmp_path / "w", "linky", files={"linky/__init__.py": b""}, symlinks={"linky/etc": "/etc"}
    )
    with pytest.raises(WheelError, match=r"linky/etc.*symlink"):
        install_wheel(wheel, tree)
    assert _listing(tree) == []


def test_rejects_wheel_whose_record_hash_does_not_match(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    wheel = build_wheel(
        tmp_path / "w",
        "tampered",
        files={"tampered/__init__.py": b"", "tampered/core.py": b"changed after signing\n"},
        corrupt_record=frozenset({"tampered/core.py"}),
    )
    with pytest.raises(WheelError) as caught:
        install_wheel(wheel, tree)

    assert "tampered/core.py" in caught.value.message
    assert "didn't match RECORD" in caught.value.message
    assert _listing(tree) == []


def test_wheel_failing_midway_leaves_nothing(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / "keep").mkdir(parents=True)
    # "half/a" is written as a file, then "half/a/b.py" needs it to be a folder: the second
    # write fails after the first succeeded, and the first must be undone.
    wheel = build_wheel(
        tmp_path / "w", "half", files={"half/__init__.py": b"", "half/a": b"x", "half/a/b.py": b""}
    )
    with pytest.raises(WheelError, match="half"):
        install_wheel(wheel, tree)
    assert _listing(tree) == ["keep"]


def test_file_shared_by_two_wheels_is_overwritten_with_a_warning(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    tree = tmp_path / "tree"
    first = build_wheel(tmp_path / "w", "ns-one", files={"ns/__init__.py": b"# one\n"})
    second = build_wheel(tmp_path / "w", "ns-two", files={"ns/__init__.py": b"# two\n"})
    install_wheel(first, tree)
    install_wheel(second, tree)
    assert (tree / SITE / "ns/__init__.py").read_bytes() == b"# two\n"
    assert "ns/__init__.py overwrites a file of another wheel" in caplog.text


def test_rejects_file_where_the_tree_has_a_folder(tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    (tree / SITE / "clash/mod.py").mkdir(parents=True)
    before = _listing(tree)
    wheel = build_wheel(tmp_path / "w", "clash", files={"clash/mod.py": b""})
    with pytest.raises(WheelError, match=r"clash/mod\.py.*is a folder"):
        install_wheel(wheel, tree)
    assert _listing(tree) == before
