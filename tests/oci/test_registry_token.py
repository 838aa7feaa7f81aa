"""Bearer-token auth against the reference registry configured for real token auth: a small
token service here signs RS256 JWTs with a generated key whose certificate the registry trusts."""

from __future__ import annotations

import base64
import json
import shutil
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest

from fsnbuild.errors import RegistryError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.credentials import Credentials
from fsnbuild.oci.image import build_image
from fsnbuild.oci.sources import fetch_image, parse_source, push_image

from .conftest import RegistryServer, run_registry

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(shutil.which("openssl") is None, reason="openssl is not installed"),
]
SERVICE, ISSUER = "fsnbuild-test-registry", "fsnbuild-test-issuer"
USER, PASSWORD = "token-user", "token-pass"


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


@dataclass
class TokenService:
    """Issues tokens for USER/PASSWORD only, granting exactly the requested scope."""

    key: Path
    cert_der: bytes
    requests: list[dict[str, list[str]]] = field(default_factory=list)

    def sign(self, scopes: list[str]) -> str:
        access = []
        for scope in scopes:
            kind, name, actions = scope.split(":")
            access.append({"type": kind, "name": name, "actions": actions.split(",")})
        now = int(time.time())
        header = {"alg": "RS256", "typ": "JWT", "x5c": [base64.b64encode(self.cert_der).decode()]}
        claims = {
            "iss": ISSUER,
            "sub": USER,
            "aud": SERVICE,
            "iat": now,
            "nbf": now - 10,
            "exp": now + 300,
            "jti": f"token-{len(self.requests)}",
            "access": access,
        }
        signing_input = (
            f"{b64url(json.dumps(header).encode())}.{b64url(json.dumps(claims).encode())}"
        )
        signature = subprocess.run(
            ["openssl", "dgst", "-sha256", "-sign", str(self.key)],
            input=signing_input.encode(),
            capture_output=True,
            check=True,
        ).stdout
        return f"{signing_input}.{b64url(signature)}"


def serve_tokens(service: TokenService) -> ThreadingHTTPServer:
    expected_auth = "Basic " + base64.b64encode(f"{USER}:{PASSWORD}".encode()).decode()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            query = parse_qs(urlsplit(self.path).query)
            service.requests.append(query)
            if self.headers.get("Authorization") != expected_auth:
                self.send_response(401)
                self.end_headers()
                return
            token = service.sign(query.get("scope", []))
            body = json.dumps({"token": token, "expires_in": 300}).encode()
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def token_setup(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[tuple[RegistryServer, TokenService]]:
    workdir = tmp_path_factory.mktemp("token-registry")
    key, cert = workdir / "key.pem", workdir / "cert.pem"
    subprocess.run(
        [
            "openssl",
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-keyout",
            str(key),
            "-out",
            str(cert),
            "-days",
            "2",
            "-subj",
            "/CN=fsnbuild-test-token",
        ],
        check=True,
        capture_output=True,
    )
    der = subprocess.run(
        ["openssl", "x509", "-in", str(cert), "-outform", "DER"], check=True, capture_output=True
    ).stdout
    service = TokenService(key, der)
    tokens = serve_tokens(service)
    auth = {
        "token": {
            "realm": f"http://127.0.0.1:{tokens.server_address[1]}/token",
            "service": SERVICE,
            "issuer": ISSUER,
            "rootcertbundle": str(cert),
        }
    }
    try:
        with run_registry(workdir, auth) as registry:
            yield registry, service
    finally:
        tokens.shutdown()
        tokens.server_close()


def test_bearer_token_dance_pushes_and_pulls(tmp_path: Path, token_setup, make_layer) -> None:
    registry, service = token_setup
    store = BlobStore(tmp_path / "store")
    image = build_image(store, base=None, layers=[make_layer({"t": b"token"})], created_epoch=0)
    creds = Credentials(USER, PASSWORD)
    ref = f"{registry.host}/fsnbuild/tokened:1"
    before = len(service.requests)
    push_image(image, store, ref, credentials=creds)
    pulled = fetch_image(
        parse_source(f"docker://{ref}"),
        image.manifest_digest,
        BlobStore(tmp_path / "f"),
        credentials=creds,
    )
    assert pulled.manifest_digest == image.manifest_digest
    asked = [q for q in service.requests[before:]]
    assert all(q["service"] == [SERVICE] for q in asked)
    # The registry words the scope of its challenge; the order of actions varies.
    scopes = {
        (s.rsplit(":", 1)[0], frozenset(s.rsplit(":", 1)[1].split(",")))
        for q in asked
        for s in q["scope"]
    }
    assert ("repository:fsnbuild/tokened", frozenset({"pull", "push"})) in scopes
    assert ("repository:fsnbuild/tokened", frozenset({"pull"})) in scopes


def test_bearer_token_refused_without_credentials_says_how_to_log_in(
    tmp_path: Path, token_setup, monkeypatch: pytest.MonkeyPatch
) -> None:
    registry, _ = token_setup
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path))
    with pytest.raises(RegistryError) as info:
        fetch_image(
            parse_source(f"docker://{registry.host}/fsnbuild/tokened:1"),
            None,
            BlobStore(tmp_path / "s"),
        )
    assert "token service" in str(info.value) and "anonymous" in str(info.value)
    assert registry.host in str(info.value)
    assert info.value.hint is not None and "docker login" in info.value.hint
