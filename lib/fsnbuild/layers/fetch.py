"""Get each locked package's wheel for the target: from the cache, a wheelhouse, or its index.

Every byte is checked against the lock's sha256 before it enters the cache; nothing downloaded
is ever run.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Iterable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

from packaging.tags import Tag, compatible_tags, cpython_tags
from packaging.utils import InvalidWheelFilename, NormalizedName, parse_wheel_filename

from fsnbuild.digest import Digest
from fsnbuild.errors import FsnbuildError, WheelError
from fsnbuild.layers import index as simple_index
from fsnbuild.lock.model import Lock, LockedPackage, LockedWheel

log = logging.getLogger(__name__)

_CHUNK = 1 << 20
# manylinux's legacy names and the glibc they stand for.
_LEGACY_MANYLINUX = {17: "manylinux2014", 12: "manylinux2010", 5: "manylinux1"}


@dataclass(frozen=True)
class FetchProgress:
    """One step of one wheel; callbacks get these from worker threads."""

    package: NormalizedName
    filename: str
    source: str  # "cache", "wheelhouse" or "index"
    done: int  # bytes so far
    total: int | None  # bytes expected, when known
    finished: bool


ProgressCallback = Callable[[FetchProgress], None]


def target_tags(python: str = "3.11", glibc: str = "2.28", arch: str = "x86_64") -> list[Tag]:
    """The wheel tags CPython ``python`` on manylinux ``glibc``/``arch`` accepts, best first."""
    major, minor = (int(part) for part in python.split("."))
    glibc_major, glibc_minor = (int(part) for part in glibc.split("."))
    if glibc_major != 2:
        raise FsnbuildError(f"glibc {glibc}: only glibc 2.x is known to manylinux")
    platforms: list[str] = []
    for version in range(glibc_minor, 4, -1):
        platforms.append(f"manylinux_2_{version}_{arch}")
        if version in _LEGACY_MANYLINUX:
            platforms.append(f"{_LEGACY_MANYLINUX[version]}_{arch}")
    interpreter = f"cp{major}{minor}"
    return [
        *cpython_tags((major, minor), abis=[interpreter], platforms=platforms),
        *compatible_tags((major, minor), interpreter=interpreter, platforms=platforms),
    ]


def best_wheel(package: LockedPackage, tags: Sequence[Tag]) -> LockedWheel:
    """The lock's wheel for ``package`` that ranks best for ``tags``; WheelError if none fits."""
    rank = {tag: position for position, tag in enumerate(tags)}
    best: tuple[int, str, LockedWheel] | None = None
    for wheel in package.wheels:
        try:
            _, _, _, wheel_tags = parse_wheel_filename(wheel.filename)
        except InvalidWheelFilename:
            log.warning("%s: %r is not a wheel file name; skipped", package.pin, wheel.filename)
            continue
        positions = [rank[tag] for tag in wheel_tags if tag in rank]
        if positions and (best is None or (min(positions), wheel.filename) < best[:2]):
            best = (min(positions), wheel.filename, wheel)
    if best is None:
        names = ", ".join(w.filename for w in package.wheels) or "none"
        raise WheelError(
            f"{package.pin}: no locked wheel fits the target (locked: {names})",
            hint="re-lock for the target platform, or check the target's python/glibc/arch",
        )
    return best[2]


class WheelCache:
    """Wheels stored by content: ``root/sha256/<hex>/<filename>``, re-verified on every read."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def path_for(self, wheel: LockedWheel) -> Path:
        return self.root / wheel.sha256.algorithm / wheel.sha256.hex / wheel.filename

    def get(self, wheel: LockedWheel) -> Path | None:
        """The cached file for ``wheel``, or None; a file with altered bytes is deleted."""
        path = self.path_for(wheel)
        if not path.is_file():
            return None
        actual = Digest.of_file(path)
        if actual != wheel.sha256:
            log.warning(
                "cached %s was altered (expected %s, found %s); deleted, fetching again",
                path,
                wheel.sha256,
                actual,
            )
            path.unlink(missing_ok=True)
            return None
        return path

    def add_file(self, wheel: LockedWheel, source: Path, *, what: str) -> Path:
        """Copy ``source`` into the cache after checking its hash; WheelError on mismatch."""
        with self.staging(wheel) as tmp, source.open("rb") as src, tmp.open("wb") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)
        return self.commit(wheel, tmp, what=what)

    def staging(self, wheel: LockedWheel) -> _Staging:
        return _Staging(self.path_for(wheel).parent, wheel.filename)

    def commit(self, wheel: LockedWheel, tmp: Path, *, what: str) -> Path:
        """Rename the verified temp file ``tmp`` into place, or delete it and raise."""
        actual = Digest.of_file(tmp)
        if actual != wheel.sha256:
            tmp.unlink(missing_ok=True)
            raise WheelError(
                f"{what}: {wheel.filename} has sha256 {actual.hex}, the lock expects "
                f"{wheel.sha256.hex}",
                hint="the file changed since locking or was corrupted; nothing was kept",
            )
        target = self.path_for(wheel)
        tmp.chmod(0o644)
        os.replace(tmp, target)
        return target


class _Staging:
    """A temporary file next to the cache entry, removed unless it was renamed into place."""

    def __init__(self, folder: Path, filename: str) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=f".{filename}.", suffix=".part", dir=folder)
        os.close(fd)
        self.path = Path(name)

    def __enter__(self) -> Path:
        return self.path

    def __exit__(self, kind: object, exc: object, tb: object) -> None:
        if exc is not None:
            self.path.unlink(missing_ok=True)


def _get_one(
    package: LockedPackage,
    wheel: LockedWheel,
    cache: WheelCache,
    *,
    index_urls: Mapping[str, str],
    wheelhouse: Path | None,
    offline: bool,
    progress: ProgressCallback | None,
) -> Path:
    def report(source: str, done: int, finished: bool) -> None:
        if progress is not None:
            progress(
                FetchProgress(package.name, wheel.filename, source, done, wheel.size, finished)
            )

    cached = cache.get(wheel)
    if cached is not None:
        report("cache", wheel.size or 0, True)
        return cached

    if wheelhouse is not None and (wheelhouse / wheel.filename).is_file():
        path = cache.add_file(
            wheel, wheelhouse / wheel.filename, what=f"{package.pin} (wheelhouse)"
        )
        report("wheelhouse", wheel.size or 0, True)
        return path

    if offline:
        where = f"wheelhouse {wheelhouse}" if wheelhouse else "no wheelhouse given"
        raise WheelError(
            f"{package.pin}: {wheel.filename} is neither in the cache nor in the wheelhouse "
            f"({where}), and fetching is offline",
            hint="fill the wheelhouse on a connected machine with `fsnbuild wheelhouse`",
        )

    base = index_urls.get(package.index)
    if base is None:
        raise WheelError(
            f"{package.pin}: no URL for index {package.index!r}",
            hint=f"give it, e.g. --index {package.index}=URL",
        )
    url = simple_index.find_file(base, package.name, wheel.filename)
    with cache.staging(wheel) as tmp:
        simple_index.download(
            url, tmp, limit=wheel.size, on_chunk=lambda done: report("index", done, False)
        )
    path = cache.commit(wheel, tmp, what=package.pin)
    report("index", wheel.size or path.stat().st_size, True)
    return path


def fetch_wheels(
    packages: Iterable[LockedPackage],
    cache: WheelCache,
    *,
    index_urls: Mapping[str, str],
    target_tags: Sequence[Tag],
    wheelhouse: Path | None = None,
    offline: bool = False,
    jobs: int = 8,
    progress: ProgressCallback | None = None,
) -> dict[NormalizedName, Path]:
    """The verified cache path of each package's best wheel for ``target_tags``.

    Tries the cache, then ``wheelhouse``, then (unless ``offline``) the package's index. Every
    wheel is attempted; failures are raised together as one WheelError.
    """
    chosen = [(package, best_wheel(package, target_tags)) for package in packages]
    results: dict[NormalizedName, Path] = {}
    errors: list[FsnbuildError] = []
    with ThreadPoolExecutor(max_workers=max(1, jobs), thread_name_prefix="fetch") as pool:
        futures = {
            package.name: pool.submit(
                _get_one,
                package,
                wheel,
                cache,
                index_urls=index_urls,
                wheelhouse=wheelhouse,
                offline=offline,
                progress=progress,
            )
            for package, wheel in chosen
        }
        for name, future in sorted(futures.items()):
            try:
                results[name] = future.result()
            except FsnbuildError as exc:
                errors.append(exc)
    if len(errors) == 1:
        raise errors[0]
    if errors:
        raise WheelError(
            f"{len(errors)} wheels could not be fetched: " + "; ".join(e.message for e in errors),
            hint=errors[0].hint,
        )
    return dict(sorted(results.items()))


def fill_wheelhouse(
    lock: Lock,
    dest: Path,
    cache: WheelCache,
    *,
    index_urls: Mapping[str, str],
    target_tags: Sequence[Tag],
    offline: bool = False,
    jobs: int = 8,
    progress: ProgressCallback | None = None,
) -> list[Path]:
    """Put the target's wheel of every package of ``lock`` into ``dest``, for air-gapped builds."""
    fetched = fetch_wheels(
        lock.packages,
        cache,
        index_urls=index_urls,
        target_tags=target_tags,
        offline=offline,
        jobs=jobs,
        progress=progress,
    )
    dest.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for path in fetched.values():
        target = dest / path.name
        # The cache folder is named by the verified sha256 of the file inside it.
        if not (target.is_file() and Digest.of_file(target).hex == path.parent.name):
            fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", dir=dest)
            os.close(fd)
            try:
                shutil.copyfile(path, tmp_name)
                os.chmod(tmp_name, 0o644)
                os.replace(tmp_name, target)
            except BaseException:
                Path(tmp_name).unlink(missing_ok=True)
                raise
        written.append(target)
    return written
