"""The Debian mirror for DIB is read from the machine's apt sources, in either format."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.disk.mirrors import find_mirror
from fsnbuild.errors import DiskError

DEB822 = """Types: deb
# a snapshot comment
URIs: http://mirror.test/debian
Suites: bookworm bookworm-updates
Components: main

Types: deb
URIs: http://mirror.test/debian-security
Suites: bookworm-security
Components: main
"""


def _apt(tmp_path: Path, sources_list: str = "", deb822: str = "") -> Path:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    if sources_list:
        (tmp_path / "sources.list").write_text(sources_list)
    if deb822:
        (tmp_path / "sources.list.d" / "debian.sources").write_text(deb822)
    return tmp_path


def test_reads_deb822_sources(tmp_path: Path) -> None:
    mirror = find_mirror("bookworm", _apt(tmp_path, deb822=DEB822))
    assert mirror.environment() == {
        "DIB_DISTRIBUTION_MIRROR": "http://mirror.test/debian",
        "DIB_DEBIAN_SECURITY_MIRROR": "http://mirror.test/debian-security",
    }


def test_reads_one_line_sources_list_with_options(tmp_path: Path) -> None:
    text = (
        "# comment\n"
        "deb-src http://src.test/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://one.test/debian/ bookworm main\n"
        "deb http://one.test/debian-security bookworm-security main\n"
    )
    mirror = find_mirror("bookworm", _apt(tmp_path, sources_list=text))
    assert mirror.distribution == "http://one.test/debian"
    assert mirror.security == "http://one.test/debian-security"


def test_security_defaults_to_sibling_path_of_the_mirror(tmp_path: Path) -> None:
    mirror = find_mirror("bookworm", _apt(tmp_path, "deb http://m.test/debian bookworm main\n"))
    assert mirror.security == "http://m.test/debian-security"


def test_missing_release_names_the_suite(tmp_path: Path) -> None:
    with pytest.raises(DiskError, match="no apt source serves suite 'trixie'"):
        find_mirror("trixie", _apt(tmp_path, deb822=DEB822))
