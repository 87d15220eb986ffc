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
    again = experiment.rejudge(folder, figures=False)  # (drawing them again is tested once, in test_protocol.py)
    assert json.dumps(again["claims"]) == json.dumps(metrics["claims"])
    assert json.dumps(fileio.load_json(folder / "metrics.json")) == json.dumps(metrics)
    assert (checkpoint.read_bytes() if checkpoint.exists() else None) == before
    return again


def assert_rules_decide(cases: dict, claims=()):
    """The rules' own test. ``cases``: {claim id, or a family's prefix ending in "-": (decide,
    [(verdict, synthetic evidence), ...])}. Every decide gives each listed verdict for its evidence,
    and can give REPRODUCED and something else (a rule that cannot fail is a defect). Each of
    ``claims`` (a real run's) has its case, whose decide gives the recorded verdict from the recorded
    evidence (so the cases test the functions the run used)."""
    from minibn.experiment import claims as C

    for cid, (decide, verdicts) in cases.items():
        given = [v for v, _ in verdicts]
        assert C.REPRODUCED in given and set(given) - {C.REPRODUCED}, f"{cid}: a rule must be able to give both"
        for verdict, evidence in verdicts:
            assert decide(evidence) == verdict, (cid, verdict, evidence)
    for c in claims:
        key = c["id"] if c["id"] in cases else next((k for k in cases if k.endswith("-") and c["id"].startswith(k)),
                                                    None)
        assert key is not None, f"claim {c['id']} has no rule case"
        assert cases[key][0](c["evidence"]) == c["verdict"], c["id"]
