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


# ------------------------------------------------------------ one home per probe and family

# String literals equal to a probe's or a family's name that do not name it: each with why.
NOT_A_NAME = {
    ("resnet_repro/results/schemas.py", "paths"): "PATHS_SCHEMA's column C(n, k)",
    ("resnet_repro/bench/landscape.py", "landscape"): "a benchmark variant's label",
    ("resnet_repro/cli/bench/landscape.py", "landscape"): "that variant's result key",
}


def name_literals(names: set[str]) -> list[str]:
    """Every string literal equal to one of `names` in the package outside probes/ and nets/
    (parsed, so docstrings and comments never count) and in the workflow's rules (quoted)."""
    import ast
    import re

    found = []
    for path in sorted((ROOT / "resnet_repro").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if rel.split("/")[1] in ("probes", "nets"):
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.Constant) and node.value in names:
                if (rel, node.value) not in NOT_A_NAME:
                    found.append(f"{rel}:{node.lineno}: {node.value!r}")
    quoted = re.compile(r"""["']([\w-]+)["']""")
    for path in [ROOT / "Snakefile", *sorted((ROOT / "workflow").rglob("*.smk"))]:
        for i, line in enumerate(path.read_text().splitlines(), 1):
            found += [
                f"{path.relative_to(ROOT)}:{i}: {m.group(1)!r}"
                for m in quoted.finditer(line)
                if m.group(1) in names
            ]
    return found


def test_no_module_outside_probes_and_nets_names_a_probe_or_family():
    """A probe or a net family is one module plus one registry entry: everything else asks
    the registries (probes/registry.py, nets/families.py), never tests a name."""
    from resnet_repro.nets.families import ALL_ARCHS
    from resnet_repro.probes.registry import NAMES

    assert name_literals(set(NAMES) | set(ALL_ARCHS)) == []


def test_a_name_literal_is_found(tmp_path, monkeypatch):
    """The check finds a family tested by name, as tables/families.py once did."""
    monkeypatch.setattr(sys.modules[__name__], "ROOT", tmp_path)
    (tmp_path / "resnet_repro" / "tables").mkdir(parents=True)
    (tmp_path / "workflow").mkdir()
    (tmp_path / "Snakefile").write_text('include: "workflow/x.smk"\n')
    (tmp_path / "workflow" / "x.smk").write_text('archs = ("plain", "resnet")\n')
    (tmp_path / "resnet_repro" / "tables" / "t.py").write_text(
        '"""resnet: the docstring does not count."""\nIMAGENET = arch == "imagenet-resnet"\n'
    )
    assert name_literals({"plain", "resnet", "imagenet-resnet"}) == [
        "resnet_repro/tables/t.py:2: 'imagenet-resnet'",
        "workflow/x.smk:1: 'plain'",
        "workflow/x.smk:1: 'resnet'",
    ]
