"""The project's DIB elements keep diskimage-builder's element contract."""

from __future__ import annotations

import os
from pathlib import Path

from fsnbuild.disk.elements import dib_elements_dir, lint_elements, tree_hash

ELEMENTS = Path(__file__).resolve().parents[2] / "elements"


def _dib_names() -> frozenset[str]:
    return frozenset(p.name for p in dib_elements_dir().iterdir() if p.is_dir())


def test_project_elements_pass_the_linter() -> None:
    problems = lint_elements(ELEMENTS, _dib_names())
    assert [str(p) for p in problems] == []


def test_project_has_the_three_appliance_elements() -> None:
    names = sorted(p.name for p in ELEMENTS.iterdir() if p.is_dir())
    assert names == ["fsn-appliance", "fsn-context", "fsn-reproducible"]


def _element(tmp_path: Path, name: str, script: str, mode: int = 0o755) -> Path:
    element = tmp_path / name
    (element / "install.d").mkdir(parents=True)
    (element / "README.rst").write_text(name)
    path = element / "install.d" / "50-step"
    path.write_text(script)
    path.chmod(mode)
    return path


GOOD = "#!/bin/bash\nset -eu\nset -o pipefail\necho ok\n"


def test_linter_accepts_a_well_formed_element(tmp_path: Path) -> None:
    _element(tmp_path, "good", GOOD)
    assert lint_elements(tmp_path) == []


def test_linter_rejects_script_without_pipefail(tmp_path: Path) -> None:
    _element(tmp_path, "bad", "#!/bin/bash\nset -eu\necho ok\n")
    assert [p.problem for p in lint_elements(tmp_path)] == ["does not 'set -o pipefail'"]


def test_linter_rejects_script_without_set_eu(tmp_path: Path) -> None:
    _element(tmp_path, "bad", "#!/bin/bash\nset -o pipefail\n")
    assert [p.problem for p in lint_elements(tmp_path)] == ["does not 'set -eu'"]


def test_linter_rejects_script_without_shebang(tmp_path: Path) -> None:
    _element(tmp_path, "bad", "set -eu\nset -o pipefail\n")
    assert [p.problem for p in lint_elements(tmp_path)] == ["has no shebang line"]


def test_linter_rejects_script_that_is_not_executable(tmp_path: Path) -> None:
    _element(tmp_path, "bad", GOOD, mode=0o644)
    assert [p.problem for p in lint_elements(tmp_path)] == ["is not executable"]


def test_linter_rejects_script_name_dib_run_parts_would_skip(tmp_path: Path) -> None:
    path = _element(tmp_path, "bad", GOOD)
    path.rename(path.with_name("50-step.sh"))
    problems = lint_elements(tmp_path)
    assert [p.problem for p in problems] == ["name is not NN-name (dib-run-parts would skip it)"]


def test_linter_rejects_element_without_readme(tmp_path: Path) -> None:
    _element(tmp_path, "bad", GOOD)
    (tmp_path / "bad" / "README.rst").unlink()
    assert [p.problem for p in lint_elements(tmp_path)] == ["no README.rst"]


def test_linter_rejects_dependency_on_unknown_element(tmp_path: Path) -> None:
    _element(tmp_path, "bad", GOOD)
    (tmp_path / "bad" / "element-deps").write_text("package-installs\nno-such-element\n")
    problems = lint_elements(tmp_path, frozenset({"package-installs"}))
    assert [p.problem for p in problems] == ["names unknown element 'no-such-element'"]


def test_tree_hash_changes_with_content_and_executable_bit(tmp_path: Path) -> None:
    path = _element(tmp_path, "e", GOOD)
    first = tree_hash(tmp_path)
    path.chmod(0o644)
    second = tree_hash(tmp_path)
    path.write_text(GOOD + "# more\n")
    third = tree_hash(tmp_path)
    assert len({first, second, third}) == 3
    path.chmod(0o755)
    path.write_text(GOOD)
    os.utime(path, (0, 0))
    assert tree_hash(tmp_path) == first
