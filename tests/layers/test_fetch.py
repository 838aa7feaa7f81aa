"""fetch_wheels: best wheel for the target, cache, wheelhouse and a simple index on 127.0.0.1."""

from __future__ import annotations

import io
import logging
from pathlib import Path

import pytest
from packaging.tags import Tag
from rich.console import Console
from rich.progress import Progress

from fsnbuild.digest import Digest
from fsnbuild.errors import WheelError
from fsnbuild.layers.fetch import (
    FetchProgress,
    WheelCache,
    best_wheel,
    fetch_wheels,
    fill_wheelhouse,
    target_tags,
)
from fsnbuild.layers.progress import rich_fetch_progress
from fsnbuild.lock.model import Lock, LockedPackage, LockedWheel

from .wheels import LocalIndex, build_wheel, locked

TAGS = target_tags()


def _wheel(name: str) -> LockedWheel:
    return LockedWheel(name, Digest.of_bytes(name.encode()), 1)


def test_target_tags_rank_native_then_abi3_then_pure_python() -> None:
    tags = [str(t) for t in TAGS]
    assert tags[0] == "cp311-cp311-manylinux_2_28_x86_64"
    assert tags.index("cp311-cp311-manylinux_2_17_x86_64") < tags.index(
        "cp311-abi3-manylinux_2_28_x86_64"
    )
    assert tags.index("cp311-cp311-manylinux2014_x86_64") < tags.index(
        "cp311-abi3-manylinux2014_x86_64"
    )
    assert tags.index("cp39-abi3-manylinux_2_28_x86_64") < tags.index("py3-none-any")
    assert "cp311-cp311-manylinux_2_29_x86_64" not in tags
    assert "cp311-cp311-musllinux_1_2_x86_64" not in tags
    assert "cp312-cp312-manylinux_2_28_x86_64" not in tags
    assert not [t for t in tags if "linux_x86_64" in t and "manylinux" not in t]


def test_best_wheel_prefers_the_most_specific_compatible_wheel() -> None:
    package = LockedPackage(
        "demo",
        "1.0",
        "pypi",
        (
            _wheel("demo-1.0-py3-none-any.whl"),
            _wheel("demo-1.0-cp311-cp311-manylinux_2_31_x86_64.whl"),  # glibc too new
            _wheel("demo-1.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"),
            _wheel("demo-1.0-cp311-cp311-win_amd64.whl"),
        ),
    )
    chosen = best_wheel(package, TAGS)
    assert chosen.filename == "demo-1.0-cp311-cp311-manylinux2014_x86_64.manylinux_2_17_x86_64.whl"


def test_best_wheel_names_the_package_when_nothing_fits() -> None:
    package = LockedPackage(
        "winonly", "2.0", "pypi", (_wheel("winonly-2.0-cp311-cp311-win_amd64.whl"),)
    )
    with pytest.raises(WheelError, match=r"winonly==2\.0.*win_amd64"):
        best_wheel(package, TAGS)


@pytest.mark.parametrize("json_pages", [False, True], ids=["pep503-html", "pep691-json"])
def test_fetches_from_index_then_serves_from_cache_without_a_request(
    tmp_path: Path, local_index: LocalIndex, json_pages: bool
) -> None:
    local_index.json_pages = json_pages
    wheels = [build_wheel(tmp_path / "w", name) for name in ("alpha", "beta-pkg")]
    for wheel in wheels:
        local_index.add(wheel)
    packages = [locked(w) for w in wheels]
    cache = WheelCache(tmp_path / "cache")

    got = fetch_wheels(packages, cache, index_urls={"local": local_index.url}, target_tags=TAGS)
    assert list(got) == ["alpha", "beta-pkg"]
    for package, wheel in zip(packages, wheels, strict=True):
        path = got[package.name]
        assert path == tmp_path / "cache/sha256" / package.wheels[0].sha256.hex / wheel.name
        assert path.read_bytes() == wheel.read_bytes()
    assert sorted(local_index.requests) == sorted(
        ["/simple/alpha/", "/simple/beta-pkg/", *(f"/files/x/{w.name}" for w in wheels)]
    )

    local_index.requests.clear()
    again = fetch_wheels(packages, cache, index_urls={"local": local_index.url}, target_tags=TAGS)
    assert again == got
    assert local_index.requests == []


def test_altered_cached_wheel_is_detected_and_fetched_again(
    tmp_path: Path, local_index: LocalIndex, caplog: pytest.LogCaptureFixture
) -> None:
    wheel = build_wheel(tmp_path / "w", "gamma")
    local_index.add(wheel)
    package = locked(wheel)
    cache = WheelCache(tmp_path / "cache")
    urls = {"local": local_index.url}
    path = fetch_wheels([package], cache, index_urls=urls, target_tags=TAGS)["gamma"]

    path.write_bytes(path.read_bytes() + b"tampered")
    local_index.requests.clear()
    with caplog.at_level(logging.WARNING):
        assert cache.get(package.wheels[0]) is None
    assert "altered" in caplog.text and str(package.wheels[0].sha256) in caplog.text
    assert not path.exists()

    path.write_bytes(b"tampered again")
    refetched = fetch_wheels([package], cache, index_urls=urls, target_tags=TAGS)["gamma"]
    assert refetched.read_bytes() == wheel.read_bytes()
    assert f"/files/x/{wheel.name}" in local_index.requests


def test_served_wheel_with_wrong_bytes_is_refused_and_not_cached(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    wheel = build_wheel(tmp_path / "w", "delta")
    evil = b"PK not the locked wheel"
    local_index.add(wheel, served=evil)
    package = locked(wheel)
    cache = WheelCache(tmp_path / "cache")

    with pytest.raises(WheelError) as caught:
        fetch_wheels([package], cache, index_urls={"local": local_index.url}, target_tags=TAGS)

    message = caught.value.message
    assert "delta==1.0" in message
    assert package.wheels[0].sha256.hex in message
    assert Digest.of_bytes(evil).hex in message
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_every_failing_package_is_reported_together(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    good = build_wheel(tmp_path / "w", "fine")
    local_index.add(good)
    missing = [locked(build_wheel(tmp_path / "w", name)) for name in ("gone-one", "gone-two")]
    cache = WheelCache(tmp_path / "cache")

    with pytest.raises(WheelError) as caught:
        fetch_wheels(
            [locked(good), *missing], cache, index_urls={"local": local_index.url}, target_tags=TAGS
        )
    assert "2 wheels could not be fetched" in caught.value.message
    assert "gone-one" in caught.value.message and "gone-two" in caught.value.message
    assert "HTTP 404" in caught.value.message
    assert cache.get(locked(good).wheels[0]) is not None


def test_offline_without_the_wheel_names_package_and_wheelhouse(tmp_path: Path) -> None:
    package = locked(build_wheel(tmp_path / "w", "epsilon"))
    house = tmp_path / "house"
    house.mkdir()
    with pytest.raises(WheelError) as caught:
        fetch_wheels(
            [package],
            WheelCache(tmp_path / "cache"),
            index_urls={"local": "http://127.0.0.1:9/never"},
            target_tags=TAGS,
            wheelhouse=house,
            offline=True,
        )
    assert "epsilon==1.0" in caught.value.message
    assert str(house) in caught.value.message


def test_offline_takes_wheels_from_the_wheelhouse_and_checks_them(tmp_path: Path) -> None:
    house = tmp_path / "house"
    good = build_wheel(house, "zeta")
    bad = build_wheel(house, "eta")
    packages = [locked(good), locked(bad)]
    bad.write_bytes(b"swapped")
    cache = WheelCache(tmp_path / "cache")

    got = fetch_wheels(
        packages[:1], cache, index_urls={}, target_tags=TAGS, wheelhouse=house, offline=True
    )
    assert got["zeta"].read_bytes() == good.read_bytes()
    with pytest.raises(WheelError, match=packages[1].wheels[0].sha256.hex):
        fetch_wheels(
            packages[1:], cache, index_urls={}, target_tags=TAGS, wheelhouse=house, offline=True
        )


def test_unknown_index_name_is_an_error_naming_it(tmp_path: Path) -> None:
    package = locked(build_wheel(tmp_path / "w", "theta"), index="elsewhere")
    with pytest.raises(WheelError, match="'elsewhere'"):
        fetch_wheels([package], WheelCache(tmp_path / "c"), index_urls={}, target_tags=TAGS)


def test_fill_wheelhouse_copies_each_target_wheel_and_reports_progress(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    wheels = [build_wheel(tmp_path / "w", name) for name in ("iota", "kappa")]
    for wheel in wheels:
        local_index.add(wheel)
    lock = Lock("demo", "fp", tuple(locked(w) for w in wheels))
    events: list[FetchProgress] = []

    written = fill_wheelhouse(
        lock,
        tmp_path / "house",
        WheelCache(tmp_path / "cache"),
        index_urls={"local": local_index.url},
        target_tags=TAGS,
        progress=events.append,
    )

    assert [p.name for p in written] == [w.name for w in wheels]
    for path, wheel in zip(written, wheels, strict=True):
        assert path.read_bytes() == wheel.read_bytes()
    finished = sorted((e.package, e.source) for e in events if e.finished)
    assert finished == [("iota", "index"), ("kappa", "index")]

    # The filled wheelhouse alone is enough for an offline build.
    offline = fetch_wheels(
        lock.packages,
        WheelCache(tmp_path / "cache2"),
        index_urls={},
        target_tags=TAGS,
        wheelhouse=tmp_path / "house",
        offline=True,
    )
    assert sorted(offline) == ["iota", "kappa"]


def test_tag_list_is_a_list_of_tags() -> None:
    assert all(isinstance(t, Tag) for t in TAGS)
    assert len(TAGS) == len(set(TAGS))


def test_download_larger_than_the_locked_size_is_cut_off(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    wheel = build_wheel(tmp_path / "w", "lambda")
    local_index.add(wheel, served=wheel.read_bytes() * 4)
    package = locked(wheel)
    cache = WheelCache(tmp_path / "cache")

    with pytest.raises(WheelError, match=f"more than the {wheel.stat().st_size} bytes"):
        fetch_wheels([package], cache, index_urls={"local": local_index.url}, target_tags=TAGS)
    assert [p for p in (tmp_path / "cache").rglob("*") if p.is_file()] == []


def test_rich_progress_gets_one_finished_task_per_wheel(
    tmp_path: Path, local_index: LocalIndex
) -> None:
    wheels = [build_wheel(tmp_path / "w", name) for name in ("mu", "nu")]
    for wheel in wheels:
        local_index.add(wheel)
    progress = Progress(console=Console(file=io.StringIO()))

    fetch_wheels(
        [locked(w) for w in wheels],
        WheelCache(tmp_path / "cache"),
        index_urls={"local": local_index.url},
        target_tags=TAGS,
        progress=rich_fetch_progress(progress),
    )
    tasks = sorted((t.description, t.completed, t.total) for t in progress.tasks)
    assert tasks == [
        (f"{w.name.split('-')[0]} (index)", w.stat().st_size, w.stat().st_size) for w in wheels
    ]
