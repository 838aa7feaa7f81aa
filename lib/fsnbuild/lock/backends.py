"""Resolver adapters: uv (default) and pip-tools, driven through their command lines.

Both produce the same typed result. Wheel files for the target always come from uv's PEP 751
output (``--format pylock.toml``), constrained to the pins the chosen resolver decided.
"""

from __future__ import annotations

import logging
import os
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import unquote, urlsplit

import tomlkit
from packaging.utils import NormalizedName, canonicalize_name

from fsnbuild.config import Project, Target
from fsnbuild.digest import Digest
from fsnbuild.errors import LockError
from fsnbuild.lock.indexes import IndexUrls, uv_binary
from fsnbuild.lock.model import LockedWheel

log = logging.getLogger(__name__)

BACKENDS = ("uv", "pip-tools")
_PROJECT_NAME = "fsnbuild-lock-input"


@dataclass(frozen=True)
class Request:
    """One resolution: requirements, routes (package -> index name), pins to keep."""

    label: str
    requirements: tuple[str, ...]
    routes: tuple[tuple[NormalizedName, str], ...]
    constraints: tuple[str, ...]  # name==version lines every result must keep
    preferences: Path | None  # previous lock: keep its pins unless upgrading
    upgrade: bool = False
    upgrade_packages: tuple[str, ...] = ()
    target: str = ""  # the target's tags, for messages


@dataclass(frozen=True)
class Resolved:
    name: NormalizedName
    version: str
    index: str
    via: tuple[str, ...]
    wheels: tuple[LockedWheel, ...] = field(default=())


def resolver_version(backend: str) -> str:
    if backend == "uv":
        out = subprocess.run([uv_binary(), "--version"], capture_output=True, text=True, check=True)
        return out.stdout.split()[0] + " " + out.stdout.split()[1]
    from importlib.metadata import version

    return f"pip-tools {version('pip-tools')}"


def resolve(backend: str, request: Request, project: Project, urls: IndexUrls) -> list[Resolved]:
    for index in sorted({index for _, index in request.routes}):
        routed = ", ".join(pkg for pkg, name in request.routes if name == index)
        urls.require(index, why=f"variant '{request.label}' needs {routed} from it")
    with tempfile.TemporaryDirectory(prefix="fsnbuild-lock-") as tmp:
        work = Path(tmp)
        if backend == "uv":
            pins = _uv_compile(work, request, project.target, urls)
        else:
            pins = _pip_compile(work, request, project.target, urls)
        wheels = _uv_pylock_wheels(work, request, project.target, urls)
    missing = sorted(set(pins) - set(wheels))
    if missing:
        raise LockError(
            f"{request.label}: no wheel for {', '.join(missing)} on {project.target.describe()}",
            hint="fsnbuild installs wheels only; pick a version that publishes one",
        )
    return [
        Resolved(name=name, version=version, index=index, via=via, wheels=wheels[name])
        for name, (version, index, via) in sorted(pins.items())
    ]


def _common_flags(target: Target, urls: IndexUrls) -> list[str]:
    default = urls.require(urls.default, why="it is the default index")
    return [
        "--no-config",
        "--python-version",
        target.python,
        "--python-platform",
        target.uv_platform,
        "--only-binary",
        ":all:",
        "--default-index",
        default,
        "--no-header",
        "--quiet",
    ]


def _write_project(work: Path, request: Request, target: Target, urls: IndexUrls) -> Path:
    doc = tomlkit.document()
    doc["project"] = {
        "name": _PROJECT_NAME,
        "version": "0",
        "requires-python": f"=={target.python}.*",
        "dependencies": list(request.requirements),
    }
    routed = sorted({index for _, index in request.routes})
    if routed:
        # explicit = true: these indexes serve only the packages routed to them; everything
        # else can never be taken from them, even when they host a newer copy.
        doc["tool"] = {
            "uv": {
                "index": [
                    {"name": name, "url": urls.require(name, why="routed"), "explicit": True}
                    for name in routed
                ],
                "sources": {pkg: {"index": index} for pkg, index in request.routes},
            }
        }
    path = work / "pyproject.toml"
    path.write_text(tomlkit.dumps(doc))
    return path


def _constraints_file(work: Path, lines: Sequence[str], name: str) -> Path:
    path = work / name
    path.write_text("".join(f"{line}\n" for line in lines))
    return path


def _uv_compile(
    work: Path, request: Request, target: Target, urls: IndexUrls
) -> dict[NormalizedName, tuple[str, str, tuple[str, ...]]]:
    project_file = _write_project(work, request, target, urls)
    out = _output_with_preferences(work, request)
    args = [
        uv_binary(),
        "pip",
        "compile",
        str(project_file),
        "-o",
        str(out),
        *_common_flags(target, urls),
        "--emit-index-annotation",
        "--generate-hashes",
    ]
    args += _request_flags(work, request)
    _run(args, work, request, urls)
    return _parse_requirements(out.read_text(), urls)


def _pip_compile(
    work: Path, request: Request, target: Target, urls: IndexUrls
) -> dict[NormalizedName, tuple[str, str, tuple[str, ...]]]:
    check_interpreter_matches(target)
    if request.routes:
        raise LockError(
            f"{request.label}: pip-tools cannot route packages to one index "
            f"({', '.join(f'{p} -> {i}' for p, i in request.routes)})",
            hint="use --backend uv for variants with routes",
        )
    infile = _constraints_file(work, request.requirements, "requirements.in")
    out = _output_with_preferences(work, request)
    args = [
        sys.executable,
        "-m",
        "piptools",
        "compile",
        str(infile),
        "-o",
        str(out),
        "--generate-hashes",
        "--no-header",
        "--allow-unsafe",
        "--strip-extras",
        "--quiet",
        "--index-url",
        urls.require(urls.default, why="it is the default index"),
        "--pip-args",
        "--only-binary :all:",
    ]
    args += _request_flags(work, request)
    # The machine's pip configuration (extra indexes, find-links, constraints) must not leak
    # into a lock: only the default index named above may answer.
    env = {k: v for k, v in os.environ.items() if not k.startswith("PIP_") or k == "PIP_CERT"}
    env["PIP_CONFIG_FILE"] = os.devnull
    _run(args, work, request, urls, env=env)
    pins = _parse_requirements(out.read_text(), urls)
    return {name: (version, urls.default, via) for name, (version, _, via) in pins.items()}


def _output_with_preferences(work: Path, request: Request) -> Path:
    """The output file, seeded with the previous lock: both resolvers keep its pins unless told
    to upgrade."""
    out = work / "resolved.txt"
    if request.preferences and request.preferences.exists() and not request.upgrade:
        out.write_text(request.preferences.read_text())
    return out


def _request_flags(work: Path, request: Request) -> list[str]:
    """Constraints and upgrade flags, spelled the same by uv and pip-compile."""
    flags = []
    if request.constraints:
        flags += ["-c", str(_constraints_file(work, request.constraints, "base-constraints.txt"))]
    if request.upgrade:
        flags.append("--upgrade")
    for package in request.upgrade_packages:
        flags += ["--upgrade-package", package]
    return flags


def check_interpreter_matches(target: Target) -> None:
    """pip-compile resolves for the interpreter running it; refuse when that is not the target."""
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    libc = platform.libc_ver()[0]
    problems = []
    if here != target.python:
        problems.append(f"Python {here} (target {target.python})")
    if sys.platform != target.os or platform.machine() != target.arch:
        problems.append(f"{sys.platform}/{platform.machine()} (target {target.os}/{target.arch})")
    if libc != target.libc:
        problems.append(f"libc {libc or 'unknown'} (target {target.libc})")
    if problems:
        raise LockError(
            "the pip-tools backend resolves for the interpreter that runs it, which is "
            + ", ".join(problems),
            hint="use --backend uv, which resolves for the target platform from any machine",
        )


def _uv_pylock_wheels(
    work: Path, request: Request, target: Target, urls: IndexUrls
) -> dict[NormalizedName, tuple[LockedWheel, ...]]:
    project_file = _write_project(work, request, target, urls)
    out = work / "pylock.toml"
    pins = work / "resolved.txt"
    args = [
        uv_binary(),
        "pip",
        "compile",
        str(project_file),
        "-o",
        str(out),
        *_common_flags(target, urls),
        "--format",
        "pylock.toml",
        "-c",
        str(pins),
    ]
    if request.constraints:
        args += ["-c", str(work / "base-constraints.txt")]
    _run(args, work, request, urls)
    doc = tomlkit.parse(out.read_text()).unwrap()
    wheels: dict[NormalizedName, tuple[LockedWheel, ...]] = {}
    for entry in doc.get("packages", []):
        files = []
        for wheel in entry.get("wheels", []):
            filename = (
                unquote(urlsplit(wheel.get("url", "")).path.rsplit("/", 1)[-1]) or wheel["name"]
            )
            files.append(
                LockedWheel(
                    filename, Digest.parse("sha256:" + wheel["hashes"]["sha256"]), wheel.get("size")
                )
            )
        if files:
            wheels[canonicalize_name(entry["name"])] = tuple(sorted(files))
    return wheels


_PIN = re.compile(r"^([A-Za-z0-9][A-Za-z0-9._-]*)(?:\[[^\]]*\])?==([^\s\\;]+)")


def _parse_requirements(
    text: str, urls: IndexUrls
) -> dict[NormalizedName, tuple[str, str, tuple[str, ...]]]:
    """Pins with their ``# via`` parents and ``# from`` index, from a compiled requirements file."""
    pins: dict[NormalizedName, tuple[str, str, tuple[str, ...]]] = {}
    current: NormalizedName | None = None
    version = index = ""
    via: list[str] = []
    in_via = False

    def flush() -> None:
        if current is not None:
            pins[current] = (version, index or urls.default, tuple(sorted(set(via))))

    for raw in text.splitlines():
        line = raw.strip()
        match = _PIN.match(raw)
        if match:
            flush()
            current, version, index, via, in_via = (
                canonicalize_name(match[1]),
                match[2],
                "",
                [],
                False,
            )
        elif line.startswith("# via"):
            rest = line[len("# via") :].strip()
            in_via = not rest
            if rest:
                via.append(_clean_via(rest))
        elif line.startswith("# from "):
            url = line[len("# from ") :].strip()
            index = urls.name_of(url) or url
            in_via = False
        elif in_via and line.startswith("#   "):
            via.append(_clean_via(line[4:].strip()))
    flush()
    return pins


def _clean_via(entry: str) -> str:
    if entry.startswith(_PROJECT_NAME) or entry.startswith("-r "):
        return "variants.toml"
    if entry.startswith("-c "):
        return "base image"
    return entry


def _run(
    args: list[str], cwd: Path, request: Request, urls: IndexUrls, env: dict[str, str] | None = None
) -> None:
    log.debug("running %s", " ".join(args))
    result = subprocess.run(args, cwd=cwd, capture_output=True, text=True, check=False, env=env)
    if result.returncode != 0:
        raise _explain_failure(result.stderr, request, urls)


def _explain_failure(stderr: str, request: Request, urls: IndexUrls) -> LockError:
    label = request.label
    text = " ".join(stderr.split()).replace(_PROJECT_NAME, f"variant '{label}'")
    for name, url in urls.urls.items():
        if (
            url
            and url in text
            and re.search(
                r"Failed to fetch|Could not connect|error sending request|refused|dns error",
                text,
            )
        ):
            found = re.search(r"/([A-Za-z0-9._-]+)/?`", text[text.find(url) :])
            what = f" while fetching {found[1]}" if found else ""
            return LockError(
                f"{label}: index '{name}' ({url}) is unreachable{what}",
                hint="check the address given with --index or the network",
            )
    missing = re.search(r"Because ([A-Za-z0-9._-]+) was not found in the package registry", text)
    if missing:
        index = dict(request.routes).get(canonicalize_name(missing[1]), urls.default)
        return LockError(
            f"{label}: package {missing[1]} was not found on index '{index}' ({urls.url(index)})",
            hint="that index must serve it: check the routes in variants.toml and the index",
        )
    nowheel = re.search(r"Wheels are required for `([A-Za-z0-9._-]+)`", text) or re.search(
        r"([A-Za-z0-9._-]+)==\S+ has no (?:usable wheels|wheels with a matching)", text
    )
    if nowheel or "building from source is disabled" in text:
        who = nowheel[1] if nowheel else "a requirement"
        return LockError(
            f"{label}: {who} has no wheel for the target ({request.target}) "
            "and fsnbuild never builds sdists",
            hint=f"pick a version of {who} that publishes a wheel for these tags",
        )
    return LockError(
        f"{label}: resolution failed: {text[:600]}",
        hint="a variant cannot change what the base image provides ([base] provides)"
        if request.constraints
        else "see the resolver's message",
    )
