"""variants.toml validation: each fault is one line naming the file, the key and the fix."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.errors import ConfigError

from .conftest import PROJECT

GOOD = PROJECT.format(digest="ab" * 32)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "variants.toml"
    path.write_text(text)
    return path


def test_committed_variants_toml_is_valid() -> None:
    project = load_project(Path(__file__).parents[2] / "variants.toml")
    assert sorted(project.variants) == ["pytorch", "sklearn", "tensorflow"]
    assert project.variants["pytorch"].index_for("torch") == "pytorch-cpu"
    assert project.variants["sklearn"].index_for("numpy") is None
    assert project.base.provides == ("flwr==1.25.0",)


@pytest.mark.parametrize(
    ("old", "new", "message", "hint"),
    [
        (
            'packages = ["commonpkg", "leafpkg"]',
            'pakages = ["x"]',
            r"\[variants\.plain\] unknown key 'pakages'",
            "did you mean .packages.",
        ),
        (
            'routes = { torchlike = "cpu" }',
            'routes = { torchlike = "gpu" }',
            r"\[variants\.torchy\] routes 'torchlike' to undeclared index 'gpu'",
            "did you mean 'cpu'",
        ),
        (
            'digest = "sha256:' + "ab" * 32 + '"\n',
            "",
            r"\[base\] missing key 'digest'",
            "add digest",
        ),
        (
            'digest = "sha256:' + "ab" * 32 + '"',
            'digest = "sha256:1234"',
            r"\[base\] 'digest' 'sha256:1234' is not a valid digest",
            "64 lower-case hex",
        ),
        (
            'python = "3.11"',
            'python = "3.11.4"',
            r"\[target\] 'python' = '3.11.4' is not a version like '3.11'",
            "major.minor",
        ),
        ('python = "3.11"', 'python = "py311"', r"'python' = 'py311'", "major.minor"),
        (
            'framework = "plain"',
            'framework = "torchy"',
            r"duplicate variant: framework 'torchy'",
            "exactly one variant",
        ),
        (
            "[indexes.pypi]\ndefault = true",
            "[indexes.pypi]\ndefault = false",
            r"\[indexes\] 0 indexes have default = true",
            "exactly one",
        ),
        (
            "[product]",
            "[prodcut]",
            r"\[top level\] unknown key 'prodcut'",
            "did you mean .product.",
        ),
        (
            'packages = ["commonpkg", "leafpkg"]',
            'packages = ["common pkg!!"]',
            r"invalid requirement 'common pkg!!'",
            "name\\[extra\\]",
        ),
        ("epoch = 1767225600", "epoch = 12", r"'epoch' = 12 is outside 1980..2242", "zip"),
        ("epoch = 1767225600", "epoch = 99999999999999999", r"'epoch' = 9+ is outside", "tar"),
        (
            'version = "1.0"',
            'version = "1.0 beta"',
            r"'version' = '1.0 beta' cannot be an image tag",
            "letters",
        ),
        (
            'tag = "1"',
            'tag = "bad tag!"',
            r"\[base\] 'tag' = 'bad tag!' is not an image tag",
            "letters",
        ),
        (
            'repository = "example/base"',
            'repository = "UPPER/Case"',
            r"'repository' = 'UPPER/Case' is not a repository name",
            "lower-case",
        ),
        (
            "epoch = 1767225600",
            'epoch = 1767225600\nimage-name = "x-{framework}:{version}:{bogus}"',
            r"'image-name' = .* does not make a valid image name",
            "placeholders",
        ),
        (
            "[indexes.pypi]",
            "[disk]\nsize-gib = 0\n\n[indexes.pypi]",
            r"\[disk\] 'size-gib' = 0 is outside 1..2048",
            "GiB",
        ),
        (
            'framework = "plain"',
            'framework = "plain"\nsmoke = ["1bad-module"]',
            r"'smoke' has '1bad-module', not a module name",
            "importable",
        ),
        (
            'framework = "plain"',
            'framework = "plain"\nheavy = ["not a name"]',
            r"'heavy' has 'not a name', not a package name",
            "torch",
        ),
        ('python = "3.11"', "python = 311", r"'python' must be a string, not 311", "target Python"),
    ],
)
def test_rejects_bad_config_with_key_and_hint(
    tmp_path: Path, old: str, new: str, message: str, hint: str
) -> None:
    assert old in GOOD
    path = _write(tmp_path, GOOD.replace(old, new, 1))
    with pytest.raises(ConfigError, match=message) as info:
        load_project(path)
    assert str(path) in info.value.message
    assert info.value.hint is not None
    assert __import__("re").search(hint, info.value.hint)


def test_duplicate_variant_table_is_a_config_error(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD + '\n[variants.plain]\nframework = "x"\npackages = ["a"]\n')
    with pytest.raises(ConfigError, match="not valid TOML") as info:
        load_project(path)
    assert "duplicate variant" in (info.value.hint or "")


def test_cli_prints_one_error_line_and_exits_2_without_traceback(tmp_path: Path) -> None:
    path = _write(
        tmp_path, GOOD.replace("pakages", "x").replace('framework = "plain"', 'framwork = "plain"')
    )
    result = subprocess.run(
        [sys.executable, "-m", "fsnbuild", "--config", str(path), "lock", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert lines[0].startswith(f"error: {path}: [variants.plain] unknown key 'framwork'")
    assert lines[1] == "hint: did you mean 'framework'?"
    assert "Traceback" not in result.stderr and result.stdout == ""


def test_cli_debug_shows_the_traceback(tmp_path: Path) -> None:
    path = _write(tmp_path, GOOD.replace('python = "3.11"', 'python = "3"'))
    result = subprocess.run(
        [sys.executable, "-m", "fsnbuild", "--debug", "--config", str(path), "lock", "--check"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 2
    assert "Traceback" in result.stderr


def test_missing_config_file_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_project(tmp_path / "variants.toml")


def test_non_utf8_config_is_one_error(tmp_path: Path) -> None:
    path = tmp_path / "variants.toml"
    path.write_bytes(GOOD.encode() + b"\n# \xff\xfe\n")
    with pytest.raises(ConfigError, match="not UTF-8 text"):
        load_project(path)


def test_config_path_that_is_a_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="no such file"):
        load_project(tmp_path)
