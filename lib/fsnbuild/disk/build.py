"""build_disk: one variant's appliance QCOW2, its checksum, manifest and marketplace listing.

Input-addressed: the inputs (lock, container image digest, elements, DIB version, release,
epoch, assembly code) hash to a key, and a finished build under that key is reused as is.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import shutil
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from fsnbuild.config import Project, Variant
from fsnbuild.digest import Digest
from fsnbuild.disk import assemble, elements, tree
from fsnbuild.disk.dib import DibJob, Progress, dib_version, run_dib
from fsnbuild.disk.listing import ImageEntry, render_listing
from fsnbuild.disk.mirrors import find_mirror
from fsnbuild.errors import DiskError
from fsnbuild.fsutil import write_text_atomic

log = logging.getLogger(__name__)

SCHEMA = "fsnbuild-disk/1"


@dataclass(frozen=True)
class DiskInputs:
    """Everything the QCOW2's content depends on; its hash is the cache key."""

    name: str
    framework: str
    version: str
    lock_sha256: str
    image_ref: str
    image_digest: str
    elements_tree_sha256: str
    assembler_sha256: str  # fsnbuild.disk's own code: changing assembly changes the disk
    dib_version: str
    distribution: str
    release: str
    size_gib: int
    epoch: int

    @property
    def key(self) -> str:
        text = json.dumps(asdict(self), sort_keys=True, separators=(",", ":"))
        return hashlib.sha256(text.encode()).hexdigest()


@dataclass(frozen=True)
class DiskResult:
    qcow2: Path
    sha256: Digest
    checksum_file: Path
    manifest: Path
    listing: Path
    file_tree: Path
    file_tree_sha256: str
    virtual_size: int
    file_size: int
    cache_hit: bool
    timings: dict[str, float] = field(default_factory=dict)  # seconds per step; empty on a hit


def build_disk(
    project: Project,
    variant: Variant,
    *,
    image_archive: Path,
    image_ref: str,
    image_digest: Digest,
    lock_sha256: str,
    out_dir: Path,
    cache_dir: Path,
    log_path: Path,
    progress: Progress | None = None,
    rebuild: bool = False,
) -> DiskResult:
    """Build (or reuse) the appliance disk of ``variant``; ``rebuild`` ignores the cache."""
    if os.geteuid() != 0:
        raise DiskError("building a disk needs root", hint="diskimage-builder runs chroots")
    if not image_archive.is_file():
        raise DiskError(f"{image_archive}: no such docker-archive", hint="run fsnbuild image")
    elements_dir = project.root / "elements"
    elements.check_elements(elements_dir)
    inputs = DiskInputs(
        name=project.product.name,
        framework=variant.framework,
        version=project.product.version,
        lock_sha256=lock_sha256,
        image_ref=image_ref,
        image_digest=str(image_digest),
        elements_tree_sha256=elements.tree_hash(elements_dir),
        assembler_sha256=elements.tree_hash(Path(__file__).parent),
        dib_version=dib_version(),
        distribution=project.disk.distribution,
        release=project.disk.release,
        size_gib=project.disk.size_gib,
        epoch=project.product.epoch,
    )
    entry = cache_dir / "disk" / inputs.key
    if (entry / "manifest.json").is_file() and not rebuild:
        log.info("disk cache hit %s", inputs.key)
        if progress is not None:
            progress("cache hit: reusing the disk built from the same inputs", 0.0)
        return _publish(entry, out_dir, cache_hit=True, timings={})
    timings = _build(
        project, variant, inputs, image_archive, elements_dir, entry, log_path, progress
    )
    return _publish(entry, out_dir, cache_hit=False, timings=timings)


def _build(
    project: Project,
    variant: Variant,
    inputs: DiskInputs,
    image_archive: Path,
    elements_dir: Path,
    entry: Path,
    log_path: Path,
    progress: Progress | None,
) -> dict[str, float]:
    if project.disk.distribution != "debian":
        raise DiskError(
            f"[disk] distribution {project.disk.distribution!r} is not supported",
            hint='fsnbuild builds Debian appliances: distribution = "debian"',
        )
    timings: dict[str, float] = {}
    work = entry.parent / f".work-{inputs.key[:16]}"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    started = time.monotonic()

    def step(name: str) -> None:
        if progress is not None:
            progress(name, time.monotonic() - started)

    try:
        job = DibJob(
            elements_dir=elements_dir,
            distribution=inputs.distribution,
            release=inputs.release,
            framework=inputs.framework,
            version=inputs.version,
            image_archive=image_archive.resolve(),
            image_ref=inputs.image_ref,
            image_digest=inputs.image_digest,
            epoch=inputs.epoch,
            mirror=find_mirror(inputs.release),
        )
        mark = time.monotonic()
        root_tar = run_dib(job, work, log_path, progress)
        timings["dib"] = time.monotonic() - mark

        mark = time.monotonic()
        step("unpacking the root file system")
        root = work / "rootfs"
        tree.unpack(root_tar, root)
        root_tar.unlink()
        tree.reset_mount_points(root)
        tree.clamp_times(root, inputs.epoch)
        step("hashing the file tree")
        files = tree.manifest(root)
        kernel, initrd = tree.find_boot_files(root)

        step("assembling the disk (sfdisk, mke2fs -d, GRUB)")
        raw = work / "disk.raw"
        layout = assemble.Layout.derive(inputs.key, inputs.size_gib, tree.root_label(root))
        assemble.assemble(root, raw, layout, inputs.epoch, kernel, initrd)
        shutil.rmtree(root)
        timings["assembly"] = time.monotonic() - mark

        mark = time.monotonic()
        step("converting to QCOW2")
        qcow2 = work / "disk.qcow2"
        assemble.to_qcow2(raw, qcow2)
        raw.unlink()
        timings["convert"] = time.monotonic() - mark

        _store(project, variant, inputs, qcow2, files, work, entry)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    step("done")
    return timings


def _store(
    project: Project,
    variant: Variant,
    inputs: DiskInputs,
    qcow2: Path,
    files: tree.TreeManifest,
    work: Path,
    entry: Path,
) -> None:
    """Name the outputs by the QCOW2's hash and move them into the cache entry."""
    digest = Digest.of_file(qcow2)
    stem = f"{inputs.name}-{inputs.framework}-{inputs.version}-{digest.short}"
    image = ImageEntry(
        file_name=f"{stem}.qcow2",
        virtual_size=assemble.virtual_size(qcow2),
        file_size=qcow2.stat().st_size,
        sha256=digest.hex,
    )
    staged = work / "entry"
    staged.mkdir()
    qcow2.rename(staged / image.file_name)
    (staged / image.file_name).chmod(0o644)
    write_text_atomic(staged / f"{image.file_name}.sha256", f"{digest.hex}  {image.file_name}\n")
    write_text_atomic(staged / f"{stem}.files.jsonl", files.text)
    listing = render_listing(project, variant, image)
    write_text_atomic(staged / f"{stem}.marketplace.yaml", listing)
    manifest = {
        "schema": SCHEMA,
        "inputs": {**asdict(inputs), "key": inputs.key},
        "outputs": {
            "qcow2": {
                "file": image.file_name,
                "sha256": digest.hex,
                "virtual_size": image.virtual_size,
                "file_size": image.file_size,
            },
            "file_tree": {
                "file": f"{stem}.files.jsonl",
                "sha256": files.sha256,
                "entries": files.entries,
            },
            "listing": {
                "file": f"{stem}.marketplace.yaml",
                "sha256": hashlib.sha256(listing.encode()).hexdigest(),
            },
        },
    }
    text = json.dumps(manifest, indent=2, sort_keys=True) + "\n"
    write_text_atomic(staged / f"{stem}.manifest.json", text)
    write_text_atomic(staged / "manifest.json", text)
    if entry.exists():
        shutil.rmtree(entry)
    staged.rename(entry)


def _publish(
    entry: Path, out_dir: Path, *, cache_hit: bool, timings: dict[str, float]
) -> DiskResult:
    """Link (or copy) the cache entry's files into ``out_dir``."""
    manifest = json.loads((entry / "manifest.json").read_text())
    outputs = manifest["outputs"]
    name = outputs["qcow2"]["file"]
    stem = name.removesuffix(".qcow2")
    out_dir.mkdir(parents=True, exist_ok=True)
    files = [
        name,
        f"{name}.sha256",
        f"{stem}.manifest.json",
        f"{stem}.marketplace.yaml",
        f"{stem}.files.jsonl",
    ]
    for file in files:
        _link_or_copy(entry / file, out_dir / file)
    digest = Digest("sha256", outputs["qcow2"]["sha256"])
    return DiskResult(
        qcow2=out_dir / name,
        sha256=digest,
        checksum_file=out_dir / f"{name}.sha256",
        manifest=out_dir / f"{stem}.manifest.json",
        listing=out_dir / f"{stem}.marketplace.yaml",
        file_tree=out_dir / f"{stem}.files.jsonl",
        file_tree_sha256=outputs["file_tree"]["sha256"],
        virtual_size=outputs["qcow2"]["virtual_size"],
        file_size=outputs["qcow2"]["file_size"],
        cache_hit=cache_hit,
        timings=timings,
    )


def _link_or_copy(source: Path, target: Path) -> None:
    if target.exists() and target.samefile(source):
        return
    tmp = target.with_name(f".{target.name}.tmp")
    tmp.unlink(missing_ok=True)
    try:
        os.link(source, tmp)
    except OSError:
        shutil.copy2(source, tmp)
    os.replace(tmp, target)
