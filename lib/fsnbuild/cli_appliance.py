"""Subcommands around the appliance: the stand-in base image and booting a built QCOW2."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Annotated

import typer
from rich.markup import escape

from fsnbuild.cli import app, cache_location, err, out, project, reporting

standin_app = typer.Typer(
    help="The local stand-in for the flwr/supernode base image.", no_args_is_help=True
)
app.add_typer(standin_app, name="standin")


@standin_app.command("build")
def standin_build_command(
    out_dir: Annotated[Path, typer.Option("--out", help="output folder")] = Path("out"),
    cache_dir: Annotated[
        Path | None, typer.Option(help="cache (default ~/.cache/fsnbuild)")
    ] = None,
    push: Annotated[str | None, typer.Option(help="registry HOST:PORT to serve it from")] = None,
    pin: Annotated[bool, typer.Option("--pin", help="write its digest into variants.toml")] = False,
) -> None:
    """Build the reproducible stand-in base (Debian bookworm, Python 3.11, flwr in /python/venv)."""
    import hashlib
    import tempfile

    from fsnbuild.config.load import read_document
    from fsnbuild.oci.blobs import BlobStore
    from fsnbuild.oci.layout import read_layout
    from fsnbuild.standin.build import build_standin_for_project
    from fsnbuild.standin.serve import serve_standin

    with reporting():
        proj = project()
        cache = cache_location(cache_dir)
        layout = out_dir / "supernode-standin.oci"
        base_lock = proj.locks_dir / "base.pylock.toml"
        if not base_lock.exists():
            from fsnbuild.errors import LockError

            raise LockError(f"{base_lock}: no base lock", hint="run `fsnbuild lock` first")
        key = hashlib.sha256(base_lock.read_bytes() + str(proj.product.epoch).encode()).hexdigest()
        stamp = out_dir / "supernode-standin.key"
        started = time.monotonic()
        if layout.exists() and stamp.exists() and stamp.read_text().strip() == key:
            with tempfile.TemporaryDirectory() as tmp:
                digest = read_layout(layout, BlobStore(Path(tmp))).manifest_digest
            err.print(f"[cyan]stand-in[/] reusing {layout} (base lock and epoch unchanged)")
        else:
            err.print("[cyan]stand-in[/] debootstrap, venv, layers (about a minute)")
            with tempfile.TemporaryDirectory(prefix="fsnbuild-standin-", dir=_mkdir(cache)) as work:
                image = build_standin_for_project(
                    proj,
                    work_dir=Path(work),
                    cache_dir=cache / "wheels",
                    out_layout=layout,
                    docker_archive=out_dir / "supernode-standin.docker.tar",
                )
            digest = image.manifest_digest
            stamp.write_text(key + "\n")
        out.print(f"stand-in {digest} ({time.monotonic() - started:.0f}s) in {layout}")
        if digest != proj.base.digest:
            if pin:
                doc = read_document(proj.path)
                doc["base"]["digest"] = str(digest)
                proj.path.write_text(doc.as_string())
                out.print(f"pinned {digest} in {proj.path.name}; run `fsnbuild lock` next")
            else:
                err.print(
                    f"[yellow]warning:[/] variants.toml pins {proj.base.digest}; this build is "
                    f"{digest}. The stand-in did not reproduce (or the pin is for another base); "
                    "`--pin` records the new digest"
                )
        if push:
            served = serve_standin(layout, push, expected=digest)
            out.print(f"serving {proj.base.repository}@{served} at {push}")


def _mkdir(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


@app.command("boot")
def boot_command(
    qcow2: Annotated[Path, typer.Argument(help="an appliance QCOW2 built by fsnbuild")],
    ml_framework: Annotated[str, typer.Option("--ml-framework", help="ML_FRAMEWORK to ask for")],
    superlink: Annotated[str, typer.Option(help="SUPERLINK_ADDRESS")] = "127.0.0.1:9092",
    insecure: Annotated[bool, typer.Option(help="SUPERNODE_INSECURE=YES")] = True,
    timeout: Annotated[int, typer.Option(help="seconds to wait for the appliance")] = 900,
) -> None:
    """Boot an appliance under QEMU with a context CD-ROM and report what it did."""
    import re
    import tempfile

    from fsnbuild.disk.vm import boot, write_context_iso
    from fsnbuild.errors import DiskError

    started = r"fsn-appliance: supernode container started: [0-9a-f]{12}"
    fatal = r"fsn-appliance: FATAL: .*"
    with reporting(), tempfile.TemporaryDirectory(prefix="fsnbuild-boot-") as tmp:
        if not qcow2.is_file():
            raise DiskError(f"{qcow2}: no such QCOW2", hint="build one with fsnbuild image --qcow2")
        context = {"ML_FRAMEWORK": ml_framework, "SUPERLINK_ADDRESS": superlink}
        if insecure:
            context["SUPERNODE_INSECURE"] = "YES"
        iso = Path(tmp) / "context.iso"
        write_context_iso(iso, context)
        err.print(
            f"[cyan]booting[/] {qcow2.name}, ML_FRAMEWORK={escape(ml_framework)} (no KVM: minutes)"
        )
        result = boot(
            qcow2,
            iso,
            until=(started, fatal),
            console_log=Path(tmp) / "console.log",
            timeout=timeout,
        )
        line = ""
        if result.matched:
            line = re.findall(result.matched, result.console)[-1]
        if result.matched == started:
            out.print(f"{line} ({result.seconds:.0f}s)")
            return
        raise DiskError(
            line or f"{qcow2.name}: no appliance report within {timeout}s",
            hint="the appliance refused this ML_FRAMEWORK" if line else "see the serial console",
        )
