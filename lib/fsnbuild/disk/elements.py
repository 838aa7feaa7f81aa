"""The project's diskimage-builder elements: where they are, their tree hash, and a linter.

The linter checks DIB's element contract on plain files: phase scripts are executable, start
with a shebang and fail fast (``set -eu`` and ``-o pipefail``); every element has a README;
``element-deps`` names elements that exist here or in diskimage-builder.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from fsnbuild.errors import DiskError

# Phases DIB runs as scripts (environment.d files are sourced, so they need no shebang).
PHASES = (
    "root.d",
    "extra-data.d",
    "pre-install.d",
    "install.d",
    "post-install.d",
    "post-root.d",
    "block-device.d",
    "pre-finalise.d",
    "finalise.d",
    "cleanup.d",
)
# dib-run-parts runs only names made of these characters; anything else is silently skipped.
_SCRIPT_NAME = re.compile(r"^[0-9]{2}-[A-Za-z0-9_-]+$")
APPLIANCE_ELEMENT = "fsn-appliance"


@dataclass(frozen=True, order=True)
class LintProblem:
    path: Path
    problem: str

    def __str__(self) -> str:
        return f"{self.path}: {self.problem}"


def dib_elements_dir() -> Path:
    """The elements shipped with the installed diskimage-builder."""
    try:
        import diskimage_builder
    except ImportError:
        raise DiskError(
            "diskimage-builder is not installed",
            hint="install fsnbuild with the disk extra: pip install 'fsnbuild[disk]'",
        ) from None
    return Path(diskimage_builder.__file__).parent / "elements"


def lint_elements(elements_dir: Path, known: frozenset[str] = frozenset()) -> list[LintProblem]:
    """Every contract violation under ``elements_dir``; ``known`` adds DIB's element names."""
    problems: list[LintProblem] = []
    ours = {p.name for p in elements_dir.iterdir() if p.is_dir()}
    for element in sorted(p for p in elements_dir.iterdir() if p.is_dir()):
        if not any((element / name).is_file() for name in ("README.rst", "README.md")):
            problems.append(LintProblem(element, "no README.rst"))
        deps = element / "element-deps"
        if deps.is_file():
            for dep in _names(deps):
                if dep not in ours and dep not in known:
                    problems.append(LintProblem(deps, f"names unknown element {dep!r}"))
        for phase in PHASES:
            if (element / phase).is_dir():
                for script in sorted((element / phase).iterdir()):
                    problems.extend(_lint_script(script))
    return problems


def _names(path: Path) -> list[str]:
    return [line.split("#")[0].strip() for line in path.read_text().splitlines() if line.strip()]


def _lint_script(script: Path) -> list[LintProblem]:
    if script.is_dir():
        return []
    out = []
    if not _SCRIPT_NAME.match(script.name):
        out.append(LintProblem(script, "name is not NN-name (dib-run-parts would skip it)"))
    if not os.access(script, os.X_OK):
        out.append(LintProblem(script, "is not executable"))
    lines = script.read_text().splitlines()
    if not lines or not lines[0].startswith("#!"):
        out.append(LintProblem(script, "has no shebang line"))
    elif "python" not in lines[0]:
        body = "\n".join(lines)
        if not re.search(r"^set -[a-z]*e[a-z]*u|^set -[a-z]*u[a-z]*e", body, re.MULTILINE):
            out.append(LintProblem(script, "does not 'set -eu'"))
        if not re.search(r"^set (-[a-z]+ )*-o pipefail", body, re.MULTILINE):
            out.append(LintProblem(script, "does not 'set -o pipefail'"))
    return out


def check_elements(elements_dir: Path) -> None:
    """Raise DiskError listing every problem, before a long build starts."""
    if not (elements_dir / APPLIANCE_ELEMENT).is_dir():
        raise DiskError(
            f"{elements_dir}: no {APPLIANCE_ELEMENT} element",
            hint="run fsnbuild from the project folder, which holds elements/",
        )
    known = frozenset(p.name for p in dib_elements_dir().iterdir() if p.is_dir())
    problems = lint_elements(elements_dir, known)
    if problems:
        raise DiskError(
            f"{elements_dir}: {len(problems)} element problem(s): "
            + "; ".join(str(p) for p in problems),
            hint="follow diskimage-builder's element contract",
        )


def tree_hash(elements_dir: Path) -> str:
    """sha256 of every file's path, executable bit and content, in sorted order."""
    hasher = hashlib.sha256()
    for path in sorted(p for p in elements_dir.rglob("*") if p.is_file()):
        if "__pycache__" in path.parts:
            continue
        rel = path.relative_to(elements_dir).as_posix()
        executable = "x" if os.access(path, os.X_OK) else "-"
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        hasher.update(f"{rel}\0{executable}\0{digest}\n".encode())
    return hasher.hexdigest()
