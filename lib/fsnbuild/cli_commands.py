"""The subcommands of fsnbuild; each reads its options, calls one library function, reports."""

from __future__ import annotations

from typing import Annotated

import typer

from fsnbuild.cli import app, err, out, project, reporting
from fsnbuild.lock import indexes, run

VariantOption = Annotated[
    list[str] | None, typer.Option("--variant", "-v", help="a variant name (repeatable); default all")
]


@app.command("lock")
def lock_command(
    variant: VariantOption = None,
    upgrade: Annotated[bool, typer.Option("--upgrade", "-U", help="re-resolve every package")] = False,
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
        if check:
            _check(proj, variant or [])
            return
        overrides = indexes.parse_overrides(index or [], proj)
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
                f"[bold]{report.label}[/]: {report.count} packages, {status} "
                f"({report.path.name})"
            )
            for word, items, colour in (
                ("added", change.added, "green"),
                ("removed", change.removed, "red"),
                ("upgraded", change.upgraded, "yellow"),
                ("downgraded", change.downgraded, "magenta"),
            ):
                if items and not (word == "added" and len(items) == report.count):
                    out.print(f"  [{colour}]{word}[/] {', '.join(items)}")


def _check(proj: run.Project, variants: list[str]) -> None:
    results = run.check(proj, variants)
    bad = [r for r in results if r.problem]
    for result in results:
        if result.problem:
            detail = f": {', '.join(result.changed)} changed" if result.changed else ""
            err.print(f"[red]{result.label}[/]: {result.problem} ({result.path}){detail}")
        else:
            out.print(f"[green]{result.label}[/]: fresh")
    if bad:
        err.print("[yellow]hint:[/] run `fsnbuild lock` for the variants named above")
        raise typer.Exit(3)
