"""The package's layering: the import-linter contracts of pyproject.toml hold, and no module
imports itself through others (an import circle), so a new feature cannot quietly re-create
the command line's old circle or make a lower layer import a higher one."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import grimp

ROOT = Path(__file__).resolve().parents[1]
LINT = (
    "import sys; from importlinter.cli import lint_imports; sys.exit(lint_imports(no_cache=True))"
)


def import_circles(package: str) -> list[tuple[str, str]]:
    """Every direct import a -> b for which b also reaches a (lazy imports included)."""
    graph = grimp.build_graph(package)
    return [
        (a, b)
        for a in sorted(graph.modules)
        for b in sorted(graph.find_modules_directly_imported_by(a))
        if graph.chain_exists(importer=b, imported=a)
    ]


def test_the_layer_contracts_hold():
    out = subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert out.returncode == 0, out.stdout + out.stderr
    assert "2 kept, 0 broken" in out.stdout


def test_no_module_imports_itself_through_others():
    assert import_circles("resnet_repro") == []


def test_a_circle_is_found(tmp_path, monkeypatch):
    """The check above finds a circle when there is one (a package written for the test)."""
    pkg = tmp_path / "circular_pkg"
    pkg.mkdir()
    (pkg / "__init__.py").write_text("")
    (pkg / "a.py").write_text("def f():\n    from .b import g\n")
    (pkg / "b.py").write_text("from .a import f\n\ng = f\n")
    (pkg / "c.py").write_text("from .a import f\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert import_circles("circular_pkg") == [
        ("circular_pkg.a", "circular_pkg.b"),
        ("circular_pkg.b", "circular_pkg.a"),
    ]


def test_a_lower_layer_importing_a_higher_one_breaks_the_contract(tmp_path):
    """Run the contracts on a copy of the package where the config imports the command line."""
    import shutil

    shutil.copytree(ROOT / "resnet_repro", tmp_path / "resnet_repro")
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    errors = tmp_path / "resnet_repro" / "config" / "errors.py"
    errors.write_text(errors.read_text() + "\nfrom ..cli import common  # noqa\n")
    out = subprocess.run(
        [sys.executable, "-c", LINT],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        env={**os.environ, "PYTHONPATH": str(tmp_path)},
    )
    assert out.returncode != 0
    assert "resnet_repro.config.errors -> resnet_repro.cli.common" in out.stdout
