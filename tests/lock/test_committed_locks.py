"""The committed locks: fresh, hashed, CPU-only, and installable for the target."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from fsnbuild.config import load_project
from fsnbuild.lock import run
from fsnbuild.lock.localindex import build_simple_index, serve
from fsnbuild.lock.model import Lock

ROOT = Path(__file__).parents[2]
LOCKS = ROOT / "locks"
TORCH_WHEEL = Path("/opt/wheels/torch-2.13.0+cpu-cp311-cp311-manylinux_2_28_x86_64.whl")


def _pins(path: Path) -> list[str]:
    return [line for line in path.read_text().splitlines() if re.match(r"^[A-Za-z0-9_.-]+==", line)]


def test_check_passes_on_the_committed_locks() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsnbuild",
            "lock",
            "--check",
            "--variant",
            "sklearn",
            "--variant",
            "tensorflow",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert "sklearn: fresh" in result.stdout and "tensorflow: fresh" in result.stdout


def test_check_passes_and_reports_pytorch_as_not_locked() -> None:
    env = {k: v for k, v in os.environ.items() if k != "FSNBUILD_INDEX_PYTORCH_CPU"}
    result = subprocess.run(
        [sys.executable, "-m", "fsnbuild", "lock", "--check"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        env=env,
    )
    assert result.returncode == 0, result.stderr
    assert "pytorch: not locked: torch comes only from index 'pytorch-cpu'" in result.stderr


def test_check_fails_on_missing_pytorch_lock_once_its_index_has_an_address() -> None:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "fsnbuild",
            "lock",
            "--check",
            "--index",
            "pytorch-cpu=http://127.0.0.1:9/simple",
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 3
    assert "pytorch: not locked" in result.stderr


@pytest.mark.parametrize("lockfile", sorted(LOCKS.glob("*.txt")), ids=lambda p: p.name)
def test_every_pin_is_hashed_and_no_cuda_package(lockfile: Path) -> None:
    pins = _pins(lockfile)
    assert pins and all(line.endswith(" \\") for line in pins)
    assert not [p for p in pins if re.match(r"^(nvidia-|triton==)", p, re.I)]


def test_variant_locks_hold_their_frameworks_and_the_base_flwr() -> None:
    sklearn = Lock.read(LOCKS / "sklearn.pylock.toml")
    tensorflow = Lock.read(LOCKS / "tensorflow.pylock.toml")
    for lock in (sklearn, tensorflow):
        assert lock.get("flwr").version == "1.25.0"  # type: ignore[union-attr]
    assert sklearn.get("scikit-learn") and sklearn.get("pandas")
    assert tensorflow.get("tensorflow-cpu")
    base = Lock.read(LOCKS / "base.pylock.toml")
    for package in base.packages:  # nothing beneath flwr is upgraded by a variant
        assert sklearn.get(package.name).version == package.version  # type: ignore[union-attr]
        assert tensorflow.get(package.name).version == package.version  # type: ignore[union-attr]


@pytest.mark.slow
def test_sklearn_lock_installs_with_require_hashes_for_the_target(tmp_path: Path) -> None:
    target = load_project(ROOT / "variants.toml").target
    platforms = [arg for tag in target.platform_tags for arg in ("--platform", tag)]
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "--require-hashes",
            "--no-deps",
            "--only-binary",
            ":all:",
            "--target",
            str(tmp_path / "t"),
            "--python-version",
            "3.11",
            "--implementation",
            "cp",
            *platforms,
            "-r",
            str(LOCKS / "sklearn.txt"),
            "-q",
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    assert (tmp_path / "t" / "sklearn").is_dir()


@pytest.mark.slow
def test_locking_sklearn_twice_from_scratch_gives_identical_bytes(tmp_path: Path) -> None:
    outputs = []
    for name in ("one", "two"):
        folder = tmp_path / name
        folder.mkdir()
        shutil.copy(ROOT / "variants.toml", folder)
        run.lock(load_project(folder / "variants.toml"), variants=["sklearn"])
        outputs.append({p.name: p.read_bytes() for p in (folder / "locks").iterdir()})
    assert outputs[0] == outputs[1]


@pytest.fixture(scope="module")
def cpu_mirror(tmp_path_factory: pytest.TempPathFactory):  # type: ignore[no-untyped-def]
    if not TORCH_WHEEL.exists():
        pytest.skip(f"{TORCH_WHEEL} is not on this machine")
    root = tmp_path_factory.mktemp("cpu-index")
    build_simple_index(TORCH_WHEEL.parent, root)
    with serve(root) as url:
        yield url


@pytest.mark.slow
def test_pytorch_lock_fails_naming_the_missing_torchvision(tmp_path: Path, cpu_mirror: str) -> None:
    shutil.copy(ROOT / "variants.toml", tmp_path)
    project = load_project(tmp_path / "variants.toml")
    with pytest.raises(Exception, match=r"torchvision was not found on index 'pytorch-cpu'"):
        run.lock(project, variants=["pytorch"], index_overrides={"pytorch-cpu": cpu_mirror})
    assert not (tmp_path / "locks" / "pytorch.txt").exists()


@pytest.mark.slow
def test_llm_stack_locks_cpu_torch_from_the_mirror_and_no_cuda(
    tmp_path: Path, cpu_mirror: str
) -> None:
    text = (ROOT / "variants.toml").read_text()
    text = text.replace('    "torchvision",\n', "").replace(', torchvision = "pytorch-cpu"', "")
    (tmp_path / "variants.toml").write_text(text)
    project = load_project(tmp_path / "variants.toml")
    run.lock(project, variants=["pytorch"], index_overrides={"pytorch-cpu": cpu_mirror})
    lock = Lock.read(tmp_path / "locks" / "pytorch.pylock.toml")
    torch = lock.get("torch")
    assert torch is not None and (torch.version, torch.index) == ("2.13.0+cpu", "pytorch-cpu")
    for name in ("transformers", "peft", "bitsandbytes"):
        assert lock.get(name) is not None and lock.get(name).index == "pypi"  # type: ignore[union-attr]
    names = [p.name for p in lock.packages]
    assert not [n for n in names if n.startswith("nvidia-") or n == "triton"]
    assert cpu_mirror not in (tmp_path / "locks" / "pytorch.pylock.toml").read_text()
