"""A small client of the simple repository API (PEP 503 HTML, PEP 691 JSON): find and download."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import unquote, urljoin, urlsplit, urlunsplit

import requests
from requests.adapters import HTTPAdapter
from urllib3.util.retry import Retry

from fsnbuild.errors import WheelError

log = logging.getLogger(__name__)

_JSON = "application/vnd.pypi.simple.v1+json"
_ACCEPT = f"{_JSON}, application/vnd.pypi.simple.v1+html;q=0.2, text/html;q=0.01"
_TIMEOUT = (15, 120)  # connect, read (between bytes)
_CHUNK = 1 << 20
_local = threading.local()


def _session() -> requests.Session:
    # One session per worker thread: requests does not promise a shared Session is thread-safe.
    session: requests.Session | None = getattr(_local, "session", None)
    if session is None:
        session = requests.Session()
        retry = Retry(total=4, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504))
        session.mount("http://", HTTPAdapter(max_retries=retry))
        session.mount("https://", HTTPAdapter(max_retries=retry))
        _local.session = session
    return session


def redact(url: str) -> str:
    """``url`` without user name and password, for messages and logs."""
    parts = urlsplit(url)
    if parts.username is None and parts.password is None:
        return url
    host = parts.hostname or ""
    netloc = f"***@{host}" + (f":{parts.port}" if parts.port else "")
    return urlunsplit(parts._replace(netloc=netloc))


class _Anchors(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.base: str | None = None
        self.links: list[tuple[str, str]] = []  # (href, text)
        self._href: str | None = None
        self._text: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = dict(attrs)
        if tag == "base" and values.get("href") and self.base is None:
            self.base = values["href"]
        elif tag == "a" and values.get("href"):
            self._href, self._text = values["href"], []

    def handle_data(self, data: str) -> None:
        if self._href is not None:
            self._text.append(data)

    def handle_endtag(self, tag: str) -> None:
        if tag == "a" and self._href is not None:
            self.links.append((self._href, "".join(self._text).strip()))
            self._href = None


def _files_on_page(page_url: str, response: requests.Response) -> dict[str, str]:
    """filename -> absolute URL (fragment dropped) of every file the page lists."""
    found: dict[str, str] = {}
    if response.headers.get("Content-Type", "").split(";")[0].strip() == _JSON:
        for entry in json.loads(response.content)["files"]:
            found[entry["filename"]] = urljoin(page_url, entry["url"])
    else:
        parser = _Anchors()
        parser.feed(response.text)
        base = urljoin(page_url, parser.base) if parser.base else page_url
        for href, text in parser.links:
            url = urljoin(base, href)
            name = text or unquote(urlsplit(url).path.rsplit("/", 1)[-1])
            found[name] = url
    return {name: url.split("#", 1)[0] for name, url in found.items()}


def find_file(index_url: str, project: str, filename: str) -> str:
    """The download URL of ``filename`` on ``project``'s page of the index at ``index_url``."""
    page = f"{index_url.rstrip('/')}/{project}/"
    try:
        response = _session().get(page, headers={"Accept": _ACCEPT}, timeout=_TIMEOUT)
    except requests.RequestException as exc:
        raise WheelError(
            f"{project}: index page {redact(page)} unreachable: {exc}",
            hint="check the index URL and the network, or build offline from a wheelhouse",
        ) from None
    if response.status_code != 200:
        raise WheelError(
            f"{project}: index page {redact(page)} answered HTTP {response.status_code}",
            hint="check that the lock's index name maps to the right URL",
        )
    try:
        files = _files_on_page(page, response)
    except (ValueError, KeyError, TypeError) as exc:
        raise WheelError(f"{project}: index page {redact(page)} is malformed: {exc}") from None
    if filename not in files:
        raise WheelError(
            f"{project}: {filename} is not listed on {redact(page)} ({len(files)} files listed)",
            hint="the index no longer serves this file, or the lock names another index",
        )
    return files[filename]


def download(
    url: str,
    dest: Path,
    *,
    limit: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> int:
    """Stream ``url`` into ``dest``; return the byte count. The caller verifies the hash.

    Past ``limit`` bytes (the locked size) the download stops: a larger file cannot match.
    """
    log.debug("downloading %s", redact(url))
    try:
        with _session().get(url, stream=True, timeout=_TIMEOUT) as response:
            if response.status_code != 200:
                raise WheelError(f"{redact(url)}: HTTP {response.status_code}")
            done = 0
            with dest.open("wb") as out:
                for chunk in response.iter_content(_CHUNK):
                    out.write(chunk)
                    done += len(chunk)
                    if limit is not None and done > limit:
                        raise WheelError(
                            f"{redact(url)}: more than the {limit} bytes the lock records",
                            hint="the index serves another file under this name",
                        )
                    if on_chunk is not None:
                        on_chunk(done)
            return done
    except requests.RequestException as exc:
        raise WheelError(
            f"{redact(url)}: download failed: {exc}", hint="try again; downloads resume from cache"
        ) from None
