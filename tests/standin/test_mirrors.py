"""The Debian mirrors are read from apt's own configuration, in either of its two formats."""

from __future__ import annotations

from pathlib import Path

import pytest

from fsnbuild.errors import ConfigError
from fsnbuild.mirrors import apt_sources, debian_mirror, debian_security_mirror

DEB822 = """\
Types: deb
# an old snapshot address, commented out
URIs: http://mirror.example/debian
Suites: bookworm bookworm-updates
Components: main
Signed-By: /usr/share/keyrings/debian-archive-keyring.gpg

Types: deb
URIs: http://mirror.example/debian-security
Suites: bookworm-security
Components: main
"""


def _apt(tmp_path: Path, *, sources_list: str = "", files: dict[str, str] | None = None) -> Path:
    (tmp_path / "sources.list.d").mkdir(parents=True)
    (tmp_path / "sources.list").write_text(sources_list)
    for name, text in (files or {}).items():
        (tmp_path / "sources.list.d" / name).write_text(text)
    return tmp_path


def test_reads_main_and_security_archive_from_deb822(tmp_path: Path) -> None:
    apt = _apt(tmp_path, files={"debian.sources": DEB822})
    assert debian_mirror(apt) == "http://mirror.example/debian"
    assert debian_security_mirror(apt) == "http://mirror.example/debian-security"


def test_reads_one_line_format_with_options(tmp_path: Path) -> None:
    text = (
        "# deb http://old.example/debian bookworm main\n"
        "deb [arch=amd64 signed-by=/k.gpg] http://m.example/debian/ bookworm main\n"
        "deb-src http://m.example/debian bookworm main\n"
        "deb http://m.example/debian-security bookworm-security main\n"
    )
    apt = _apt(tmp_path, sources_list=text)
    assert debian_mirror(apt) == "http://m.example/debian"
    assert debian_security_mirror(apt) == "http://m.example/debian-security"


def test_skips_third_party_repositories(tmp_path: Path) -> None:
    other = "Types: deb\nURIs: https://vendor.example/node_20.x\nSuites: nodistro\n"
    apt = _apt(tmp_path, files={"a-vendor.sources": other, "debian.sources": DEB822})
    assert len(apt_sources(apt)) == 3
    assert debian_mirror(apt) == "http://mirror.example/debian"


def test_disabled_stanza_is_ignored(tmp_path: Path) -> None:
    disabled = DEB822.replace(
        "URIs: http://mirror.example/debian\n", "Enabled: no\nURIs: http://mirror.example/debian\n"
    )
    assert disabled.count("Enabled: no") == 1
    apt = _apt(tmp_path, files={"debian.sources": disabled})
    with pytest.raises(ConfigError, match="no debian archive"):
        debian_mirror(apt)


def test_missing_archive_names_the_folder(tmp_path: Path) -> None:
    apt = _apt(tmp_path)
    with pytest.raises(ConfigError, match=str(apt)):
        debian_security_mirror(apt)
