"""Imports point one way: base <- pruning <- compiler <- device <- tuner <- cli, report, demo.

Every module of the package is parsed (not imported), and every import of an edgeprune module is
checked against the layer of the module that holds it. An import placed inside a function is
allowed only in the top layer, whose verbs import their stage when they run so that
``edgeprune --help`` stays fast; below it, nothing has a reason to hide an import in a function
but a cycle, which the layers forbid.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.repo import REPO

# Package folder in the repository -> its import name.
FOLDERS = {"edgeprune": "edgeprune", "pruning": "edgeprune.pruning", "compiler": "edgeprune.compiler",
           "device": "edgeprune.device"}

STAGES = {name.rpartition(".")[2] for name in FOLDERS.values()} | {"base", "cli", "report", "demo"}

# Lowest first; a module may import its own layer and those below it. The longest prefix decides.
LAYERS = (
    ("base", ("edgeprune.__init__", "edgeprune.base")),
    ("pruning", ("edgeprune.pruning",)),
    ("compiler", ("edgeprune.compiler",)),
    ("device", ("edgeprune.device",)),
    ("tuner", ("edgeprune.compiler.tuner",)),
    ("top", ("edgeprune.cli", "edgeprune.report", "edgeprune.demo", "edgeprune.__main__")),
)
TOP = len(LAYERS) - 1


def layer_of(module: str) -> int:
    best, depth = None, -1
    for index, (_, prefixes) in enumerate(LAYERS):
        for prefix in prefixes:
            if (module == prefix or module.startswith(prefix + ".")) and len(prefix) > depth:
                best, depth = index, len(prefix)
    if module == "edgeprune":
        return 0
    assert best is not None, f"{module}: in no layer; add it to LAYERS"
    return best


def modules() -> list[tuple[str, Path]]:
    found = []
    for folder, name in FOLDERS.items():
        for path in sorted((REPO / folder).rglob("*.py")):
            parts = path.relative_to(REPO / folder).with_suffix("").parts
            found.append((".".join((name, *parts)), path))
    return found


def edgeprune_imports(module: str, path: Path) -> list[tuple[str, int, bool]]:
    """(imported module, line, inside a function) for every import of an edgeprune module."""
    tree = ast.parse(path.read_text(), str(path))
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    nested: set[int] = set()
    for node in ast.walk(tree):
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            nested.update(id(n) for n in ast.walk(node) if n is not node)
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                names = [".".join(base + ([node.module] if node.module else []))]
            else:
                names = [node.module or ""]
            if names == ["edgeprune"]:  # from edgeprune import compiler, __version__
                names = [f"edgeprune.{alias.name}" if alias.name in STAGES else "edgeprune" for alias in node.names]
        else:
            continue
        found += [(name, node.lineno, id(node) in nested) for name in names
                  if name == "edgeprune" or name.startswith("edgeprune.")]
    return found


def test_every_import_points_down():
    wrong = []
    for module, path in modules():
        own = layer_of(module)
        for imported, line, _ in edgeprune_imports(module, path):
            if layer_of(imported) > own:
                wrong.append(f"{path.relative_to(REPO)}:{line}: {LAYERS[own][0]} imports {imported} "
                             f"({LAYERS[layer_of(imported)][0]})")
    assert not wrong, "\n".join(wrong)


def test_no_function_level_imports_below_the_top_layer():
    hidden = [f"{path.relative_to(REPO)}:{line}: {imported}"
              for module, path in modules() if layer_of(module) < TOP
              for imported, line, inside in edgeprune_imports(module, path) if inside]
    assert not hidden, "\n".join(hidden)


def test_layers_know_the_tuner_sits_above_device():
    assert layer_of("edgeprune.compiler.tuner.measure") > layer_of("edgeprune.device.runners.base")
    assert layer_of("edgeprune.compiler.build") < layer_of("edgeprune.device.runners.base")


@pytest.mark.parametrize("name", ["compiler", "pruning", "device"])
def test_the_stages_install_inside_edgeprune_only(name, tmp_path):
    """Outside the repository (no folder of that name in the working directory), only
    ``edgeprune.<stage>`` imports."""
    code = (f"import importlib.util, edgeprune.{name} as stage\n"
            f"print(importlib.util.find_spec({name!r}) is None, stage.__name__)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=tmp_path, check=True).stdout
    assert out.split() == ["True", f"edgeprune.{name}"]
