"""Locking against local PEP 503 indexes: routing, determinism, --check, atomicity, errors."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.errors import ConfigError, LockError
from fsnbuild.lock import run
from fsnbuild.lock.model import Lock

from .conftest import Indexes


def _lock(folder: Path, indexes: Indexes, **kwargs: object) -> list[run.LockReport]:
    project = load_project(folder / "variants.toml")
    return run.lock(project, index_overrides=indexes.overrides(), **kwargs)  # type: ignore[arg-type]


def test_routed_package_comes_from_its_index_and_common_package_from_default(
    project_dir: Path, local_indexes: Indexes
) -> None:
    _lock(project_dir, local_indexes, variants=["torchy"])
    lock = Lock.read(project_dir / "locks" / "torchy.pylock.toml")
    torch, common = lock.get("torchlike"), lock.get("commonpkg")
    assert torch is not None and common is not None
    assert (torch.version, torch.index) == ("1.0+cpu", "cpu")
    # the cpu index hosts commonpkg 3.0, newer; it must still come from the default index
    assert (common.version, common.index) == ("1.1", "pypi")


def test_lock_keeps_what_the_base_provides(project_dir: Path, local_indexes: Indexes) -> None:
    _lock(project_dir, local_indexes, variants=["plain"])
    lock = Lock.read(project_dir / "locks" / "plain.pylock.toml")
    base = Lock.read(project_dir / "locks" / "base.pylock.toml")
    assert lock.get("baselib") is not None and lock.get("baselib").version == "1.0"  # type: ignore[union-attr]
    # leafpkg is what baselib needs beneath it: the variant keeps the base's version
    assert lock.get("leafpkg").version == base.get("leafpkg").version  # type: ignore[union-attr]


def test_every_pin_is_hashed_and_annotated(project_dir: Path, local_indexes: Indexes) -> None:
    _lock(project_dir, local_indexes, variants=["torchy"])
    text = (project_dir / "locks" / "torchy.txt").read_text()
    pins = [line for line in text.splitlines() if "==" in line and not line.startswith("#")]
    assert len(pins) == 4
    assert all(line.endswith("\\") for line in pins)
    assert "--hash=sha256:" in text
    assert "    # index: cpu" in text and "    # via " in text


def test_same_inputs_lock_to_identical_bytes_elsewhere_and_in_another_time_zone(
    tmp_path: Path, project_dir: Path, local_indexes: Indexes, monkeypatch: pytest.MonkeyPatch
) -> None:
    _lock(project_dir, local_indexes)
    first = {p.name: p.read_bytes() for p in (project_dir / "locks").iterdir()}
    other = tmp_path / "elsewhere" / "deeper"
    other.mkdir(parents=True)
    shutil.copy(project_dir / "variants.toml", other / "variants.toml")
    monkeypatch.setenv("TZ", "Pacific/Kiritimati")
    time.tzset()
    old_umask = os.umask(0o077)
    try:
        _lock(other, local_indexes)
    finally:
        os.umask(old_umask)
        monkeypatch.delenv("TZ")
        time.tzset()
    second = {p.name: p.read_bytes() for p in (other / "locks").iterdir()}
    assert first == second
    assert sorted(first) == [
        "base.pylock.toml",
        "base.txt",
        "plain.pylock.toml",
        "plain.txt",
        "torchy.pylock.toml",
        "torchy.txt",
    ]
    assert oct((other / "locks" / "plain.txt").stat().st_mode & 0o777) == "0o644"


def test_lock_through_a_mirror_is_the_same_file(
    tmp_path: Path, project_dir: Path, local_indexes: Indexes
) -> None:
    from fsnbuild.lock.localindex import serve

    _lock(project_dir, local_indexes, variants=["torchy"])
    before = (project_dir / "locks" / "torchy.pylock.toml").read_bytes()
    shutil.rmtree(project_dir / "locks")
    with serve(local_indexes.root / "cpu") as mirror:
        project = load_project(project_dir / "variants.toml")
        run.lock(
            project,
            variants=["torchy"],
            index_overrides={"pypi": local_indexes.default, "cpu": mirror},
        )
    after = (project_dir / "locks" / "torchy.pylock.toml").read_bytes()
    assert mirror not in after.decode()
    assert before == after


def test_check_passes_then_names_the_edited_variant(
    project_dir: Path, local_indexes: Indexes
) -> None:
    _lock(project_dir, local_indexes)
    project = load_project(project_dir / "variants.toml")
    assert [r.problem for r in run.check(project)] == [None, None, None]
    config = project_dir / "variants.toml"
    config.write_text(
        config.read_text().replace(
            'packages = ["commonpkg", "leafpkg"]', 'packages = ["commonpkg"]'
        )
    )
    results = {r.label: r for r in run.check(load_project(config))}
    assert results["plain"].problem == "stale"
    assert results["plain"].changed == ("packages",)
    assert results["torchy"].problem is None


def test_check_reports_missing_lock(project_dir: Path) -> None:
    project = load_project(project_dir / "variants.toml")
    assert {r.label: r.problem for r in run.check(project)} == {
        "base": "not locked",
        "plain": "not locked",
        "torchy": "not locked",
    }


def test_failed_lock_leaves_previous_files_untouched(
    project_dir: Path, local_indexes: Indexes
) -> None:
    _lock(project_dir, local_indexes, variants=["plain"])
    before = (project_dir / "locks" / "plain.txt").read_bytes()
    config = project_dir / "variants.toml"
    config.write_text(config.read_text().replace('"leafpkg"]', '"leafpkg", "nosuchpkg"]'))
    with pytest.raises(LockError, match="nosuchpkg"):
        _lock(project_dir, local_indexes, variants=["plain"])
    assert (project_dir / "locks" / "plain.txt").read_bytes() == before
    assert sorted(p.name for p in (project_dir / "locks").iterdir() if p.name.startswith(".")) == []


def test_sdist_only_requirement_is_refused(project_dir: Path, local_indexes: Indexes) -> None:
    config = project_dir / "variants.toml"
    config.write_text(config.read_text().replace('"leafpkg"]', '"leafpkg", "sdistonly"]'))
    with pytest.raises(LockError, match="sdistonly has no wheel for the target"):
        _lock(project_dir, local_indexes, variants=["plain"])


def test_unreachable_index_is_named(project_dir: Path, local_indexes: Indexes) -> None:
    project = load_project(project_dir / "variants.toml")
    with pytest.raises(
        LockError, match=r"index 'cpu' \(http://127\.0\.0\.1:9/simple\) is unreachable"
    ):
        run.lock(
            project,
            variants=["torchy"],
            index_overrides={"pypi": local_indexes.default, "cpu": "http://127.0.0.1:9/simple"},
        )


def test_routed_index_without_address_names_index_and_packages(
    project_dir: Path, local_indexes: Indexes
) -> None:
    project = load_project(project_dir / "variants.toml")
    with pytest.raises(
        LockError, match="index 'cpu' has no address: variant 'torchy' needs torchlike"
    ):
        run.lock(project, variants=["torchy"], index_overrides={"pypi": local_indexes.default})


def test_relock_keeps_pins_until_upgrade_package(project_dir: Path, local_indexes: Indexes) -> None:
    config = project_dir / "variants.toml"
    config.write_text(
        config.read_text().replace('["commonpkg", "leafpkg"]', '["commonpkg==1.0", "leafpkg"]')
    )
    _lock(project_dir, local_indexes, variants=["plain"])
    config.write_text(config.read_text().replace('"commonpkg==1.0"', '"commonpkg"'))
    kept = _lock(project_dir, local_indexes, variants=["plain"])[-1]
    assert kept.change == run.Change()
    assert Lock.read(project_dir / "locks" / "plain.pylock.toml").get("commonpkg").version == "1.0"  # type: ignore[union-attr]
    upgraded = _lock(
        project_dir, local_indexes, variants=["plain"], upgrade_packages=["commonpkg"]
    )[-1]
    assert upgraded.change.upgraded == ("commonpkg 1.0 -> 1.1",)


def test_variant_cannot_change_what_the_base_provides(
    project_dir: Path, local_indexes: Indexes
) -> None:
    config = project_dir / "variants.toml"
    config.write_text(config.read_text().replace('"leafpkg"]', '"leafpkg==1.0"]'))
    with pytest.raises(LockError, match=r"variant 'plain' depends on leafpkg==1\.0") as info:
        _lock(project_dir, local_indexes, variants=["plain"])
    assert "[base] provides" in (info.value.hint or "")


def test_pip_tools_backend_refuses_a_foreign_target(
    project_dir: Path, local_indexes: Indexes
) -> None:
    config = project_dir / "variants.toml"
    config.write_text(config.read_text().replace('python = "3.11"', 'python = "3.12"'))
    with pytest.raises(LockError, match=r"Python 3\.11 \(target 3\.12\)"):
        _lock(project_dir, local_indexes, variants=["plain"], backend="pip-tools")


def test_pip_tools_backend_refuses_routes(project_dir: Path, local_indexes: Indexes) -> None:
    with pytest.raises(LockError, match="pip-tools cannot route"):
        _lock(project_dir, local_indexes, variants=["torchy"], backend="pip-tools")


def test_pip_tools_backend_locks_the_same_pins_as_uv(
    project_dir: Path, local_indexes: Indexes
) -> None:
    _lock(project_dir, local_indexes, variants=["plain"], backend="pip-tools")
    by_pip = Lock.read(project_dir / "locks" / "plain.pylock.toml")
    shutil.rmtree(project_dir / "locks")
    _lock(project_dir, local_indexes, variants=["plain"])
    by_uv = Lock.read(project_dir / "locks" / "plain.pylock.toml")
    assert [p.pin for p in by_pip.packages] == [p.pin for p in by_uv.packages]
    assert by_pip.fingerprint != by_uv.fingerprint  # the resolver is an input


def test_unknown_backend_and_variant_are_config_errors(project_dir: Path) -> None:
    project = load_project(project_dir / "variants.toml")
    with pytest.raises(ConfigError, match="unknown backend 'poetry'"):
        run.lock(project, backend="poetry")
    with pytest.raises(ConfigError, match="unknown variant 'nope'"):
        run.lock(project, variants=["nope"])
