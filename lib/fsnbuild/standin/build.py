"""Build fsnbuild's local stand-in for ``flwr/supernode:1.25.0-py3.11-ubuntu24.04``, bit for bit
the same on every run: Debian bookworm's python3.11, a venv at /python/venv with flwr, user app.

It is a stand-in, labelled as one, for machines where the upstream image cannot be pulled; it
is never presented as Flower's image.
"""

from __future__ import annotations

import logging
import shutil
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.config.model import Project
from fsnbuild.layers.fetch import WheelCache, fetch_wheels, target_tags
from fsnbuild.layers.install import VenvScheme, install_wheel
from fsnbuild.layers.tarball import LayerBlob, tar_tree
from fsnbuild.lock.indexes import resolve_index_urls, resolver_default_index
from fsnbuild.lock.model import Lock
from fsnbuild.mirrors import debian_mirror
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.docker_archive import write_docker_archive
from fsnbuild.oci.image import ConfigChanges, Image, NewLayer, build_image
from fsnbuild.oci.layout import write_layout
from fsnbuild.standin import rootfs
from fsnbuild.standin.normalize import normalize_rootfs
from fsnbuild.standin.treemanifest import tree_manifest, write_manifest

log = logging.getLogger(__name__)

REPOSITORY = "fsnbuild/supernode-standin"
TAG = "1.25.0-py3.11-bookworm"
UPSTREAM = "flwr/supernode:1.25.0-py3.11-ubuntu24.04"
VENV = "/python/venv"
WORKDIR = "/app"
USER = "app"
UID = GID = 49999
PYTHON = "3.11"

LABELS = {
    "io.fsnbuild.standin": "true",
    "org.opencontainers.image.title": f"fsnbuild stand-in for {UPSTREAM}",
    "org.opencontainers.image.description": (
        f"A local stand-in built by fsnbuild, NOT the upstream {UPSTREAM} image and not made "
        "by Flower: Debian bookworm python3.11 with flwr 1.25.0 in /python/venv, user app "
        "(49999), workdir /app, for machines where the upstream image cannot be pulled."
    ),
    "org.opencontainers.image.version": "1.25.0",
}
CONFIG = ConfigChanges(
    env={
        "PATH": f"{VENV}/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
        "VIRTUAL_ENV": VENV,
        "LANG": "C.UTF-8",
    },
    entrypoint=["flower-supernode"],
    user=USER,
    working_dir=WORKDIR,
)


@dataclass(frozen=True)
class StandinTrees:
    """The two folders that become the two layers."""

    os_root: Path  # the Debian root file system, real owners kept
    app_root: Path  # /python/venv and /app, all owned by app


def build_standin(
    *,
    lock_path: Path,
    epoch: int,
    work_dir: Path,
    cache_dir: Path,
    out_layout: Path,
    docker_archive: Path | None = None,
    index_urls: Mapping[str, str] | None = None,
    wheelhouse: Path | None = None,
    mirror: str | None = None,
) -> Image:
    """Build the stand-in from the base lock; write an OCI layout (and a docker archive).

    ``index_urls`` maps the lock's index names to addresses (default: each to the resolver's
    configured default index); ``mirror`` is the Debian archive (default: the machine's apt).
    """
    lock = Lock.read(lock_path)
    trees = StandinTrees(work_dir / "os-root", work_dir / "app-root")
    _clean(work_dir, trees)

    make_os_root(trees, mirror=mirror or debian_mirror(), epoch=epoch)

    normalize_rootfs(trees.os_root)

    install_lock(lock, trees.app_root, cache_dir, index_urls=index_urls, wheelhouse=wheelhouse)

    record_trees(trees, work_dir)

    layers_dir = work_dir / "layers"
    os_layer = tar_tree(trees.os_root, layers_dir, epoch=epoch, owner=None, comment=_os_comment())
    app_layer = tar_tree(
        trees.app_root, layers_dir, epoch=epoch, owner=(UID, GID), comment=_app_comment(lock)
    )

    store = BlobStore(work_dir / "blobs")
    image = build_image(
        store,
        base=None,
        layers=[_new_layer(os_layer), _new_layer(app_layer)],
        config_changes=CONFIG,
        labels=LABELS,
        created_epoch=epoch,
    )

    write_layout(image, store, out_layout, ref=TAG)
    if docker_archive is not None:
        tags = [f"{REPOSITORY}:{TAG}"]
        write_docker_archive(image, store, docker_archive, repo_tags=tags, epoch=epoch)

    _clean(work_dir, trees)
    log.info("stand-in %s:%s is %s", REPOSITORY, TAG, image.manifest_digest)
    return image


def build_standin_for_project(
    project: Project,
    *,
    work_dir: Path,
    cache_dir: Path,
    out_layout: Path,
    docker_archive: Path | None = None,
    index_overrides: Mapping[str, str] | None = None,
) -> Image:
    """``build_standin`` with the base lock, epoch and index addresses of ``project``."""
    urls = resolve_index_urls(project, index_overrides or {})
    return build_standin(
        lock_path=project.locks_dir / "base.pylock.toml",
        epoch=project.product.epoch,
        work_dir=work_dir,
        cache_dir=cache_dir,
        out_layout=out_layout,
        docker_archive=docker_archive,
        index_urls={name: url for name, url in urls.urls.items() if url},
    )


def make_os_root(trees: StandinTrees, *, mirror: str, epoch: int) -> None:
    """Debootstrap, add the app user, create the venv, then move the venv and /app aside."""
    rootfs.debootstrap(trees.os_root, mirror=mirror, epoch=epoch)
    rootfs.add_user(trees.os_root, name=USER, uid=UID, gid=GID, home=WORKDIR, epoch=epoch)
    rootfs.make_venv(trees.os_root, prefix=VENV, epoch=epoch)

    # The venv and /app form the second layer, owned by app as a whole; /python is moved out
    # of the OS tree so that it is in exactly one layer.
    top = VENV.strip("/").split("/")[0]
    trees.app_root.mkdir(parents=True)
    shutil.move(trees.os_root / top, trees.app_root / top)
    (trees.app_root / WORKDIR.lstrip("/")).mkdir()


def install_lock(
    lock: Lock,
    tree: Path,
    cache_dir: Path,
    *,
    index_urls: Mapping[str, str] | None,
    wheelhouse: Path | None,
) -> None:
    """Fetch every wheel of ``lock`` (verified) and install it into the venv in ``tree``."""
    urls = dict(index_urls) if index_urls is not None else _default_urls(lock)
    wheels = fetch_wheels(
        lock.packages,
        WheelCache(cache_dir),
        index_urls=urls,
        target_tags=target_tags(PYTHON),
        wheelhouse=wheelhouse,
    )
    scheme = VenvScheme(prefix=VENV, python=PYTHON)
    for name, wheel in sorted(wheels.items()):
        log.debug("installing %s", name)
        install_wheel(wheel, tree, scheme)


def record_trees(trees: StandinTrees, work_dir: Path) -> None:
    """Write each tree's manifest beside it: diffing two builds' manifests shows what differs."""
    for tree in (trees.os_root, trees.app_root):
        write_manifest(tree_manifest(tree), work_dir / f"{tree.name}.manifest")


def _default_urls(lock: Lock) -> dict[str, str]:
    # The base lock resolves against the default index only; anything else needs an address.
    default = resolver_default_index()
    return {name: default for name in sorted({p.index for p in lock.packages})}


def _clean(work_dir: Path, trees: StandinTrees) -> None:
    work_dir.mkdir(parents=True, exist_ok=True)
    for tree in (trees.os_root, trees.app_root):
        rootfs.remove_tree(tree)
    if (work_dir / "layers").exists():
        shutil.rmtree(work_dir / "layers")


def _new_layer(blob: LayerBlob) -> NewLayer:
    return NewLayer(blob.path, blob.digest, blob.diff_id, blob.size, blob.comment)


def _os_comment() -> str:
    return f"debootstrap --variant=minbase {rootfs.SUITE} + {', '.join(rootfs.PACKAGES)}"


def _app_comment(lock: Lock) -> str:
    flwr = lock.get("flwr")
    pin = flwr.pin if flwr is not None else f"{len(lock.packages)} packages"
    return f"{VENV} ({pin} and {len(lock.packages) - 1} dependencies), {WORKDIR}"
