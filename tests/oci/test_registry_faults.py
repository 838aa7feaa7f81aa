"""Faults the reference registry cannot be made to produce, from a tiny loopback server."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from fsnbuild.digest import Digest
from fsnbuild.errors import RegistryError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.image import OCI_CONFIG, OCI_LAYER_GZIP, OCI_MANIFEST, canonical_json
from fsnbuild.oci.sources import fetch_image, parse_source

LAYER = b"\x1f\x8b" + bytes(range(256)) * 64
CONFIG = canonical_json({"architecture": "amd64", "os": "linux", "rootfs": {"diff_ids": []}})
MANIFEST = canonical_json(
    {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {
            "mediaType": OCI_CONFIG,
            "digest": str(Digest.of_bytes(CONFIG)),
            "size": len(CONFIG),
        },
        "layers": [
            {"mediaType": OCI_LAYER_GZIP, "digest": str(Digest.of_bytes(LAYER)), "size": len(LAYER)}
        ],
    }
)


@pytest.fixture
def truncating_registry() -> Iterator[str]:
    """Serves a manifest and config, then cuts the layer download off halfway."""

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            if "/manifests/" in self.path:
                self._reply(MANIFEST, MANIFEST, OCI_MANIFEST)
            elif self.path.endswith(Digest.of_bytes(CONFIG).hex):
                self._reply(CONFIG, CONFIG, "application/octet-stream")
            else:
                self._reply(LAYER, LAYER[: len(LAYER) // 2], "application/octet-stream")

        def _reply(self, promised: bytes, sent: bytes, content_type: str) -> None:
            self.send_response(200)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(promised)))
            self.end_headers()
            self.wfile.write(sent)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_download_cut_off_midway_is_an_error_and_keeps_no_partial_blob(
    tmp_path: Path, truncating_registry: str
) -> None:
    store = BlobStore(tmp_path)
    with pytest.raises(RegistryError) as info:
        fetch_image(parse_source(f"docker://{truncating_registry}/x/y:1"), None, store)
    assert "broke off" in str(info.value)
    assert str(Digest.of_bytes(LAYER)) in str(info.value)
    assert store.digests() == [Digest.of_bytes(CONFIG)]  # only the complete, verified blob
    assert [p.name for p in (tmp_path / "blobs/sha256").iterdir()] == [Digest.of_bytes(CONFIG).hex]
