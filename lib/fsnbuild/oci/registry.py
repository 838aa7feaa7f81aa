"""A small OCI distribution client: pull an image by tag or digest into the blob store (every
byte checked while it streams in) and push one, uploading only the blobs a registry lacks."""

from __future__ import annotations

import base64
import json
import logging
import re
from collections.abc import Callable, Mapping
from typing import Any
from urllib.parse import urljoin, urlsplit

import requests

from fsnbuild.digest import Digest
from fsnbuild.errors import DigestMismatchError, RegistryError
from fsnbuild.oci.blobs import CHUNK, BlobStore
from fsnbuild.oci.credentials import CREDENTIALS_HINT, Credentials, docker_config_credentials
from fsnbuild.oci.image import (
    INDEX_TYPES,
    MANIFEST_TYPES,
    Descriptor,
    Image,
    load_image,
    select_platform,
)
from fsnbuild.oci.reference import MIRROR_ENV, ImageRef

log = logging.getLogger(__name__)

_ACCEPT = ", ".join((*MANIFEST_TYPES, *INDEX_TYPES))
_MAX_MANIFEST = 4 << 20
_LOOPBACK = {"127.0.0.1", "localhost", "::1"}


Body = bytes | Callable[[], Any] | None


class RegistryClient:
    """One registry host; anonymous, basic or bearer-token access, as the registry asks."""

    def __init__(
        self,
        host: str,
        *,
        credentials: Credentials | None = None,
        session: requests.Session | None = None,
        timeout: float = 60.0,
    ) -> None:
        self.host = host
        hostname = urlsplit(f"//{host}").hostname or host
        self.scheme = "http" if hostname in _LOOPBACK else "https"
        self.port = urlsplit(f"//{host}").port or (80 if self.scheme == "http" else 443)
        self.base = f"{self.scheme}://{host}"
        self.credentials = credentials or docker_config_credentials(host)
        self.session = session or requests.Session()
        self._owns_session = session is None
        self.timeout = timeout
        self._auth: dict[str, str] = {}  # scope -> Authorization header value

    def __enter__(self) -> RegistryClient:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def close(self) -> None:
        """Close the connections of a session this client made (not one it was given)."""
        if self._owns_session:
            self.session.close()

    # ------------------------------------------------------------ pulling

    def pull(self, ref: ImageRef, store: BlobStore, *, expected: Digest | None = None) -> Image:
        """Fetch ``ref`` (an index resolves to linux/amd64) into the store and return it.

        The manifest is compared with ``expected`` before any blob is fetched, so a mismatch
        leaves nothing behind; ``expected`` may name the index or the platform manifest.
        """
        repo = ref.repository
        top_bytes, top_type = self.get_manifest(repo, ref.reference, label=str(ref))
        top_digest = Digest.of_bytes(top_bytes)
        data, digest = top_bytes, top_digest
        if top_type in INDEX_TYPES:
            what = f"{self.host}/{repo}@{top_digest}"
            chosen = select_platform(_json(top_bytes, what=what), what=what)
            data, _ = self.get_manifest(repo, str(chosen.digest), label=str(ref))
            digest = chosen.digest
        if expected is not None and expected not in (top_digest, digest):
            raise DigestMismatchError(
                f"{self.host}/{repo}:{ref.reference}: expected {expected}, got {digest}",
                hint="the registry serves another image than the pinned one; nothing was kept",
            )

        what = f"{self.host}/{repo}@{digest}"
        manifest = _json(data, what=f"manifest {what}")
        blobs = [Descriptor.from_json(manifest.get("config", {}), what=f"{what} config")]
        blobs += [Descriptor.from_json(d, what=what) for d in manifest.get("layers", [])]
        for desc in blobs:
            self.fetch_blob(repo, desc.digest, store)
        store.put_bytes(data, expected=digest, what=f"manifest {what}")
        return load_image(store, digest)

    def get_manifest(
        self, repository: str, reference: str, *, label: str = ""
    ) -> tuple[bytes, str]:
        """The manifest bytes and media type; a digest reference is checked against the bytes.

        ``label`` is the image as the user named it, for messages.
        """
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        headers = {"Accept": _ACCEPT}
        with self._request("GET", url, repository, headers=headers, stream=True) as resp:
            if resp.status_code == 404:
                raise RegistryError(
                    f"registry {self.host} has no manifest {reference} for {label or repository}",
                    hint="check the repository, tag and digest; was the image pushed there?",
                )
            self._expect(resp, 200, f"manifest {repository}:{reference}")
            # Real manifests are kilobytes; registries cap them at 4 MiB.
            data = resp.raw.read(_MAX_MANIFEST + 1, decode_content=True)
        if len(data) > _MAX_MANIFEST:
            raise RegistryError(
                f"registry {self.host}: manifest {repository}:{reference} exceeds 4 MiB",
                hint="this is not an image manifest; check the reference",
            )
        if reference.startswith("sha256:"):
            actual = Digest.of_bytes(data)
            if str(actual) != reference:
                raise DigestMismatchError(
                    f"{self.host}/{repository}: manifest: expected {reference}, got {actual}",
                    hint="the registry or a proxy altered the manifest; nothing was kept",
                )
        media_type = resp.headers.get("Content-Type", "").split(";")[0].strip()
        what = f"{self.host}/{repository} manifest {reference}"
        return data, str(_json(data, what=what).get("mediaType") or media_type)

    def fetch_blob(self, repository: str, digest: Digest, store: BlobStore) -> None:
        """Stream a blob into the store, hashing it on the way; skip one already there."""
        if store.has(digest):
            return
        url = f"{self.base}/v2/{repository}/blobs/{digest}"
        with self._request("GET", url, repository, stream=True) as resp:
            if resp.status_code == 404:
                raise RegistryError(
                    f"{self.host}/{repository}: no blob {digest}",
                    hint="the registry lost a blob its manifest lists; push the image again",
                )
            self._expect(resp, 200, f"blob {digest}")
            what = f"{self.host}/{repository} blob"
            try:
                store.put_chunks(resp.iter_content(CHUNK), expected=digest, what=what)
            except requests.RequestException as exc:
                raise RegistryError(
                    f"registry {self.host}: download of {repository} blob {digest} broke off "
                    f"({_reason(exc)})",
                    hint="retry; nothing partial was kept",
                ) from None
        log.info("pulled %s from %s/%s", digest.short, self.host, repository)

    # ------------------------------------------------------------ pushing

    def push(self, image: Image, store: BlobStore, repository: str, tag: str | None) -> Digest:
        """Upload the blobs the registry lacks, then the manifest under ``tag`` (or digest)."""
        for digest in sorted(set(image.blob_digests)):
            if self.has_blob(repository, digest):
                log.info("%s/%s already has %s", self.host, repository, digest.short)
                continue
            self.upload_blob(repository, digest, store)
        return self.put_manifest(repository, tag or str(image.manifest_digest), image, store)

    def has_blob(self, repository: str, digest: Digest) -> bool:
        url = f"{self.base}/v2/{repository}/blobs/{digest}"
        resp = self._request("HEAD", url, repository, push=True)
        if resp.status_code == 404:
            return False
        self._expect(resp, 200, f"blob {digest}")
        return True

    def upload_blob(self, repository: str, digest: Digest, store: BlobStore) -> None:
        """A monolithic upload: open a session with POST, send the whole blob with PUT."""
        url = f"{self.base}/v2/{repository}/blobs/uploads/"
        resp = self._request("POST", url, repository, push=True)
        self._expect(resp, 202, f"upload of {digest}")
        location = urljoin(f"{self.base}/", resp.headers["Location"])
        path = store.path(digest)
        resp = self._request(
            "PUT",
            location,
            repository,
            push=True,
            body=lambda: path.open("rb"),
            params={"digest": str(digest)},
            headers={
                "Content-Type": "application/octet-stream",
                "Content-Length": str(store.size(digest)),
            },
        )
        if resp.status_code == 400 and "DIGEST_INVALID" in resp.text:
            raise DigestMismatchError(
                f"{self.host}/{repository} rejected blob {digest}: its bytes hash otherwise",
                hint=f"the local blob store is corrupt ({path}); build or fetch the image again",
            )
        self._expect(resp, 201, f"upload of {digest}")
        log.info("pushed %s to %s/%s", digest.short, self.host, repository)

    def put_manifest(
        self, repository: str, reference: str, image: Image, store: BlobStore
    ) -> Digest:
        data = store.read_bytes(image.manifest_digest)
        url = f"{self.base}/v2/{repository}/manifests/{reference}"
        headers = {"Content-Type": image.media_type}
        resp = self._request("PUT", url, repository, push=True, body=data, headers=headers)
        self._expect(resp, 201, f"manifest {repository}:{reference}")
        echoed = resp.headers.get("Docker-Content-Digest")
        if echoed and echoed != str(image.manifest_digest):
            raise DigestMismatchError(
                f"{self.host}/{repository}:{reference}: pushed {image.manifest_digest}, "
                f"registry stored {echoed}",
                hint="the registry rewrote the manifest; use a registry that stores it as sent",
            )
        return image.manifest_digest

    # ------------------------------------------------------------ HTTP and auth

    def _request(
        self,
        method: str,
        url: str,
        repository: str,
        *,
        push: bool = False,
        body: Body = None,
        stream: bool = False,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> requests.Response:
        scope = f"repository:{repository}:{'pull,push' if push else 'pull'}"
        resp = self._send(method, url, scope, body, stream, params, headers)
        if resp.status_code == 401:
            challenge = resp.headers.get("WWW-Authenticate", "")
            resp.close()  # keeps status and headers; frees the connection
            if self._authenticate(challenge, scope):
                resp = self._send(method, url, scope, body, stream, params, headers)
        if resp.status_code in (401, 403):
            resp.close()
            who = f"as {self.credentials.username!r}" if self.credentials else "anonymously"
            raise RegistryError(
                f"registry {self.host} refused {method} {urlsplit(url).path} "
                f"{who} (HTTP {resp.status_code})",
                hint=CREDENTIALS_HINT.format(host=self.host),
            )
        return resp

    def _send(
        self,
        method: str,
        url: str,
        scope: str,
        body: Body,
        stream: bool,
        params: Mapping[str, str] | None,
        headers: Mapping[str, str] | None,
    ) -> requests.Response:
        all_headers = dict(headers or {})
        if scope in self._auth:
            all_headers["Authorization"] = self._auth[scope]
        data = body() if callable(body) else body
        try:
            return self.session.request(
                method,
                url,
                data=data,
                params=params,
                headers=all_headers,
                stream=stream,
                timeout=self.timeout,
            )
        except requests.ConnectionError as exc:
            raise RegistryError(
                f"cannot reach registry {self.host} (port {self.port}, {self.scheme}): "
                f"{_reason(exc)}",
                hint=f"check that the registry runs and the host is right; to pull through "
                f"another registry set {MIRROR_ENV}=HOST[:PORT]",
            ) from None
        except requests.Timeout:
            raise RegistryError(
                f"registry {self.host} (port {self.port}) did not answer in {self.timeout:.0f} s",
                hint="retry later or use a registry mirror",
            ) from None
        finally:
            if data is not None and hasattr(data, "close"):
                data.close()

    def _authenticate(self, challenge: str, scope: str) -> bool:
        """Answer a 401 challenge; False when there is nothing to answer it with."""
        scheme, _, rest = challenge.partition(" ")
        params = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if scheme.lower() == "basic":
            if self.credentials is None:
                return False
            pair = f"{self.credentials.username}:{self.credentials.password}".encode()
            self._auth[scope] = "Basic " + base64.b64encode(pair).decode()
            return True
        if scheme.lower() == "bearer" and "realm" in params:
            self._auth[scope] = "Bearer " + self._fetch_token(params, scope)
            return True
        raise RegistryError(
            f"registry {self.host} asks for unsupported authentication {challenge!r}",
            hint="fsnbuild speaks basic and bearer-token authentication",
        )

    def _fetch_token(self, challenge: Mapping[str, str], scope: str) -> str:
        query = {"scope": challenge.get("scope") or scope}
        if "service" in challenge:
            query["service"] = challenge["service"]
        auth = (self.credentials.username, self.credentials.password) if self.credentials else None
        realm = challenge["realm"]
        try:
            resp = self.session.get(realm, params=query, auth=auth, timeout=self.timeout)
        except requests.RequestException as exc:
            raise RegistryError(
                f"cannot reach the token service {realm} of registry {self.host}: {_reason(exc)}",
                hint="the registry's token service must be reachable from here",
            ) from None
        if resp.status_code in (401, 403):
            raise RegistryError(
                f"token service {realm} of registry {self.host} refused "
                f"{'the credentials' if auth else 'anonymous access'} (HTTP {resp.status_code})",
                hint=CREDENTIALS_HINT.format(host=self.host),
            )
        self._expect(resp, 200, f"token from {realm}")
        payload = resp.json()
        token = payload.get("token") or payload.get("access_token")
        if not isinstance(token, str) or not token:
            raise RegistryError(f"token service {realm} returned no token", hint="check its setup")
        return token

    def _expect(self, resp: requests.Response, status: int, what: str) -> None:
        if resp.status_code != status:
            raise RegistryError(
                f"registry {self.host}: {what}: HTTP {resp.status_code} "
                f"for {resp.request.method} {urlsplit(resp.url).path}: {resp.text[:300]}",
                hint="see the registry's log for the cause",
            )


def _json(data: bytes, *, what: str) -> dict[str, Any]:
    try:
        value = json.loads(data)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise RegistryError(
            f"{what} is not JSON ({exc})", hint="is this an OCI registry?"
        ) from None
    if not isinstance(value, dict):
        raise RegistryError(f"{what} is not a JSON object", hint="is this an OCI registry?")
    return value


def _reason(exc: Exception) -> str:
    text = str(exc)
    for known in ("Connection refused", "Name or service not known", "timed out", "No route"):
        if known in text:
            return known.lower()
    return text[:200]


def client_for(
    ref: ImageRef,
    *,
    credentials: Credentials | None = None,
    mirror: str | None = None,
    session: requests.Session | None = None,
) -> RegistryClient:
    """A client for the registry serving ``ref``: the mirror when one is given, else its own."""
    host = mirror or ref.registry
    if host is None:
        raise RegistryError(
            f"image {ref} names no registry host",
            hint=f"write docker://HOST[:PORT]/{ref.repository}, or set {MIRROR_ENV}=HOST[:PORT]",
        )
    return RegistryClient(host, credentials=credentials, session=session)
