"""Damaged or hand-edited locks, and bad command-line values: one error line, never a traceback."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.errors import ConfigError, LockError
from fsnbuild.lock import indexes, run

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    shutil.copy(ROOT / "variants.toml", tmp_path)
    shutil.copytree(ROOT / "locks", tmp_path / "locks")
    return tmp_path / "variants.toml"


def _fsnbuild(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "fsnbuild", *args], capture_output=True,
                          text=True, check=False)  # fmt: skip


def test_truncated_pylock_is_named_as_damaged(project_copy: Path) -> None:
    pylock = project_copy.parent / "locks" / "sklearn.pylock.toml"
    pylock.write_text(pylock.read_text()[:777])
    result = _fsnbuild("-c", str(project_copy), "lock", "--check")
    assert result.returncode == 1
    assert result.stderr.startswith(f"error: {pylock}: damaged lock, not valid TOML")
    assert "Traceback" not in result.stderr


def test_non_utf8_lock_is_named_as_damaged(project_copy: Path) -> None:
    pylock = project_copy.parent / "locks" / "sklearn.pylock.toml"
    pylock.write_bytes(pylock.read_bytes() + b"\n# \xff\n")
    with pytest.raises(LockError, match="damaged lock"):
        run.check(load_project(project_copy), ["sklearn"])


def test_hand_edited_requirements_pin_is_caught_by_check(project_copy: Path) -> None:
    txt = project_copy.parent / "locks" / "sklearn.txt"
    txt.write_text(txt.read_text().replace("\npandas==3.1.1 ", "\npandas==2.0.0 "))
    results = {r.label: r for r in run.check(load_project(project_copy), ["sklearn"])}
    assert results["sklearn"].problem == "out of step with its pylock.toml (pandas)"


def test_hand_edited_hash_is_caught_by_check(project_copy: Path) -> None:
    pylock = project_copy.parent / "locks" / "sklearn.pylock.toml"
    text = pylock.read_text()
    start = text.index('sha256 = "', text.index('name = "pandas"')) + len('sha256 = "')
    pylock.write_text(text[:start] + "0" * 64 + text[start + 64 :])
    results = {r.label: r for r in run.check(load_project(project_copy), ["sklearn"])}
    assert results["sklearn"].problem == "out of step with its pylock.toml (pandas)"


@pytest.mark.parametrize("value", ["pandas>=1", "no such"])
def test_upgrade_package_must_be_a_bare_name(project_copy: Path, value: str) -> None:
    with pytest.raises(ConfigError, match="is not a package name"):
        run.lock(load_project(project_copy), variants=["sklearn"], upgrade_packages=[value])


@pytest.mark.parametrize("url", ["ftp:/x", "notaurl"])
def test_index_address_must_be_a_url(
    project_copy: Path, url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    project = load_project(project_copy)
    with pytest.raises(ConfigError, match="is not an index address"):
        indexes.parse_overrides([f"pytorch-cpu={url}"], project)
    monkeypatch.setenv("FSNBUILD_INDEX_PYTORCH_CPU", url)
    with pytest.raises(
        ConfigError, match=r"FSNBUILD_INDEX_PYTORCH_CPU: .* is not an index address"
    ):
        indexes.resolve_index_urls(project, {})


def test_cli_without_command_shows_help_and_version_works() -> None:
    assert _fsnbuild().returncode == 2
    version = _fsnbuild("--version")
    assert version.returncode == 0 and version.stdout.startswith("fsnbuild ")
    assert _fsnbuild("-h").returncode == 0


def test_repeated_variant_is_checked_once(project_copy: Path) -> None:
    labels = [r.label for r in run.check(load_project(project_copy), ["sklearn", "sklearn"])]
    assert labels == ["base", "sklearn"]
