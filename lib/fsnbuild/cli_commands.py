"""The subcommands of fsnbuild; each reads its options, calls one library function, reports."""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Annotated, Any

import typer
from rich.markup import escape

from fsnbuild.cli import app, cache_location, err, out, project, reporting
from fsnbuild.config import Project
from fsnbuild.lock import indexes, run

VariantOption = Annotated[
    list[str] | None,
    typer.Option("--variant", "-v", help="a variant name (repeatable); default all"),
]


@app.command("lock")
def lock_command(
    variant: VariantOption = None,
    upgrade: Annotated[
        bool, typer.Option("--upgrade", "-U", help="re-resolve every package")
    ] = False,
    upgrade_package: Annotated[
        list[str] | None, typer.Option("--upgrade-package", "-P", help="re-resolve this package")
    ] = None,
    backend: Annotated[str, typer.Option(help="resolver: uv or pip-tools")] = "uv",
    check: Annotated[
        bool, typer.Option("--check", help="verify locks match their inputs, offline")
    ] = False,
    index: Annotated[
        list[str] | None,
        typer.Option("--index", help="NAME=URL: point a named index elsewhere for this run"),
    ] = None,
) -> None:
    """Resolve variants.toml into hashed per-variant locks in locks/."""
    with reporting():
        proj = project()
        overrides = indexes.parse_overrides(index or [], proj)
        if check:
            _check(proj, variant or [], overrides)
            return
        reports = run.lock(
            proj,
            variants=variant or [],
            backend=backend,
            upgrade=upgrade,
            upgrade_packages=upgrade_package or [],
            index_overrides=overrides,
            on_start=lambda label: err.print(f"[cyan]resolving[/] {label} with {backend}"),
        )
        for report in reports:
            change = report.change
            status = "written" if report.written else "unchanged"
            out.print(
                f"[bold]{report.label}[/]: {report.count} packages, {status} ({report.path.name})"
            )
            for word, items, colour in (
                ("added", change.added, "green"),
                ("removed", change.removed, "red"),
                ("upgraded", change.upgraded, "yellow"),
                ("downgraded", change.downgraded, "magenta"),
            ):
                if items and not (word == "added" and len(items) == report.count):
                    out.print(f"  [{colour}]{word}[/] {', '.join(items)}")


def _check(proj: Project, variants: list[str], overrides: dict[str, str]) -> None:
    results = run.check(proj, variants, overrides)
    bad = [r for r in results if r.problem and not r.blocked]
    for result in results:
        if result.blocked:
            err.print(f"[yellow]{result.label}[/]: {result.problem}: {escape(result.blocked)}")
        elif result.problem:
            detail = f": {', '.join(result.changed)} changed" if result.changed else ""
            err.print(f"[red]{result.label}[/]: {result.problem} ({result.path}){detail}")
        else:
            out.print(f"[green]{result.label}[/]: fresh")
    if bad:
        err.print("[yellow]hint:[/] run `fsnbuild lock` for the variants named above")
        raise typer.Exit(3)


@app.command("image")
def image_command(
    variant: Annotated[str, typer.Option("--variant", "-v", help="the variant to build")],
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    cache_dir: Annotated[
        Path | None, typer.Option(help="cache (default ~/.cache/fsnbuild)")
    ] = None,
    base: Annotated[
        str | None,
        typer.Option(
            help="base source: docker://, docker-daemon:, oci:, oci-archive:, docker-archive:"
        ),
    ] = None,
    offline: Annotated[bool, typer.Option(help="never touch the network")] = False,
    wheelhouse: Annotated[Path | None, typer.Option(help="folder of wheels to use first")] = None,
    index: Annotated[
        list[str] | None, typer.Option("--index", help="NAME=URL for this run")
    ] = None,
    load: Annotated[bool, typer.Option("--load", help="load into the local Docker engine")] = False,
    smoke: Annotated[
        bool, typer.Option("--smoke", help="load, then import the stack in Docker")
    ] = False,
    push: Annotated[str | None, typer.Option(help="push to docker://HOST/REPO[:TAG]")] = None,
    qcow2: Annotated[
        bool, typer.Option("--qcow2", help="also build the variant's QCOW2 disk")
    ] = False,
) -> None:
    """Build a variant's container image from its lock (and optionally its QCOW2 disk)."""
    from fsnbuild.image.build import Options, build_variant_image

    with reporting():
        proj = project()
        options = Options(
            out_dir=out_dir,
            cache_dir=cache_location(cache_dir),
            base_source=base,
            offline=offline,
            wheelhouse=wheelhouse,
            index_overrides=indexes.parse_overrides(index or [], proj),
        )
        if push:
            from fsnbuild.oci.reference import ImageRef

            ImageRef.parse(push.removeprefix("docker://"))  # a bad reference fails before the build
        started = time.monotonic()
        with _download_progress() as progress:
            result = build_variant_image(
                proj,
                variant,
                options,
                step=lambda text: err.print(f"[cyan]{variant}[/] {escape(text)}"),
                progress=progress,
            )
        out.print(
            f"[bold]{result.ref}[/] {result.image.manifest_digest} "
            f"({_build_summary(result)}, "
            f"{time.monotonic() - started:.1f}s)"
        )
        out.print(f"  docker archive: {result.docker_archive}")
        out.print(f"  OCI layout:     {result.layout}")
        if load or smoke:
            from fsnbuild.oci.sources import load_into_docker

            image_id = load_into_docker(result.docker_archive)
            out.print(f"  loaded into Docker as {result.ref} ({image_id})")
        if smoke:
            from fsnbuild.image.smoke import smoke_check

            modules = proj.variants[variant].smoke
            out.print(f"  smoke check: {smoke_check(result.ref, modules)}")
        if push:
            from fsnbuild.oci.blobs import BlobStore
            from fsnbuild.oci.sources import push_image

            digest = push_image(result.image, BlobStore(options.cache_dir / "oci"), push)
            out.print(f"  pushed to {push} as {digest}")
        if qcow2:
            _build_disk(proj, variant, result, options)


def _build_summary(result: Any) -> str:
    if result.cache_hit:
        return "cache hit"
    return f"{result.layers_built} layers built, {result.layers_reused} reused"


def _build_disk(proj: Project, variant: str, result: Any, options: Any) -> None:
    from fsnbuild.digest import Digest
    from fsnbuild.disk.build import build_disk

    lock_sha = Digest.of_file(run.lock_paths(proj, variant)[1])
    disk = build_disk(
        proj,
        proj.variants[variant],
        image_archive=result.docker_archive,
        image_ref=result.ref,
        image_digest=result.image.manifest_digest,
        lock_sha256=lock_sha.hex,
        out_dir=options.out_dir,
        cache_dir=options.cache_dir,
        log_path=options.out_dir / f"{result.ref.replace(':', '-')}.dib.log",
        progress=lambda text, seconds: err.print(
            f"[cyan]{variant} disk[/] {escape(text)} [dim]({seconds:.0f}s)[/]"
        ),
    )
    state = "cache hit" if disk.cache_hit else "built"
    out.print(
        f"  QCOW2 ({state}): {disk.qcow2} sha256:{disk.sha256.hex[:12]}, "
        f"{disk.file_size / 1e9:.2f} GB file, {disk.virtual_size / 2**30:.0f} GiB virtual"
    )
    out.print(f"  listing: {disk.listing}  manifest: {disk.manifest}")


@contextlib.contextmanager
def _download_progress() -> Iterator[Callable[[Any], None] | None]:
    from rich.progress import BarColumn, DownloadColumn, Progress, TextColumn, TransferSpeedColumn

    if not err.is_terminal:
        yield None
        return
    bars = Progress(
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        console=err,
        transient=True,
    )
    tasks: dict[str, Any] = {}

    def update(event: Any) -> None:
        if event.source != "index":
            return
        task = tasks.get(event.filename)
        if task is None:
            task = tasks[event.filename] = bars.add_task(str(event.package), total=event.total)
        bars.update(task, completed=event.done)
        if event.finished:
            bars.remove_task(task)

    with bars:
        yield update


@app.command("gc")
def gc_command(
    cache_dir: Annotated[
        Path | None, typer.Option(help="cache (default ~/.cache/fsnbuild)")
    ] = None,
) -> None:
    """Delete cached blobs that no build or layer record refers to."""
    from fsnbuild.image.build import collect_garbage

    with reporting():
        files, freed = collect_garbage(cache_location(cache_dir))
        out.print(f"removed {files} blobs, {freed / 1e6:.1f} MB freed")


@app.command("wheelhouse")
def wheelhouse_command(
    variant: Annotated[
        str, typer.Option("--variant", "-v", help="the variant whose lock to fill from")
    ],
    dest: Annotated[Path, typer.Argument(help="folder to fill with the lock's wheels")],
    cache_dir: Annotated[
        Path | None, typer.Option(help="cache (default ~/.cache/fsnbuild)")
    ] = None,
    index: Annotated[
        list[str] | None, typer.Option("--index", help="NAME=URL for this run")
    ] = None,
) -> None:
    """Fill a folder with a lock's verified wheels, for offline builds elsewhere."""
    from fsnbuild.layers.fetch import WheelCache, fill_wheelhouse, target_tags

    with reporting():
        proj = project()
        lock = run.require_fresh(proj, variant)
        urls = indexes.resolve_index_urls(proj, indexes.parse_overrides(index or [], proj))
        t = proj.target
        paths = fill_wheelhouse(
            lock,
            dest,
            WheelCache(cache_location(cache_dir) / "wheels"),
            index_urls={k: v for k, v in urls.urls.items() if v},
            target_tags=target_tags(t.python, t.glibc, t.arch),
        )
        out.print(f"{len(paths)} wheels in {dest}")


@app.command("serve-index")
def serve_index_command(
    wheels: Annotated[Path, typer.Argument(help="folder of wheels")],
    port: Annotated[int, typer.Option(help="port on 127.0.0.1", min=0, max=65535)] = 0,
) -> None:
    """Serve a folder of wheels as a PEP 503 index on 127.0.0.1 (e.g. a CPU-index mirror)."""
    import tempfile

    from fsnbuild.lock.localindex import build_simple_index, serve

    with reporting(), tempfile.TemporaryDirectory() as tmp:
        names = build_simple_index(wheels, Path(tmp))
        with serve(Path(tmp), port) as url:
            out.print(f"serving {', '.join(names)} at {url} (Ctrl-C stops)")
            with contextlib.suppress(KeyboardInterrupt):
                threading.Event().wait()
