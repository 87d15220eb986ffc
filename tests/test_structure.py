"""The import graph follows the data flow: a lower layer never imports a higher one, not even
inside a function (two such cycles were broken: backend <-> kernels, module -> fusion -> layers -> module)."""

import ast
import subprocess
import sys
import pathlib

import pytest

ROOT = pathlib.Path(__file__).resolve().parent.parent / "minibn"


def _imports(path: pathlib.Path) -> set:
    """Every minibn module ``path`` imports, at any depth of its code (relative imports resolved)."""
    package = path.relative_to(ROOT.parent).with_suffix("").parts
    package = package[:-1] if path.name != "__init__.py" else package[:-1]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            base = list(package[:len(package) - node.level + 1]) if node.level else []
            target = ".".join(base + ([node.module] if node.module else []))
            found.add(target)
            found.update(f"{target}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return {m for m in found if m.startswith("minibn")}


@pytest.mark.parametrize("module, forbidden", [
    ("devices.py", ("minibn.kernels", "minibn.diagnostics")),
    ("kernels/__init__.py", ("minibn.diagnostics",)),
    ("nn/module.py", ("minibn.nn.fusion", "minibn.nn.layers", "minibn.nn.containers")),
    ("nn/layers.py", ("minibn.nn.fusion", "minibn.nn.containers")),
    ("nn/fusion.py", ("minibn.nn.containers", "minibn.nn.module")),
    ("autograd/trace.py", ("minibn.viz",)),
])
def test_lower_layers_do_not_import_higher_ones(module, forbidden):
    imported = _imports(ROOT / module)
    assert not [m for m in imported if m.startswith(forbidden)], sorted(imported)


def test_the_checker_sees_imports_inside_functions():
    imported = _imports(ROOT / "nn" / "containers.py")
    assert "minibn.nn.fusion" in imported and "minibn.nn.module.Module" in imported


def test_import_minibn_imports_neither_numba_nor_cupy():
    """The kernels import numba on their first call and CuPy when a CuPy array first comes."""
    code = "import sys, minibn; print(sorted({'numba', 'cupy'} & set(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


@pytest.mark.parametrize("path", sorted((ROOT / "kernels").rglob("*.py")), ids=lambda p: str(p.relative_to(ROOT)))
def test_kernels_work_on_arrays_alone(path):
    """A kernel sees arrays: it imports nothing of minibn but the backend's array module and its own package."""
    imported = _imports(path)
    assert all(m.startswith(("minibn.kernels", "minibn.devices")) for m in imported), sorted(imported)
