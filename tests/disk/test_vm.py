"""Build the sklearn appliance for real (DIB, assembly, QCOW2), rebuild it, and boot it.

These are the slowest tests: one build shared by every test here, one fresh rebuild to check
reproducibility, a cache hit, and two boots under QEMU's software emulation.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fsnbuild.disk.vm import BootResult, boot, write_context_iso

from .conftest import BuiltDisk, ImageArchive, build

pytestmark = [pytest.mark.slow, pytest.mark.vm]

STARTED = r"fsn-appliance: supernode container started: [0-9a-f]{12}"
FATAL = r"fsn-appliance: FATAL: .*"
CONTEXT = {"SUPERLINK_ADDRESS": "127.0.0.1:9092", "SUPERNODE_INSECURE": "YES"}


def first_difference(a: Path, b: Path) -> int | None:
    """Offset of the first differing byte, or None when the files are equal."""
    offset = 0
    with a.open("rb") as left, b.open("rb") as right:
        while True:
            x, y = left.read(1 << 20), right.read(1 << 20)
            if x != y:
                for i, (p, q) in enumerate(zip(x, y, strict=False)):
                    if p != q:
                        return offset + i
                return offset + min(len(x), len(y))
            if not x:
                return None
            offset += len(x)


def test_build_names_outputs_by_content_and_records_inputs(sklearn_disk: BuiltDisk) -> None:
    result = sklearn_disk.result
    assert result.qcow2.name == f"flower-supernode-sklearn-1.25.0-{result.sha256.short}.qcow2"
    result.sha256.verify_file(result.qcow2, what="built QCOW2")
    assert result.checksum_file.read_text() == f"{result.sha256.hex}  {result.qcow2.name}\n"
    manifest = json.loads(result.manifest.read_text())
    inputs = manifest["inputs"]
    assert (inputs["release"], inputs["epoch"], inputs["framework"]) == (
        "bookworm",
        1767225600,
        "sklearn",
    )
    assert inputs["dib_version"].startswith("3.")
    assert manifest["outputs"]["qcow2"]["virtual_size"] == 8 << 30
    assert manifest["outputs"]["qcow2"]["file_size"] == result.qcow2.stat().st_size
    listing = yaml.safe_load(result.listing.read_text())
    assert listing["images"][0]["checksum"]["sha256"] == result.sha256.hex
    phases = [name for name, _ in sklearn_disk.phases]
    assert "diskimage-builder: install.d" in phases
    assert phases[-1] == "done"
    print(
        f"\nbuild: {sklearn_disk.seconds:.0f} s {result.timings}; "
        f"QCOW2 {result.file_size / 2**20:.0f} MiB (virtual {result.virtual_size >> 30} GiB)"
    )


def test_file_tree_holds_the_staged_image_once_and_no_machine_identity(
    sklearn_disk: BuiltDisk, image_archive: ImageArchive
) -> None:
    entries = {}
    for line in sklearn_disk.result.file_tree.read_text().splitlines():
        entry = json.loads(line)
        entries[entry["path"]] = entry
    staged = entries["/var/lib/fsn-appliance/image.tar"]
    assert staged["size"] == image_archive.path.stat().st_size
    tars = [e for e in entries.values() if e.get("sha256") == staged["sha256"]]
    assert len(tars) == 1
    assert entries["/etc/machine-id"]["size"] == 0
    assert not [p for p in entries if p.startswith("/etc/ssh/ssh_host_")]
    assert not [
        p
        for p in entries
        if p.startswith("/var/lib/apt/lists/") and "lock" not in p and entries[p]["type"] == "file"
    ]
    assert "/var/cache/ldconfig/aux-cache" not in entries
    assert not [p for p in entries if p.startswith("/var/lib/docker/")]


@pytest.fixture(scope="module")
def sklearn_rebuild(
    sklearn_disk: BuiltDisk,
    image_archive: ImageArchive,
    tmp_path_factory: pytest.TempPathFactory,
) -> BuiltDisk:
    """A second, fresh build from the same inputs (its own cache: no reuse)."""
    base = tmp_path_factory.mktemp("rebuild")
    return build(sklearn_disk.project, image_archive, base / "out", base / "cache")


def test_rebuild_from_same_inputs_gives_same_file_tree(
    sklearn_disk: BuiltDisk, sklearn_rebuild: BuiltDisk
) -> None:
    first, second = sklearn_disk.result, sklearn_rebuild.result
    assert second.cache_hit is False
    assert (
        json.loads(second.manifest.read_text())["inputs"]
        == (json.loads(first.manifest.read_text())["inputs"])
    )
    if first.file_tree_sha256 != second.file_tree_sha256:
        one = set(first.file_tree.read_text().splitlines())
        two = set(second.file_tree.read_text().splitlines())
        pytest.fail(f"file trees differ: {sorted(one ^ two)[:20]}")


def test_rebuild_from_same_inputs_gives_bit_identical_qcow2(
    sklearn_disk: BuiltDisk, sklearn_rebuild: BuiltDisk
) -> None:
    first, second = sklearn_disk.result, sklearn_rebuild.result
    difference = first_difference(first.qcow2, second.qcow2)
    print(
        f"\nrebuild: {sklearn_rebuild.seconds:.0f} s {second.timings}; "
        f"first differing byte: {difference}"
    )
    assert difference is None
    assert second.sha256 == first.sha256
    assert second.listing.read_bytes() == first.listing.read_bytes()


def test_same_inputs_again_reuse_the_cached_disk(
    sklearn_rebuild: BuiltDisk, image_archive: ImageArchive, tmp_path: Path
) -> None:
    cache = sklearn_rebuild.cache_dir
    hit = build(sklearn_rebuild.project, image_archive, tmp_path / "out", cache)
    assert hit.result.cache_hit is True
    assert hit.result.sha256 == sklearn_rebuild.result.sha256
    hit.result.sha256.verify_file(hit.result.qcow2, what="reused QCOW2")


def _boot(disk: BuiltDisk, tmp_path: Path, framework: str, pattern: str) -> BootResult:
    iso = tmp_path / "context.iso"
    write_context_iso(iso, {"ML_FRAMEWORK": framework, **CONTEXT})
    result = boot(
        disk.result.qcow2,
        iso,
        until=(STARTED, FATAL),
        console_log=tmp_path / "console.log",
        timeout=900,  # the real image's docker load alone takes about 3 minutes under TCG
    )
    print(f"\nboot ML_FRAMEWORK={framework}: {result.seconds:.0f} s, matched {result.matched}")
    assert result.matched == pattern, result.console[-3000:]
    return result


def test_boot_with_matching_framework_loads_image_and_starts_supernode(
    sklearn_disk: BuiltDisk, tmp_path: Path
) -> None:
    result = _boot(sklearn_disk, tmp_path, "sklearn", STARTED)
    assert "fsn-appliance: image loaded: flower-supernode-sklearn" in result.console
    assert "FATAL" not in result.console


def test_boot_with_other_framework_is_fatal_and_starts_no_container(
    sklearn_disk: BuiltDisk, tmp_path: Path
) -> None:
    result = _boot(sklearn_disk, tmp_path, "pytorch", FATAL)
    assert (
        "FATAL: ML_FRAMEWORK=pytorch but this appliance was built for ML_FRAMEWORK=sklearn"
        in result.console
    )
    assert "supernode container started" not in result.console
    assert "image loaded" not in result.console
