"""The fsnbuild command line: a thin layer that turns library calls into progress and one
clear error line. Only this module prints."""

from __future__ import annotations

import contextlib
import errno
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
    context_settings={"help_option_names": ["-h", "--help"]},
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


@app.callback(invoke_without_command=True)
def _root(
    ctx: typer.Context,
    config: ConfigOption = Path("variants.toml"),
    debug: Annotated[bool, typer.Option("--debug", help="show tracebacks and debug logs")] = False,
    version: Annotated[bool, typer.Option("--version", help="print the version")] = False,
) -> None:
    if version:
        out.print(f"fsnbuild {__version__}")
        raise typer.Exit()
    if ctx.invoked_subcommand is None:
        out.print(ctx.get_help())
        raise typer.Exit(2)
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
        err.print(f"[yellow]hint:[/] {_os_hint(exc)}")
        raise typer.Exit(1) from None
    except typer.Exit:
        raise
    except Exception as exc:
        # A failure fsnbuild did not foresee is a bug: still one line, the traceback on --debug.
        if State.debug:
            err.print_exception()
        err.print(f"[bold red]error:[/] internal error: {type(exc).__name__}: {escape(str(exc))}")
        err.print(
            "[yellow]hint:[/] this is a bug in fsnbuild; run again with --debug and report it"
        )
        raise typer.Exit(70) from None


def _os_hint(exc: OSError) -> str:
    if exc.errno == errno.ENOSPC:
        return "the disk is full: free space or choose another --out/--cache-dir"
    if exc.errno in (errno.EACCES, errno.EPERM, errno.EROFS):
        return "no permission to write there: choose another --out/--cache-dir"
    if exc.errno in (errno.EEXIST, errno.ENOTDIR):
        return "a file stands where a folder is needed: give a folder path"
    if exc.errno == errno.ENOENT:
        return "a file fsnbuild needs is missing: check the path"
    return "check the path, free disk space and permissions"


def cache_location(value: Path | None) -> Path:
    """--cache-dir, else $FSNBUILD_CACHE, else $XDG_CACHE_HOME/fsnbuild (~/.cache/fsnbuild)."""
    if value is not None:
        return value
    if os.environ.get("FSNBUILD_CACHE"):
        return Path(os.environ["FSNBUILD_CACHE"])
    xdg = os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")
    return Path(xdg) / "fsnbuild"


def project() -> Project:
    return load_project(State.config)


def main() -> None:
    from fsnbuild import cli_appliance, cli_commands  # noqa: F401  (register the subcommands)

    try:
        app()
    except SystemExit as exc:
        sys.exit(exc.code)
