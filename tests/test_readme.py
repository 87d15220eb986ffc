"""The README's Python examples run as written."""

import pathlib
import re

import numpy as np
import pytest

import minibn as mb

README = pathlib.Path(__file__).resolve().parent.parent / "README.md"
BLOCKS = re.findall(r"```python\n(.*?)```", README.read_text(), flags=re.S)


def test_readme_has_examples():
    assert len(BLOCKS) >= 2


@pytest.mark.parametrize("index", range(len(BLOCKS)))
def test_readme_example_runs(index, capsys, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # an example may write files (drawings) where it runs
    namespace = {}
    exec(compile(BLOCKS[index], f"README.md example {index}", "exec"), namespace)
    tensors = [v for v in namespace.values() if isinstance(v, mb.Tensor)]
    assert tensors, "an example should leave its tensors behind"
    assert all(np.isfinite(t.detach().numpy()).all() for t in tensors)
    if "gap" in namespace:  # the folded network equals the BN network on its batch, to float32 rounding
        scale = float(namespace["net"](namespace["x"]).abs().max().item())
        assert float(namespace["gap"].item()) <= 1e-5 * max(scale, 1.0)
