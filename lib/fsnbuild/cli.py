"""The fsnbuild command line: a thin layer that turns library calls into progress and one
clear error line. Only this module prints."""

from __future__ import annotations

import contextlib
import logging
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.logging import RichHandler
from rich.markup import escape

from fsnbuild import __version__
from fsnbuild.config import Project, load_project
from fsnbuild.errors import FsnbuildError

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Reproducible Flower SuperNode appliances: hashed locks, OCI images, QCOW2 disks.",
    pretty_exceptions_enable=False,
)
out = Console(highlight=False, soft_wrap=True)
err = Console(stderr=True, highlight=False, soft_wrap=True)


class State:
    debug = False
    config = Path("variants.toml")


ConfigOption = Annotated[
    Path, typer.Option("--config", "-c", help="the project's variants.toml", show_default=True)
]


@app.callback()
def _root(
    config: ConfigOption = Path("variants.toml"),
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        out.print(f"fsnbuild {__version__}")
        raise typer.Exit()
    State.debug = debug or bool(os.environ.get("FSNBUILD_DEBUG"))
    State.config = config
    logging.basicConfig(
        level=logging.DEBUG if State.debug else logging.WARNING,
        format="%(message)s",
        handlers=[RichHandler(console=err, show_path=False, show_time=False)],
    )


@contextlib.contextmanager
def reporting() -> Iterator[None]:
    """Turn every FsnbuildError into one red line, a hint and its exit code."""
    try:
        yield
    except FsnbuildError as exc:
        if State.debug:
            err.print_exception()
        err.print(f"[bold red]error:[/] {escape(exc.message)}", soft_wrap=True)
        if exc.hint:
            err.print(f"[yellow]hint:[/] {escape(exc.hint)}", soft_wrap=True)
        raise typer.Exit(exc.exit_code) from None
    except KeyboardInterrupt:
        err.print(
            "[bold red]interrupted[/]; outputs written so far are whole, nothing half-written"
        )
        raise typer.Exit(130) from None
    except OSError as exc:
        if State.debug:
            err.print_exception()
        where = f" ({exc.filename})" if getattr(exc, "filename", None) else ""
        err.print(
            f"[bold red]error:[/] {escape(str(exc.strerror or exc))}{escape(where)}", soft_wrap=True
        )
        err.print("[yellow]hint:[/] check free disk space and permissions of the output folder")
        raise typer.Exit(1) from None


def project() -> Project:
    return load_project(State.config)


def main() -> None:
    from fsnbuild import cli_commands  # noqa: F401  (registers the subcommands)

    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)
