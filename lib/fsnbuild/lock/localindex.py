"""A static PEP 503 simple index over a folder of wheels, and a loopback server for it.

For air-gapped sites and tests: e.g. a mirror of PyTorch's CPU index holding the CPU wheels a
site has. Every link carries its file's sha256, so resolvers verify what they fetch.
"""

from __future__ import annotations

import contextlib
import functools
import html
import threading
from collections import defaultdict
from collections.abc import Iterator
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import quote

from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from fsnbuild.digest import Digest
from fsnbuild.errors import FsnbuildError


def build_simple_index(wheels: Path, dest: Path) -> list[str]:
    """Write ``dest/simple/<project>/index.html`` for every wheel in ``wheels``; return names."""
    if not wheels.is_dir():
        raise FsnbuildError(f"{wheels}: not a folder", hint="give a folder of .whl files")
    projects: dict[str, list[Path]] = defaultdict(list)
    for wheel in sorted(wheels.glob("*.whl")):
        try:
            name = parse_wheel_filename(wheel.name)[0]
        except InvalidWheelFilename as exc:
            raise FsnbuildError(
                f"{wheel}: not a wheel file name ({exc})", hint="rename or remove it"
            ) from None
        projects[canonicalize_name(name)].append(wheel)
    if not projects:
        raise FsnbuildError(f"{wheels}: holds no .whl files", hint="give a folder of wheels")
    files = dest / "files"
    files.mkdir(parents=True, exist_ok=True)
    root_links = []
    for project, paths in sorted(projects.items()):
        page = dest / "simple" / project
        page.mkdir(parents=True, exist_ok=True)
        links = []
        for path in paths:
            link = files / path.name
            if not link.exists():
                link.symlink_to(path.resolve())
            digest = Digest.of_file(path).hex
            href = f"../../files/{quote(path.name)}#sha256={digest}"
            links.append(f'<a href="{html.escape(href)}">{html.escape(path.name)}</a><br/>')
        page.joinpath("index.html").write_text(_page(project, links))
        root_links.append(f'<a href="{project}/">{project}</a><br/>')
    (dest / "simple").mkdir(parents=True, exist_ok=True)
    (dest / "simple" / "index.html").write_text(_page("simple", root_links))
    return sorted(projects)


@contextlib.contextmanager
def serve(root: Path, port: int = 0) -> Iterator[str]:
    """Serve ``root`` on 127.0.0.1 for the duration; yield the ``.../simple`` URL."""
    handler = functools.partial(_QuietHandler, directory=str(root))
    server = ThreadingHTTPServer(("127.0.0.1", port), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/simple"
    finally:
        server.shutdown()
        server.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, format: str, *args: object) -> None:
        pass


def _page(title: str, links: list[str]) -> str:
    body = "\n".join(links)
    head = f"<!DOCTYPE html>\n<html><head><title>{title}</title></head><body>\n"
    return f"{head}{body}\n</body></html>\n"
