"""``fsnbuild lock`` and ``fsnbuild lock --check``: resolve, enforce routing, write atomically,
and tell what changed."""

from __future__ import annotations

import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from packaging.utils import canonicalize_name
from packaging.version import Version

from fsnbuild.config import Project, Variant
from fsnbuild.errors import ConfigError, LockError, StaleLockError
from fsnbuild.fsutil import write_text_atomic
from fsnbuild.lock import fingerprint
from fsnbuild.lock.backends import BACKENDS, Request, Resolved, resolve, resolver_version
from fsnbuild.lock.indexes import IndexUrls, env_var, resolve_index_urls
from fsnbuild.lock.model import Lock, read_lock_toml
from fsnbuild.lock.render import Header, pylock_text, requirements_text

log = logging.getLogger(__name__)
BASE = fingerprint.BASE_LOCK


@dataclass(frozen=True)
class Change:
    added: tuple[str, ...] = ()
    removed: tuple[str, ...] = ()
    upgraded: tuple[str, ...] = ()
    downgraded: tuple[str, ...] = ()


@dataclass(frozen=True)
class LockReport:
    label: str
    path: Path
    count: int
    change: Change
    written: bool


@dataclass(frozen=True)
class CheckResult:
    label: str
    path: Path
    problem: str | None  # None: fresh
    changed: tuple[str, ...] = field(default=())
    # Set when the lock cannot be made on this machine at all (a routed index has no address):
    # reported, but not a failure of the check, since no input of the locks went stale.
    blocked: str | None = None


def lock_paths(project: Project, label: str) -> tuple[Path, Path]:
    return project.locks_dir / f"{label}.txt", project.locks_dir / f"{label}.pylock.toml"


def select_variants(project: Project, names: Sequence[str]) -> list[Variant]:
    for name in names:
        if name not in project.variants:
            raise ConfigError(
                f"unknown variant '{name}'",
                hint=f"variants in {project.path.name}: {', '.join(sorted(project.variants))}",
            )
    return [project.variants[n] for n in dict.fromkeys(names or sorted(project.variants))]


def lock(
    project: Project,
    *,
    variants: Sequence[str] = (),
    backend: str = "uv",
    upgrade: bool = False,
    upgrade_packages: Sequence[str] = (),
    index_overrides: Mapping[str, str] | None = None,
    on_start: Callable[[str], None] | None = None,
) -> list[LockReport]:
    """Lock the base and the selected variants (all by default); return what changed."""
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown backend '{backend}'", hint=f"choose one of {', '.join(BACKENDS)}"
        )
    selected = select_variants(project, variants)
    for package in upgrade_packages:
        if not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?", package):
            raise ConfigError(
                f"--upgrade-package {package!r} is not a package name",
                hint="give a bare name such as pandas; versions come from variants.toml",
            )
    urls = resolve_index_urls(project, index_overrides or {})
    resolver = resolver_version(backend)
    reports = [
        _lock_one(project, None, backend, resolver, urls, upgrade, upgrade_packages, on_start)
    ]
    for variant in selected:
        reports.append(
            _lock_one(
                project, variant, backend, resolver, urls, upgrade, upgrade_packages, on_start
            )
        )
    return reports


def _lock_one(
    project: Project,
    variant: Variant | None,
    backend: str,
    resolver: str,
    urls: IndexUrls,
    upgrade: bool,
    upgrade_packages: Sequence[str],
    on_start: Callable[[str], None] | None,
) -> LockReport:
    label = variant.name if variant else BASE
    txt_path, pylock_path = lock_paths(project, label)
    if on_start:
        on_start(label)
    base_lock = None if variant is None else Lock.read(lock_paths(project, BASE)[1])
    request = Request(
        label=label,
        requirements=tuple(project.base.provides) + (variant.packages if variant else ()),
        routes=variant.routes if variant else (),
        constraints=tuple(p.pin for p in base_lock.packages) if base_lock else (),
        preferences=txt_path,
        upgrade=upgrade,
        upgrade_packages=tuple(upgrade_packages),
        target=project.target.describe(),
    )
    packages = resolve(backend, request, project, urls)
    _enforce_routing(label, variant, packages, urls)
    parts = fingerprint.parts(
        project, variant, resolver, base_lock.fingerprint if base_lock else None
    )
    header = Header(label, backend, resolver, project.target, fingerprint.combine(parts), parts)
    previous = Lock.read(pylock_path) if pylock_path.exists() else None
    txt, pylock = requirements_text(header, packages), pylock_text(header, packages)
    written = not (
        txt_path.exists() and txt_path.read_text() == txt and pylock_path.read_text() == pylock
    )
    if written:
        # Render both before writing either; each write is a rename, so an interrupted lock
        # leaves the previous files whole.
        write_text_atomic(pylock_path, pylock)
        write_text_atomic(txt_path, txt)
    return LockReport(label, txt_path, len(packages), _diff(previous, packages), written)


def _enforce_routing(
    label: str, variant: Variant | None, packages: Sequence[Resolved], urls: IndexUrls
) -> None:
    for package in packages:
        expected = (variant.index_for(package.name) if variant else None) or urls.default
        if package.index != expected:
            raise LockError(
                f"{label}: {package.name}=={package.version} came from index '{package.index}', "
                f"but only '{expected}' may serve it",
                hint="check [variants.*] routes; the resolver must not fall back to another index",
            )


def _diff(previous: Lock | None, packages: Sequence[Resolved]) -> Change:
    if previous is None:
        return Change(added=tuple(f"{p.name}=={p.version}" for p in packages))
    old = {p.name: p.version for p in previous.packages}
    new = {p.name: p.version for p in packages}
    both = sorted(old.keys() & new.keys())
    return Change(
        added=tuple(f"{n}=={new[n]}" for n in sorted(new.keys() - old.keys())),
        removed=tuple(f"{n}=={old[n]}" for n in sorted(old.keys() - new.keys())),
        upgraded=tuple(
            f"{n} {old[n]} -> {new[n]}" for n in both if Version(new[n]) > Version(old[n])
        ),
        downgraded=tuple(
            f"{n} {old[n]} -> {new[n]}" for n in both if Version(new[n]) < Version(old[n])
        ),
    )


def check(
    project: Project, variants: Sequence[str] = (), index_overrides: Mapping[str, str] | None = None
) -> list[CheckResult]:
    """Recompute every fingerprint offline; name each stale or missing lock and what changed."""
    results = []
    base_fp = None
    for variant in [None, *select_variants(project, variants)]:
        label = variant.name if variant else BASE
        txt_path, pylock_path = lock_paths(project, label)
        if not pylock_path.exists() or not txt_path.exists():
            missing = pylock_path if not pylock_path.exists() else txt_path
            blocked = _unaddressed_index(project, variant, index_overrides or {})
            results.append(CheckResult(label, missing, "not locked", blocked=blocked))
            continue
        doc = read_lock_toml(pylock_path)
        tool = doc.get("tool", {}).get("fsnbuild", {})
        recorded = tool.get("inputs", {})
        resolver = resolver_version(tool.get("backend", "uv"))
        parts = fingerprint.parts(project, variant, resolver, base_fp)
        if variant is None:
            base_fp = tool.get("fingerprint")
        changed = tuple(
            sorted(k for k in parts.keys() | recorded.keys() if parts.get(k) != recorded.get(k))
        )
        txt_fp = _txt_fingerprint(txt_path)
        if changed:
            results.append(CheckResult(label, pylock_path, "stale", changed))
        elif txt_fp != tool.get("fingerprint"):
            results.append(CheckResult(label, txt_path, "out of step with its pylock.toml"))
        elif differ := _disagreements(txt_path, Lock.read(pylock_path)):
            problem = f"out of step with its pylock.toml ({', '.join(differ)})"
            results.append(CheckResult(label, txt_path, problem))
        else:
            results.append(CheckResult(label, pylock_path, None))
    return results


def _unaddressed_index(
    project: Project, variant: Variant | None, overrides: Mapping[str, str]
) -> str | None:
    for package, name in variant.routes if variant else ():
        index = project.indexes[name]
        if not (index.url or overrides.get(name) or os.environ.get(env_var(name))):
            return f"{package} comes only from index '{name}', which has no address here"
    return None


def require_fresh(project: Project, variant: str) -> Lock:
    """The variant's lock, refusing a missing or stale one exactly as ``lock --check`` would."""
    for result in check(project, [variant]):
        if result.problem and result.label in (BASE, variant):
            detail = f" ({', '.join(result.changed)} changed)" if result.changed else ""
            raise StaleLockError(
                f"{result.path}: no lock for '{result.label}'"
                if result.problem == "not locked"
                else f"{result.path}: the lock of '{result.label}' is {result.problem}{detail}",
                hint=f"run `fsnbuild lock --variant {variant}` and commit locks/",
            )
    return Lock.read(lock_paths(project, variant)[1])


def _disagreements(txt_path: Path, lock: Lock) -> list[str]:
    """Packages whose pin or hashes differ between the requirements file and the pylock."""
    pins: dict[str, tuple[str, set[str]]] = {}
    current = ""
    for line in txt_path.read_text(encoding="utf-8", errors="replace").splitlines():
        if match := re.match(r"^([A-Za-z0-9][A-Za-z0-9._-]*)==(\S+)", line):
            current = canonicalize_name(match[1])
            pins[current] = (match[2], set())
        elif current and (hashed := re.match(r"^\s+--hash=(sha256:[0-9a-f]{64})", line)):
            pins[current][1].add(hashed[1])
    expected: dict[str, tuple[str, set[str]]] = {
        p.name: (p.version, {str(w.sha256) for w in p.wheels}) for p in lock.packages
    }
    return sorted(n for n in pins.keys() | expected.keys() if pins.get(n) != expected.get(n))


def _txt_fingerprint(path: Path) -> str | None:
    for line in path.read_text(encoding="utf-8", errors="replace").splitlines()[:8]:
        if line.startswith("# fingerprint: "):
            return line.split(": ", 1)[1]
    raise LockError(f"{path}: has no fingerprint line", hint="re-run fsnbuild lock")
