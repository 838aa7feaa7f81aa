"""``fsnbuild image``: a variant's container image as a pure function of its inputs.

The build key hashes everything the image depends on (builder version, base digest, lock,
target, epoch, name). A key already built whose blobs still verify is returned at once; a
changed lock rebuilds only the layers whose packages changed, since each layer is cached by
the hash of its own inputs.
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from fsnbuild import __version__
from fsnbuild.config import Project
from fsnbuild.digest import Digest
from fsnbuild.errors import FsnbuildError, ImageError
from fsnbuild.fsutil import atomic_path, write_text_atomic
from fsnbuild.image.base import BaseFacts, check_target, inspect_base
from fsnbuild.layers.build import Wheels, build_layer
from fsnbuild.layers.fetch import FetchProgress, WheelCache, fetch_wheels, target_tags
from fsnbuild.layers.install import VenvScheme
from fsnbuild.layers.plan import LayerPlan, plan_layers
from fsnbuild.lock.indexes import resolve_index_urls
from fsnbuild.lock.run import lock_paths, require_fresh, select_variants
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.docker_archive import write_docker_archive
from fsnbuild.oci.image import Image, NewLayer, build_image, load_image, rfc3339
from fsnbuild.oci.layout import write_layout
from fsnbuild.oci.sources import Source, fetch_image, parse_source

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Options:
    out_dir: Path
    cache_dir: Path
    base_source: str | None = None  # default: docker://REPOSITORY@DIGEST (with a mirror)
    offline: bool = False
    wheelhouse: Path | None = None
    index_overrides: Mapping[str, str] = field(default_factory=dict)
    jobs: int = 8


@dataclass(frozen=True)
class Result:
    variant: str
    ref: str
    image: Image
    key: str
    cache_hit: bool
    docker_archive: Path
    layout: Path
    layers_built: int
    layers_reused: int


Step = Callable[[str], None]
Progress = Callable[[FetchProgress], None]


def build_variant_image(
    project: Project,
    variant_name: str,
    options: Options,
    *,
    step: Step | None = None,
    progress: Progress | None = None,
) -> Result:
    """Build (or find in the cache) the container image of one variant; write its outputs."""
    say = step or (lambda _: None)
    select_variants(project, [variant_name])  # an unknown name is a ConfigError
    check_outputs(options)
    base_source(project, options)
    variant = project.variants[variant_name]
    lock = require_fresh(project, variant_name)
    ref = project.product.image_ref(variant.framework)
    lock_sha = Digest.of_file(lock_paths(project, variant_name)[1])
    key = build_key(project, variant_name, lock_sha)
    store = BlobStore(options.cache_dir / "oci")
    record = options.cache_dir / "builds" / f"{key}.json"

    cached = _cached_image(store, record)
    if cached is not None:
        say("cache hit: inputs unchanged and every blob verified")
        return _write_outputs(project, variant_name, ref, cached, key, True, options, 0, 0, say)

    say(f"fetching base {project.base.repository}@{project.base.digest.short}")
    base = _fetch_base(project, options, store)
    facts = inspect_base(base, store, options.cache_dir / "bases")
    check_target(facts, project.target, project.base.reference)

    plans = plan_layers(lock.packages, heavy=variant.heavy, base_has=facts.dists)
    wanted = [p for plan in plans for p in plan.packages]
    say(f"fetching {len(wanted)} wheels ({len(lock.packages) - len(wanted)} already in the base)")
    urls = resolve_index_urls(project, options.index_overrides) if not options.offline else None
    wheels = fetch_wheels(
        wanted,
        WheelCache(options.cache_dir / "wheels"),
        index_urls={k: v for k, v in (urls.urls.items() if urls else []) if v},
        target_tags=target_tags(project.target.python, project.target.glibc, project.target.arch),
        wheelhouse=options.wheelhouse,
        offline=options.offline,
        jobs=options.jobs,
        progress=progress,
    )

    layers, built = [], 0
    for plan in plans:
        layer, fresh = _layer(plan, wheels, facts, project.product.epoch, store, options.cache_dir)
        layers.append(layer)
        built += fresh
        say(f"layer {plan.name}: {layer.digest.short} ({'built' if fresh else 'cached'})")

    image = build_image(
        store,
        base=base,
        layers=layers,
        labels=_labels(project, variant_name, lock_sha),
        history=[f"fsnbuild {__version__}: install {layer.comment}" for layer in layers],
        created_epoch=project.product.epoch,
    )
    entry = {"manifest": str(image.manifest_digest), "base": str(base.manifest_digest), "ref": ref}
    write_text_atomic(record, json.dumps(entry) + "\n")
    return _write_outputs(
        project, variant_name, ref, image, key, False, options, built, len(layers) - built, say
    )


def _fetch_base(project: Project, options: Options, store: BlobStore) -> Image:
    source = base_source(project, options)
    if options.offline and source.transport == "docker":
        # Offline, a registry base can only come from the cache, where it is kept by digest.
        if not store.has(project.base.digest):
            raise ImageError(
                f"--offline: base {project.base.reference} is not in the cache",
                hint="build once online, or give --base oci:DIR / docker-archive:FILE",
            )
        return load_image(store, project.base.digest)
    return fetch_image(source, project.base.digest, store)


def base_source(project: Project, options: Options) -> Source:
    """The base's source, checked for form (and, for files, existence) before any work."""
    text = options.base_source or f"docker://{project.base.repository}@{project.base.digest}"
    source = parse_source(text)
    if source.transport not in ("docker", "docker-daemon") and not Path(source.location).exists():
        raise ImageError(f"--base {text}: {source.location} does not exist", hint="check the path")
    return source


def check_outputs(options: Options) -> None:
    """Refuse output paths that cannot be folders before any work starts."""
    for what, path in (("--out", options.out_dir), ("--cache-dir", options.cache_dir)):
        if path.exists() and not path.is_dir():
            raise ImageError(f"{what} {path} is a file", hint="give a folder path")


def _layer(
    plan: LayerPlan,
    wheels: Wheels,
    facts: BaseFacts,
    epoch: int,
    store: BlobStore,
    cache_dir: Path,
) -> tuple[NewLayer, bool]:
    scheme = VenvScheme(prefix=facts.venv, python=facts.python)
    key = _hash(
        {
            "builder": builder_fingerprint(),
            "epoch": epoch,
            "venv": facts.venv,
            "python": facts.python,
            "owner": list(facts.owner),
            "wheels": sorted(str(w.sha256) for p in plan.packages for w in p.wheels),
            "packages": [p.pin for p in plan.packages],
        }
    )
    record = cache_dir / "layers" / f"{key}.json"
    raw = _read_record(record)
    if raw is not None:
        digest = Digest.parse(raw["digest"])
        if store.has(digest):
            layer = NewLayer(
                store.path(digest),
                digest,
                Digest.parse(raw["diff_id"]),
                raw["size"],
                raw["comment"],
            )
            return layer, False
    with tempfile.TemporaryDirectory(dir=_mkdir(cache_dir / "tmp")) as tmp:
        built = build_layer(
            plan,
            wheels,
            Path(tmp) / "work",
            Path(tmp) / "out",
            epoch=epoch,
            scheme=scheme,
            owner=facts.owner,
        )
        blob = built.blob
        store.put_file(blob.path, expected=blob.digest, what=f"layer {plan.name}")
    layer = NewLayer(store.path(blob.digest), blob.digest, blob.diff_id, blob.size, blob.comment)
    write_text_atomic(
        record,
        json.dumps(
            {
                "digest": str(blob.digest),
                "diff_id": str(blob.diff_id),
                "size": blob.size,
                "comment": blob.comment,
            }
        )
        + "\n",
    )
    return layer, True


def _cached_image(store: BlobStore, record: Path) -> Image | None:
    if not record.exists():
        return None
    try:
        image = load_image(store, Digest.parse(json.loads(record.read_text())["manifest"]))
        for descriptor in image.layers:
            store.verify(descriptor.digest)
    except (FsnbuildError, OSError, KeyError, ValueError) as exc:
        log.warning("cached build %s no longer verifies (%s); rebuilding", record.stem[:12], exc)
        return None
    return image


def _labels(project: Project, variant: str, lock_sha: Digest) -> dict[str, str]:
    v = project.variants[variant]
    return {
        "io.fsnbuild.variant": variant,
        "io.fsnbuild.framework": v.framework,
        "io.fsnbuild.lock.sha256": lock_sha.hex,
        "io.fsnbuild.base.digest": str(project.base.digest),
        "io.fsnbuild.builder": f"fsnbuild {__version__}",
        "org.opencontainers.image.title": project.product.image_ref(v.framework).split(":")[0],
        "org.opencontainers.image.version": project.product.version,
        "org.opencontainers.image.created": rfc3339(project.product.epoch),
        "org.opencontainers.image.description": f"Flower SuperNode with the {v.framework} stack",
        "org.opencontainers.image.base.name": f"{project.base.repository}:{project.base.tag}",
        "org.opencontainers.image.base.digest": str(project.base.digest),
    }


def _write_outputs(
    project: Project,
    variant: str,
    ref: str,
    image: Image,
    key: str,
    hit: bool,
    options: Options,
    built: int,
    reused: int,
    say: Step,
) -> Result:
    store = BlobStore(options.cache_dir / "oci")
    stem = ref.replace(":", "-")
    folder = _mkdir(options.out_dir)
    archive, layout = folder / f"{stem}.docker.tar", folder / f"{stem}.oci"
    say(f"writing {archive.name} and {layout.name}/")
    summary = {
        "variant": variant,
        "image": ref,
        "manifest": str(image.manifest_digest),
        "config": str(image.config_digest),
        "layers": [str(d.digest) for d in image.layers],
        "build-key": key,
        "base": str(project.base.digest),
    }
    # All three outputs are written under temporary names and renamed together at the end, so
    # a failure (a full disk) leaves the previous set whole instead of a mix of old and new.
    with (
        atomic_path(archive) as tmp_archive,
        atomic_path(layout, is_dir=True) as tmp_layout,
        atomic_path(folder / f"{stem}.json") as tmp_summary,
    ):
        write_docker_archive(
            image, store, tmp_archive, repo_tags=[ref], epoch=project.product.epoch
        )
        write_layout(image, store, tmp_layout, ref=ref)
        tmp_summary.write_text(json.dumps(summary, indent=2, sort_keys=True) + "\n")
        tmp_summary.chmod(0o644)
    return Result(variant, ref, image, key, hit, archive, layout, built, reused)


def collect_garbage(cache_dir: Path) -> tuple[int, int]:
    """Delete blobs no build or layer record refers to; return (files, bytes) freed."""
    store = BlobStore(cache_dir / "oci")
    keep: set[Digest] = set()
    for record in sorted((cache_dir / "builds").glob("*.json")):
        try:
            raw = json.loads(record.read_text())
            images = [load_image(store, Digest.parse(raw[key])) for key in ("manifest", "base")]
        except (FsnbuildError, KeyError, ValueError):
            record.unlink()
            continue
        for image in images:
            keep |= {image.manifest_digest, image.config_digest, *(d.digest for d in image.layers)}
    for record in sorted((cache_dir / "layers").glob("*.json")):
        layer = _read_record(record)
        if layer is not None:
            keep.add(Digest.parse(layer["digest"]))
    files = freed = 0
    for digest in store.digests():
        if digest not in keep:
            freed += store.size(digest)
            files += 1
            store.delete(digest)
    shutil.rmtree(cache_dir / "tmp", ignore_errors=True)
    return files, freed


def build_key(project: Project, variant_name: str, lock_sha: Digest) -> str:
    """Every input of the image, whole: a setting left out here would let a warm cache return
    an image that a clean build of the same inputs does not make."""
    return _hash(
        {
            "builder": builder_fingerprint(),
            "lock": str(lock_sha),
            "product": project.canonical(project.product),
            "base": project.canonical(project.base),
            "target": project.canonical(project.target),
            "variant": project.canonical(project.variants[variant_name]),
        }
    )


def _read_record(path: Path) -> dict[str, Any] | None:
    """A cache record, or None when it is missing or damaged (then it is rebuilt, not trusted)."""
    try:
        raw = json.loads(path.read_text())
        Digest.parse(raw["digest"])
        return dict(raw)
    except FileNotFoundError:
        return None
    except (ValueError, KeyError, TypeError, FsnbuildError) as exc:
        log.warning("cache record %s is damaged (%s); ignoring it", path, exc)
        path.unlink(missing_ok=True)
        return None


@functools.cache
def builder_fingerprint() -> str:
    """fsnbuild's version and the hash of the code that turns inputs into layers and images:
    changing how an image is made changes every key, so no stale output is reused."""
    root = Path(__file__).resolve().parents[1]
    hasher = hashlib.sha256(__version__.encode())
    for package in ("image", "layers", "oci"):
        for path in sorted((root / package).glob("*.py")):
            hasher.update(path.name.encode() + b"\0" + path.read_bytes())
    return hasher.hexdigest()


def _hash(value: object) -> str:
    return hashlib.sha256(json.dumps(value, sort_keys=True).encode()).hexdigest()


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path
