"""The import graph follows the data flow: a lower layer never imports a higher one, not even
inside a function (two such cycles were broken: devices <-> kernels, module -> fusion -> layers -> module); the
experiments hold their science and the framework the rest."""

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
    """A kernel sees arrays: it imports nothing of minibn but the array modules (devices.py) and its own package."""
    imported = _imports(path)
    assert all(m.startswith(("minibn.kernels", "minibn.devices")) for m in imported), sorted(imported)


EXPERIMENTS = sorted(p for p in (ROOT.parent / "experiments").glob("[!_]*.py") if p.name != "reproduce.py")


def test_every_experiment_file_is_registered():
    from minibn import experiment

    assert sorted(experiment.registered()) == [p.stem for p in EXPERIMENTS]


@pytest.mark.parametrize("path", EXPERIMENTS, ids=lambda p: p.stem)
def test_an_experiment_leaves_the_grid_the_run_and_the_shared_fields_to_the_framework(path):
    tree = ast.parse(path.read_text())
    names = {n.name for n in ast.walk(tree) if isinstance(n, (ast.FunctionDef, ast.ClassDef))}
    assert not names & {"run", "task_key", "main"}, names & {"run", "task_key", "main"}
    config = next(n for n in tree.body if isinstance(n, ast.ClassDef) and n.name == "Config")
    fields = {t.target.id for t in config.body if isinstance(t, ast.AnnAssign)}
    assert not fields & {"seeds", "workers", "out", "quiet", "backend", "seed"}, fields
    assert "experiment.Run(" not in path.read_text() and "sys.modules[__name__]" not in path.read_text()


def test_the_library_does_not_know_where_the_checkout_is():
    sources = "\n".join(p.read_text() for p in ROOT.rglob("*.py"))
    assert "PROJECT_ROOT" not in sources and "PYTHONPATH" not in sources
