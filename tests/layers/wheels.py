"""Test helpers: wheels built in the test (hostile ones too), and a simple index on 127.0.0.1."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import stat
import threading
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from packaging.utils import canonicalize_name

from fsnbuild.digest import Digest
from fsnbuild.lock.model import LockedPackage, LockedWheel


def _record_hash(data: bytes) -> str:
    return "sha256=" + base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()


def build_wheel(
    folder: Path,
    name: str,
    version: str = "1.0",
    *,
    files: dict[str, bytes] | None = None,
    tag: str = "py3-none-any",
    entry_points: str | None = None,
    executable: frozenset[str] = frozenset(),
    symlinks: dict[str, str] | None = None,
    corrupt_record: frozenset[str] = frozenset(),
    requires: tuple[str, ...] = (),
) -> Path:
    """A wheel with METADATA, WHEEL and a true RECORD (except for paths in ``corrupt_record``).

    ``files`` names may be anything, ``..`` and absolute paths included: the point is to
    build the wheels a hostile index could serve.
    """
    dist = name.replace("-", "_")
    info = f"{dist}-{version}.dist-info"
    contents = dict(files if files is not None else {f"{dist}/__init__.py": b"X = 1\n"})
    requirements = "".join(f"Requires-Dist: {r}\n" for r in requires)
    contents[f"{info}/METADATA"] = (
        f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n{requirements}".encode()
    )
    contents[f"{info}/WHEEL"] = (
        f"Wheel-Version: 1.0\nGenerator: test\nRoot-Is-Purelib: true\nTag: {tag}\n".encode()
    )
    if entry_points is not None:
        contents[f"{info}/entry_points.txt"] = entry_points.encode()
    links = symlinks or {}
    rows = []
    for path, data in contents.items():
        digest = _record_hash(b"not these bytes" if path in corrupt_record else data)
        rows.append(f"{path},{digest},{len(data)}")
    for path, target in links.items():
        rows.append(f"{path},{_record_hash(target.encode())},{len(target)}")
    rows.append(f"{info}/RECORD,,")
    contents[f"{info}/RECORD"] = ("\n".join(rows) + "\n").encode()

    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{dist}-{version}-{tag}.whl"
    with zipfile.ZipFile(out, "w") as archive:
        for path, data in contents.items():
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            mode = 0o755 if path in executable else 0o644
            entry.external_attr = (stat.S_IFREG | mode) << 16
            archive.writestr(entry, data)
        for path, target in links.items():
            entry = zipfile.ZipInfo(path, date_time=(2020, 1, 1, 0, 0, 0))
            entry.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(entry, target)
    return out


def locked(wheel: Path, *, index: str = "local", version: str | None = None) -> LockedPackage:
    """The lock entry a resolver would write for ``wheel``: true name, size and sha256."""
    dist, ver = wheel.name.split("-")[:2]
    return LockedPackage(
        name=canonicalize_name(dist),
        version=version or ver,
        index=index,
        wheels=(LockedWheel(wheel.name, Digest.of_file(wheel), wheel.stat().st_size),),
    )


@dataclass
class LocalIndex:
    """A simple index on 127.0.0.1 serving ``files``; ``requests`` logs every path asked for."""

    url: str
    files: dict[str, bytes] = field(default_factory=dict)  # filename -> bytes served
    requests: list[str] = field(default_factory=list)
    json_pages: bool = False

    def add(self, wheel: Path, served: bytes | None = None) -> None:
        self.files[wheel.name] = wheel.read_bytes() if served is None else served


def _handler(index: LocalIndex) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            index.requests.append(self.path)
            parts = [p for p in self.path.split("/") if p]
            if len(parts) == 3 and parts[0] == "files" and parts[2] in index.files:
                self._send(index.files[parts[2]], "application/octet-stream")
            elif len(parts) == 2 and parts[0] == "simple":
                self._page(parts[1])
            else:
                self.send_error(404)

        def _page(self, project: str) -> None:
            names = sorted(n for n in index.files if canonicalize_name(n.split("-")[0]) == project)
            if not names:
                self.send_error(404)
            elif index.json_pages and "json" in self.headers.get("Accept", ""):
                files = [{"filename": n, "url": f"../../files/x/{n}", "hashes": {}} for n in names]
                body = json.dumps({"meta": {"api-version": "1.0"}, "name": project, "files": files})
                self._send(body.encode(), "application/vnd.pypi.simple.v1+json")
            else:
                links = "".join(f'<a href="/files/x/{n}#sha256=0">{n}</a><br/>' for n in names)
                self._send(f"<html><body>{links}</body></html>".encode(), "text/html")

        def _send(self, body: bytes, kind: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", kind)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    return Handler


@contextlib.contextmanager
def serve_index() -> Iterator[LocalIndex]:
    index = LocalIndex(url="")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(index))
    index.url = f"http://127.0.0.1:{server.server_address[1]}/simple"
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    try:
        yield index
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
