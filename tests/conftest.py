import json
import pathlib

import numpy as np
import pytest

import minibn as mb

try:
    import torch

except ImportError:  # the cross-checks skip with a reason
    torch = None

requires_torch = pytest.mark.skipif(torch is None, reason="PyTorch is not installed (pip install torch==2.13.0)")


@pytest.fixture
def rng():
    return np.random.default_rng(12345)


@pytest.fixture(autouse=True)
def _fresh_state():
    """Every test starts with grad mode on, default dtype float32, default kernels, a seeded generator."""
    mb.manual_seed(0)
    yield
    mb.kernels._choice = None  # experiments choose a kernel set; the next test starts from the default
    mb.set_default_dtype(mb.float32)
    assert mb.is_grad_enabled(), "a test left grad mode switched off"


def leaf(array, requires_grad=True):
    return mb.tensor(np.asarray(array), requires_grad=requires_grad)



def assert_refused_before_any_work(main, argv, named, out, capsys):
    """``main(argv + ["--out", out])`` exits with status 2, its message names ``named`` (the flag at
    fault), and no run folder was made: bad flags are refused before any work."""
    with pytest.raises(SystemExit) as exit_:
        main(list(argv) + ["--out", str(out)])
    assert exit_.value.code == 2
    assert named in capsys.readouterr().err
    assert not out.exists()


def assert_rejudge_restores_the_claims(folder):
    """With its claims deleted from metrics.json, the run in ``folder`` gets them back from ``rejudge``
    (the same claims, evidence and verdicts), its checkpoint untouched."""
    from minibn import experiment, fileio

    folder = pathlib.Path(folder)
    metrics = fileio.load_json(folder / "metrics.json")
    checkpoint = folder / "checkpoint.ckpt"
    before = checkpoint.read_bytes() if checkpoint.exists() else None
    fileio.save_json(folder / "metrics.json", {k: v for k, v in metrics.items() if k != "claims"})
    again = experiment.rejudge(folder)
    assert json.dumps(again["claims"]) == json.dumps(metrics["claims"])
    assert json.dumps(fileio.load_json(folder / "metrics.json")) == json.dumps(metrics)
    assert (checkpoint.read_bytes() if checkpoint.exists() else None) == before
    return again
