"""The floors of LAYOUT.md, enforced.

- the import-linter contracts in pyproject.toml: floors import only downward (so nothing outside ``dev`` and
  ``cli`` imports ``dev``), no job imports another, only ``flink`` imports PyFlink;
- every module imports on its own in a fresh interpreter (no cycle hidden by an import inside a function);
- private names (``_x``) never cross modules;
- each package has a face: a docstring naming each of its modules.
"""

from __future__ import annotations

import ast
import os
import re
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src"
PACKAGE = "cokreat_jobs"


def modules(src: Path, package: str) -> list[str]:
    names = []
    for path in sorted((src / package).rglob("*.py")):
        rel = path.relative_to(src).with_suffix("")
        parts = list(rel.parts)
        if parts[-1] == "__main__":
            continue
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names.append(".".join(parts))
    return names


# A parent holding nothing but the standard library forks one child per module; each child starts from that
# bare state, as a fresh interpreter would, and imports one module.
_FORK_EACH = textwrap.dedent(
    """
    import importlib, os, sys, traceback
    failed = []
    for name in sys.argv[1:]:
        pid = os.fork()
        if pid == 0:
            try:
                importlib.import_module(name)
            except BaseException:
                traceback.print_exc(limit=3)
                os._exit(1)
            os._exit(0)
        _, status = os.waitpid(pid, 0)
        if status != 0:
            failed.append(name)
    print("FAILED:" + ",".join(failed))
    """
)


def modules_that_fail_alone(src: Path, names: list[str]) -> list[str]:
    env = {**os.environ, "PYTHONPATH": str(src)}
    proc = subprocess.run(
        [sys.executable, "-c", _FORK_EACH, *names],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
        stdin=subprocess.DEVNULL,
    )
    line = [x for x in proc.stdout.splitlines() if x.startswith("FAILED:")][-1]
    return [n for n in line[len("FAILED:") :].split(",") if n]


def private_crossings(src: Path, package: str) -> list[str]:
    """``from cokreat_jobs.x import _y`` and ``x._y`` on an imported cokreat_jobs module, anywhere in src."""
    found = []
    for path in sorted((src / package).rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        aliases: set[str] = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.ImportFrom) and (node.module or "").startswith(package):
                for a in node.names:
                    if a.name.startswith("_") and not a.name.startswith("__"):
                        found.append(f"{path.relative_to(src)}:{node.lineno}: imports {node.module}.{a.name}")
                    target = f"{node.module}.{a.name}"
                    if (src / target.replace(".", "/")).with_suffix(".py").exists() or (
                        src / target.replace(".", "/")
                    ).is_dir():
                        aliases.add(a.asname or a.name)
            elif isinstance(node, ast.Import):
                for a in node.names:
                    if a.name.startswith(package) and a.asname:
                        aliases.add(a.asname)
        for node in ast.walk(tree):
            if (
                isinstance(node, ast.Attribute)
                and isinstance(node.value, ast.Name)
                and node.value.id in aliases
                and node.attr.startswith("_")
                and not node.attr.startswith("__")
            ):
                found.append(f"{path.relative_to(src)}:{node.lineno}: reads {node.value.id}.{node.attr}")
    return found


def faceless_packages(src: Path, package: str) -> list[str]:
    """Packages whose ``__init__`` docstring does not name every module and subpackage they hold."""
    found = []
    for init in sorted((src / package).rglob("__init__.py")):
        folder = init.parent
        doc = ast.get_docstring(ast.parse(init.read_text())) or ""
        children = sorted(
            {p.stem for p in folder.glob("*.py") if not p.stem.startswith("_")}
            | {p.name for p in folder.iterdir() if (p / "__init__.py").exists()}
        )
        missing = [c for c in children if not re.search(rf"(?<![\w.]){re.escape(c)}(?![\w])", doc)]
        if not doc or missing:
            what = "missing" if not doc else "lacks " + ", ".join(missing)
            found.append(f"{folder.relative_to(src)}: docstring {what}")
    return found


def test_import_linter_contracts_are_kept() -> None:
    lint = Path(sys.executable).parent / "lint-imports"
    proc = subprocess.run(
        [str(lint), str(ROOT / "pyproject.toml")],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(SRC)},
        capture_output=True,
        text=True,
        timeout=300,
        stdin=subprocess.DEVNULL,
    )
    assert proc.returncode == 0, proc.stdout[-6000:] + proc.stderr[-2000:]
    assert "BROKEN" not in proc.stdout


def test_every_module_imports_on_its_own() -> None:
    names = modules(SRC, PACKAGE)
    assert len(names) > 50
    assert modules_that_fail_alone(SRC, names) == []


def test_no_private_name_crosses_a_module() -> None:
    assert private_crossings(SRC, PACKAGE) == []


def test_every_package_has_a_face() -> None:
    assert faceless_packages(SRC, PACKAGE) == []


# ---- the checks can fail -----------------------------------------------------------------------------------


@pytest.fixture()
def toy(tmp_path: Path) -> Path:
    pkg = tmp_path / "toy"
    (pkg / "low").mkdir(parents=True)
    (pkg / "__init__.py").write_text('"""A toy. ``low``, ``cycle_a``, ``cycle_b``"""\n')
    (pkg / "low" / "__init__.py").write_text('"""Nothing listed here."""\n')
    (pkg / "low" / "util.py").write_text("def _helper():\n    return 1\n")
    (pkg / "cycle_a.py").write_text("from toy.cycle_b import B\nA = 1\n")
    (pkg / "cycle_b.py").write_text("from toy.cycle_a import A\nB = 2\n")
    (pkg / "user.py").write_text(
        "from toy.low.util import _helper\nfrom toy.low import util\nutil._helper()\n"
    )
    return tmp_path


def test_the_fresh_import_check_finds_a_cycle(toy: Path) -> None:
    assert modules_that_fail_alone(toy, modules(toy, "toy")) == ["toy.cycle_a", "toy.cycle_b"]


def test_the_private_check_finds_both_forms(toy: Path) -> None:
    found = private_crossings(toy, "toy")
    assert any("imports toy.low.util._helper" in f for f in found)
    assert any("reads util._helper" in f for f in found)


def test_the_face_check_finds_an_unlisted_module(toy: Path) -> None:
    found = faceless_packages(toy, "toy")
    assert found == ["toy: docstring lacks user", "toy/low: docstring lacks util"]
