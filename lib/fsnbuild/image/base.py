"""What the install needs to know about a base image, read from its layers (never by running
it): the virtual environment, its owner, its Python version, its C library, its packages."""

from __future__ import annotations

import json
import re
import tarfile
from dataclasses import dataclass
from email.parser import HeaderParser
from pathlib import Path

from packaging.utils import NormalizedName, canonicalize_name

from fsnbuild.config import Target
from fsnbuild.errors import ImageError
from fsnbuild.oci.blobs import BlobStore
from fsnbuild.oci.image import Image


@dataclass(frozen=True)
class BaseFacts:
    venv: str  # "/python/venv"
    python: str  # "3.11"
    owner: tuple[int, int]
    libc: str  # "glibc" or "musl"
    dists: dict[NormalizedName, str]

    def to_json(self) -> str:
        return json.dumps(
            {
                "venv": self.venv,
                "python": self.python,
                "owner": list(self.owner),
                "libc": self.libc,
                "dists": dict(sorted(self.dists.items())),
            },
            sort_keys=True,
        )

    @classmethod
    def from_json(cls, text: str) -> BaseFacts:
        raw = json.loads(text)
        dists = {canonicalize_name(k): v for k, v in raw["dists"].items()}
        return cls(
            raw["venv"], raw["python"], (raw["owner"][0], raw["owner"][1]), raw["libc"], dists
        )


def inspect_base(image: Image, store: BlobStore, cache_dir: Path) -> BaseFacts:
    """Facts of ``image``, computed once per manifest digest and cached by it."""
    cached = cache_dir / f"{image.manifest_digest.hex}.json"
    try:
        return BaseFacts.from_json(cached.read_text())
    except FileNotFoundError:
        pass
    except (ValueError, KeyError, TypeError, IndexError):
        cached.unlink()  # damaged: scan the base again
    facts = _scan(image, store)
    cache_dir.mkdir(parents=True, exist_ok=True)
    tmp = cached.with_suffix(".tmp")
    tmp.write_text(facts.to_json())
    tmp.replace(cached)
    return facts


def check_target(facts: BaseFacts, target: Target, image_name: str) -> None:
    """The base must run what the lock was resolved for; fail before any download otherwise."""
    if facts.libc != target.libc:
        raise ImageError(
            f"base {image_name} uses {facts.libc}, but the locks target {target.libc} "
            f"({target.manylinux_tag} wheels do not run on it)",
            hint="pin a glibc base (Flower's Ubuntu tags, e.g. 1.25.0-py3.11-ubuntu24.04)",
        )
    if facts.python != target.python:
        raise ImageError(
            f"base {image_name} has Python {facts.python} in {facts.venv}, "
            f"but the locks target Python {target.python}",
            hint="set [target] python to the base's version and re-lock, or pick another base",
        )


def _venv_from_config(image: Image) -> str | None:
    env = dict(e.partition("=")[::2] for e in image.config.get("config", {}).get("Env") or [])
    if env.get("VIRTUAL_ENV"):
        return str(env["VIRTUAL_ENV"]).rstrip("/")
    for entry in env.get("PATH", "").split(":"):
        if entry.endswith("/bin") and "venv" in entry:
            return str(entry[: -len("/bin")])
    return None


def _scan(image: Image, store: BlobStore) -> BaseFacts:
    venv = _venv_from_config(image)
    files: dict[str, bytes] = {}
    owners: dict[str, tuple[int, int]] = {}
    libc = None
    dist_pattern = re.compile(r"lib/python3\.\d+/site-packages/[^/]+\.dist-info/METADATA$")
    for layer in image.layers:
        with (
            store.path(layer.digest).open("rb") as raw,
            tarfile.open(fileobj=raw, mode="r|*") as tar,
        ):
            for member in tar:
                name = member.name.lstrip("./").lstrip("/")
                base = name.rsplit("/", 1)[-1]
                if base.startswith(".wh."):
                    hidden = name.rsplit("/", 1)[0] + "/" + base[4:] if "/" in name else base[4:]
                    files = {k: v for k, v in files.items() if not k.startswith(hidden)}
                    continue
                if re.search(r"(^|/)ld-musl-[^/]+\.so\.1$", name):
                    libc = "musl"
                elif re.search(r"(^|/)libc\.so\.6$", name) and libc is None:
                    libc = "glibc"
                wanted = name.endswith("pyvenv.cfg") or dist_pattern.search(name)
                if wanted and member.isfile():
                    handle = tar.extractfile(member)
                    files[name] = handle.read() if handle else b""
                if member.isdir():
                    owners[name.rstrip("/")] = (member.uid, member.gid)
    if venv is None:
        cfgs = sorted(k for k in files if k.endswith("pyvenv.cfg"))
        if not cfgs:
            raise ImageError(
                f"base {image.manifest_digest} has no Python virtual environment",
                hint="fsnbuild installs into the base's venv (VIRTUAL_ENV or a pyvenv.cfg)",
            )
        venv = "/" + cfgs[0].rsplit("/", 1)[0]
    rel = venv.lstrip("/")
    cfg = files.get(f"{rel}/pyvenv.cfg", b"").decode()
    match = re.search(r"^version(?:_info)?\s*=\s*(\d+)\.(\d+)", cfg, re.M)
    if not match:
        raise ImageError(
            f"base {image.manifest_digest}: {venv}/pyvenv.cfg names no Python version",
            hint="is VIRTUAL_ENV right in the base's config?",
        )
    python = f"{match[1]}.{match[2]}"
    dists: dict[NormalizedName, str] = {}
    prefix = f"{rel}/lib/python{python}/site-packages/"
    for name, data in sorted(files.items()):
        if name.startswith(prefix) and name.endswith("METADATA"):
            headers = HeaderParser().parsestr(data.decode("utf-8", "replace"))
            if headers.get("Name") and headers.get("Version"):
                dists[canonicalize_name(headers["Name"])] = headers["Version"]
    return BaseFacts(venv, python, owners.get(rel, (0, 0)), libc or "unknown", dists)
