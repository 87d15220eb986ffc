"""Training scripts in the shapes of the seed author's four (tests/fixtures/), written for PyTorch and
run on minibn with nothing changed but the imports: ``import torch`` becomes ``import minibn as
torch``, ``from torch.utils.data import ...`` ``from minibn.utils.data import ...``. Where PyTorch is
installed, the unchanged script runs too, and the two runs' results agree."""

import random
import re
import sys
from pathlib import Path

import numpy as np
import pytest

import minibn.data

from .conftest import torch

FIXTURES = Path(__file__).parent / "fixtures"
DATA = Path(minibn.data.__file__).parent / "mnist_subset.npz"
# script -> (the results it leaves in its globals, how closely the two libraries must agree)
SCRIPTS = {
    "other_normalizations_shape.py": (("train_loss", "test_acc", "pre_acts", "acts_grad", "grad_proj_proxy"), 2e-4),
    "bn_high_lr_shape.py": (("losses", "act_norms", "grad_norms", "accuracy"), 2e-3),  # lr = 1 amplifies rounding
    "robust_noise_shape.py": (("best_val_acc", "epoch_losses"), 2e-4),
    "ols_shape.py": (("res_GD", "res_BN", "res_autograd", "effective_lr"), 1e-9),  # float64 throughout
}


def swap_imports(source: str) -> str:
    """``source`` with torch's modules replaced by minibn's in its import lines, and nothing else."""
    def swap(line):
        if not re.match(r"\s*(import|from)\s+torch\b", line):
            return line
        line = re.sub(r"^(\s*)import torch$", r"\1import minibn as torch", line)
        return re.sub(r"\btorch(?=[.\s])", "minibn", line, count=1) if " as torch" not in line else line
    return "\n".join(swap(line) for line in source.split("\n"))


def run_script(name: str, source: str, monkeypatch) -> dict:
    monkeypatch.setattr(sys, "argv", [name, str(DATA)])
    namespace = {"__name__": "__main__", "__file__": str(FIXTURES / name)}
    states = np.random.get_state(), random.getstate(), np.get_printoptions()  # scripts set these globals
    try:
        exec(compile(source, str(FIXTURES / name), "exec"), namespace)  # noqa: S102  (the project's own fixture)
    finally:
        np.random.set_state(states[0])
        random.setstate(states[1])
        np.set_printoptions(**states[2])
    return namespace


def test_every_fixture_script_is_run():
    assert sorted(p.name for p in FIXTURES.glob("*.py")) == sorted(SCRIPTS)


def test_the_import_swap_changes_import_lines_only():
    source = (FIXTURES / "other_normalizations_shape.py").read_text()
    changed = [(a, b) for a, b in zip(source.split("\n"), swap_imports(source).split("\n")) if a != b]
    assert changed == [("import torch", "import minibn as torch"), ("import torch.nn as nn", "import minibn.nn as nn"),
                       ("import torch.nn.functional as F", "import minibn.nn.functional as F"),
                       ("import torch.optim as optim", "import minibn.optim as optim"),
                       ("from torch.utils.data import DataLoader, Subset, TensorDataset",
                        "from minibn.utils.data import DataLoader, Subset, TensorDataset")]


@pytest.mark.parametrize("name", sorted(SCRIPTS))
def test_the_script_runs_on_minibn_with_only_its_imports_swapped(name, monkeypatch, capsys):
    keys, rtol = SCRIPTS[name]
    source = (FIXTURES / name).read_text()
    mine = run_script(name, swap_imports(source), monkeypatch)
    assert "minibn" in mine["torch"].__name__
    for key in keys:
        assert np.all(np.isfinite(_numbers(mine[key]))), key
    if torch is None:
        pytest.skip("PyTorch is not installed: the script ran on minibn, with no PyTorch run to compare with")
    theirs = run_script(name, source, monkeypatch)
    assert theirs["torch"] is torch
    for key in keys:
        np.testing.assert_allclose(_numbers(mine[key]), _numbers(theirs[key]), rtol=rtol, atol=1e-5,
                                   err_msg=f"{name}: {key}")


def _numbers(value) -> np.ndarray:
    """A script's result (numbers in lists, or dicts of them by name) as one flat float array."""
    if isinstance(value, dict):
        return np.concatenate([_numbers(value[k]) for k in sorted(value)])
    if isinstance(value, (list, tuple)) and value and isinstance(value[0], (list, tuple, dict)):
        return np.concatenate([_numbers(v) for v in value])
    return np.asarray(value, dtype=float).ravel()
