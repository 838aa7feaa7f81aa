"""Read and validate variants.toml in full before any work starts.

Each setting is declared once in ``SCHEMA``: its key, type, default and meaning. Unknown keys
get a "did you mean" from that table, so a typo never silently drops a setting.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import tomlkit
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name
from tomlkit.exceptions import TOMLKitError

from fsnbuild.config.model import Base, DiskSettings, Index, Product, Project, Target, Variant
from fsnbuild.digest import Digest
from fsnbuild.errors import ConfigError, FsnbuildError

_REQUIRED = object()


@dataclass(frozen=True)
class Setting:
    kind: type | tuple[type, ...]
    default: Any
    help: str


SCHEMA: dict[str, dict[str, Setting]] = {
    "product": {
        "name": Setting(str, _REQUIRED, "product name"),
        "version": Setting(str, _REQUIRED, "VERSION in image and disk names"),
        "image-name": Setting(
            str, "flower-supernode-{framework}:{version}", "container image name pattern"
        ),
        "epoch": Setting(int, _REQUIRED, "seconds since 1970 stamped on every output"),
    },
    "base": {
        "repository": Setting(str, _REQUIRED, "base image repository"),
        "tag": Setting(str, _REQUIRED, "base image tag (informative; the digest pins it)"),
        "digest": Setting(str, _REQUIRED, "manifest digest the base is pinned to"),
        "provides": Setting(list, [], "requirements the base image already installs"),
        "standin": Setting(bool, False, "true when the digest names the local stand-in"),
    },
    "target": {
        "python": Setting(str, _REQUIRED, "target Python version, as 3.11"),
        "implementation": Setting(str, "cpython", "target Python implementation"),
        "os": Setting(str, "linux", "target operating system"),
        "arch": Setting(str, "x86_64", "target CPU architecture"),
        "libc": Setting(str, "glibc", "target C library"),
        "glibc": Setting(str, "2.28", "oldest glibc of the target (manylinux level)"),
    },
    "indexes.*": {
        "url": Setting(str, None, "index address; absent: the resolver's default or --index"),
        "default": Setting(bool, False, "serves every package not routed elsewhere"),
    },
    "variants.*": {
        "framework": Setting(str, _REQUIRED, "value of ML_FRAMEWORK this variant provides"),
        "packages": Setting(list, _REQUIRED, "requirements added to the base"),
        "routes": Setting(dict, {}, "package name -> index name"),
        "smoke": Setting(list, [], "modules the smoke check imports"),
        "heavy": Setting(list, [], "packages that get a container layer of their own"),
    },
    "disk": {
        "distribution": Setting(str, "debian", "distribution of the appliance's disk"),
        "release": Setting(str, "bookworm", "release of that distribution"),
        "size-gib": Setting(int, 8, "virtual size of the QCOW2 disk"),
    },
}

_KIND_NAMES: dict[Any, str] = {
    str: "a string",
    int: "an integer",
    bool: "true or false",
    list: "a list",
    dict: "a table",
}
_TABLES = ("product", "base", "target", "indexes", "variants", "disk")
_SUPPORTED = {"implementation": {"cpython"}, "os": {"linux"}, "libc": {"glibc"}}
_NAME = re.compile(r"^[a-z][a-z0-9-]*$")
_TAG = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}")
_REPOSITORY = re.compile(
    r"([a-z0-9.-]+(:[0-9]+)?/)?[a-z0-9]+([._-][a-z0-9]+)*(/[a-z0-9]+([._-][a-z0-9]+)*)*"
)
_IMAGE_REF = re.compile(_REPOSITORY.pattern + ":" + _TAG.pattern)
_MODULE = re.compile(r"[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)*")
_PACKAGE = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")
_MIN_EPOCH, _MAX_EPOCH = 315532800, 8**11 - 1  # 1980-01-01 .. the largest ustar mtime


def load_project(path: Path) -> Project:
    """Parse and validate ``path``; raise ConfigError naming the file and key on any fault."""
    path = path.resolve()
    doc = _read(path)
    checker = _Checker(path)
    checker.known(doc, _TABLES, "")
    product = checker.table(doc, "product")
    base = checker.table(doc, "base")
    target = checker.table(doc, "target")
    disk = checker.table(doc, "disk", optional=True)
    indexes = checker.named_tables(doc, "indexes")
    variants = checker.named_tables(doc, "variants")
    return checker.build(product, base, target, disk, indexes, variants)


def read_document(path: Path) -> tomlkit.TOMLDocument:
    """The raw tomlkit document, to edit while keeping comments and layout."""
    return _read(path)


def _read(path: Path) -> tomlkit.TOMLDocument:
    try:
        text = path.read_text(encoding="utf-8")
    except (FileNotFoundError, IsADirectoryError, NotADirectoryError):
        raise ConfigError(
            f"{path}: no such file", hint="run fsnbuild from the project folder or pass --config"
        ) from None
    except UnicodeDecodeError as exc:
        raise ConfigError(
            f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})",
            hint="TOML files are UTF-8",
        ) from None
    try:
        return tomlkit.parse(text)
    except TOMLKitError as exc:
        raise ConfigError(
            f"{path}: not valid TOML: {exc}",
            hint="a table defined twice (such as a duplicate variant) is a TOML error too",
        ) from None


class _Checker:
    def __init__(self, path: Path) -> None:
        self.path = path

    def fail(self, key: str, problem: str, hint: str) -> ConfigError:
        return ConfigError(f"{self.path}: [{key}] {problem}", hint=hint)

    def known(self, table: Any, allowed: tuple[str, ...], where: str) -> None:
        for key in table:
            if key not in allowed:
                close = difflib.get_close_matches(key, allowed, n=1)
                hint = (
                    f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(allowed)}"
                )
                raise self.fail(where or "top level", f"unknown key '{key}'", hint)

    def table(self, doc: Any, name: str, optional: bool = False) -> dict[str, Any]:
        raw = doc.get(name)
        if raw is None and optional:
            raw = {}
        if not isinstance(raw, dict):
            raise self.fail(name, "is missing or not a table", f"add a [{name}] table")
        return self.settings(raw, name, SCHEMA[name])

    def named_tables(self, doc: Any, name: str) -> dict[str, dict[str, Any]]:
        raw = doc.get(name)
        if not isinstance(raw, dict) or not raw:
            raise self.fail(name, "is missing or empty", f"add at least one [{name}.NAME] table")
        out = {}
        for key, value in raw.items():
            where = f"{name}.{key}"
            if not _NAME.match(key):
                raise self.fail(where, "name must be lower-case letters, digits and '-'", "rename")
            if not isinstance(value, dict):
                raise self.fail(where, "is not a table", f"write it as [{where}]")
            out[key] = self.settings(value, where, SCHEMA[f"{name}.*"])
        return out

    def settings(
        self, raw: dict[str, Any], where: str, schema: dict[str, Setting]
    ) -> dict[str, Any]:
        self.known(raw, tuple(schema), where)
        out: dict[str, Any] = {}
        for key, setting in schema.items():
            if key not in raw:
                if setting.default is _REQUIRED:
                    raise self.fail(
                        where, f"missing key '{key}' ({setting.help})", f"add {key} = ..."
                    )
                out[key] = setting.default
                continue
            value = _unwrap(raw[key])
            if not isinstance(value, setting.kind) or (
                setting.kind is int and isinstance(value, bool)
            ):
                kind = _KIND_NAMES.get(setting.kind, "value")
                raise self.fail(where, f"'{key}' must be {kind}, not {value!r}", setting.help)
            out[key] = value
        return out

    def build(
        self,
        product: dict[str, Any],
        base: dict[str, Any],
        target: dict[str, Any],
        disk: dict[str, Any],
        indexes: dict[str, dict[str, Any]],
        variants: dict[str, dict[str, Any]],
    ) -> Project:
        self.values(product, base, disk)
        try:
            digest = Digest.parse(base["digest"], what="base digest")
        except FsnbuildError as exc:
            raise self.fail(
                "base", f"'digest' {exc.message.split(' ', 2)[2]}", exc.hint or ""
            ) from None
        if not re.fullmatch(r"3\.\d{1,2}", target["python"]):
            raise self.fail(
                "target",
                f"'python' = {target['python']!r} is not a version like '3.11'",
                "give major.minor of the base image's Python",
            )
        if not re.fullmatch(r"2\.\d{1,2}", target["glibc"]):
            raise self.fail(
                "target",
                f"'glibc' = {target['glibc']!r} is not like '2.28'",
                "give the oldest glibc of the base as major.minor, e.g. 2.28",
            )
        for key, allowed in _SUPPORTED.items():
            if target[key] not in allowed:
                raise self.fail(
                    "target",
                    f"'{key}' = {target[key]!r} is not supported",
                    f"supported: {', '.join(sorted(allowed))}",
                )
        defaults = [name for name, idx in indexes.items() if idx["default"]]
        if len(defaults) != 1:
            raise self.fail(
                "indexes",
                f"{len(defaults)} indexes have default = true",
                "mark exactly one index as the default",
            )
        index_map = {
            name: Index(name=name, url=idx["url"], default=idx["default"])
            for name, idx in indexes.items()
        }
        variant_map = {name: self.variant(name, raw, index_map) for name, raw in variants.items()}
        frameworks: dict[str, str] = {}
        for variant in variant_map.values():
            if variant.framework in frameworks:
                raise self.fail(
                    f"variants.{variant.name}",
                    f"duplicate variant: framework '{variant.framework}' is already provided by "
                    f"[variants.{frameworks[variant.framework]}]",
                    "each framework ships as exactly one variant",
                )
            frameworks[variant.framework] = variant.name
        return Project(
            path=self.path,
            product=Product(
                product["name"], product["version"], product["image-name"], product["epoch"]
            ),
            base=Base(
                repository=base["repository"],
                tag=base["tag"],
                digest=digest,
                provides=tuple(self.requirements(base["provides"], "base", "provides")),
                standin=base["standin"],
            ),
            target=Target(**target),
            indexes=index_map,
            variants=variant_map,
            disk=DiskSettings(disk["distribution"], disk["release"], disk["size-gib"]),
        )

    def values(self, product: dict[str, Any], base: dict[str, Any], disk: dict[str, Any]) -> None:
        """Range and form of the single values, so that no bad value reaches a build."""
        pattern = product["image-name"]
        if "{framework}" not in pattern:
            raise self.fail("product", "'image-name' lacks {framework}", "see the default pattern")
        sample = pattern.replace("{framework}", "x").replace("{version}", "1")
        if not _IMAGE_REF.fullmatch(sample):
            raise self.fail(
                "product",
                f"'image-name' = {pattern!r} does not make a valid image name",
                "use lower-case NAME:TAG with only {framework} and {version} as placeholders",
            )
        if not _TAG.fullmatch(product["version"]):
            raise self.fail(
                "product",
                f"'version' = {product['version']!r} cannot be an image tag",
                "letters, digits, '.', '_' and '-' only, as 1.25.0",
            )
        if not _MIN_EPOCH <= product["epoch"] <= _MAX_EPOCH:
            raise self.fail(
                "product",
                f"'epoch' = {product['epoch']} is outside 1980..2242",
                "zip cannot store times before 1980, tar headers none past 2242",
            )
        if not _REPOSITORY.fullmatch(base["repository"]):
            raise self.fail(
                "base",
                f"'repository' = {base['repository']!r} is not a repository name",
                "lower-case path such as flwr/supernode",
            )
        if not _TAG.fullmatch(base["tag"]):
            raise self.fail(
                "base",
                f"'tag' = {base['tag']!r} is not an image tag",
                "letters, digits, '.', '_' and '-' only",
            )
        if not 1 <= disk["size-gib"] <= 2048:
            raise self.fail(
                "disk",
                f"'size-gib' = {disk['size-gib']} is outside 1..2048",
                "the appliance's disk size in GiB, e.g. 8",
            )

    def variant(self, name: str, raw: dict[str, Any], indexes: dict[str, Index]) -> Variant:
        where = f"variants.{name}"
        for module in raw["smoke"]:
            if not isinstance(module, str) or not _MODULE.fullmatch(module):
                raise self.fail(
                    where,
                    f"'smoke' has {module!r}, not a module name",
                    "list importable modules such as sklearn or torch",
                )
        for package in raw["heavy"]:
            if not isinstance(package, str) or not _PACKAGE.fullmatch(package):
                raise self.fail(
                    where,
                    f"'heavy' has {package!r}, not a package name",
                    "list package names such as torch",
                )
        packages = self.requirements(raw["packages"], where, "packages")
        if not packages:
            raise self.fail(where, "'packages' is empty", "list the packages this variant adds")
        routes = []
        for package, index in raw["routes"].items():
            index = _unwrap(index)
            if index not in indexes:
                close = difflib.get_close_matches(str(index), list(indexes), n=1)
                hint = f"did you mean '{close[0]}'?" if close else "declare it as [indexes.NAME]"
                raise self.fail(where, f"routes '{package}' to undeclared index '{index}'", hint)
            routes.append((canonicalize_name(package), str(index)))
        return Variant(
            name=name,
            framework=raw["framework"],
            packages=tuple(packages),
            routes=tuple(sorted(routes)),
            smoke=tuple(str(m) for m in raw["smoke"]),
            heavy=tuple(sorted(canonicalize_name(str(p)) for p in raw["heavy"])),
        )

    def requirements(self, values: list[Any], where: str, key: str) -> list[str]:
        out = []
        for value in values:
            try:
                out.append(str(Requirement(str(value))))
            except InvalidRequirement as exc:
                raise self.fail(
                    where,
                    f"'{key}' has an invalid requirement {value!r}: {exc}",
                    "use the form name[extra]>=version",
                ) from None
        return out


def _unwrap(value: Any) -> Any:
    return value.unwrap() if hasattr(value, "unwrap") else value
