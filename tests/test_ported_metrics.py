"""Three experiments' ``--quick --dtype float64`` measurements are those they had before they moved onto the
framework's protocol (tests/data/quick_float64/, written by the experiments as they were then): every
number to rounding. Their claims are not compared: the rules have changed since, on purpose (equivalence
tests, Holm's adjustment, interventions), and ``rejudge`` applies them to old runs."""

import json
import math
from pathlib import Path

import pytest

from minibn import experiment, fileio

BEFORE = Path(__file__).parent / "data" / "quick_float64"
RELATIVE = 1e-7
ABSOLUTE = 1e-12  # a normalized neuron's batch mean is 0 to rounding (1e-16): its sign is noise
# the folder, the names, the time, the rules and the documents' numbers (decided from the numbers), and the
# notes (text, which has grown with the experiments since)
NOT_COMPARED = {"out", "experiment", "title", "seconds", "claims", "document_numbers", "notes"}
DROPPED = {"network", "seed"}  # labels each smoothness result repeated from its place in the metrics
ADDED = {"curves",  # noise robustness's validation curves, in metrics.json since the port (its figure draws them)
         # smoothness since: the deep linear networks' own epochs and late window, the Lp networks, the training
         # curve and the watched neurons' distributions, with their summaries; the option of batch norm after the ReLU
         "dln_epochs", "dln_late_step", "lp_norms", "train_curve", "distribution", "mean_train_accuracy",
         "distribution_shift", "terms", "norm_after_activation"}
RESTORED = {"smoothness": ["--dln-epochs", "1", "--lp-norms", "none"]}  # the protocol of before, where it has changed


def differences(before, after, path="") -> list:
    """Where ``after`` differs from ``before``: a missing or extra key, a length, a value (numbers to
    RELATIVE, or ABSOLUTE near 0; a non-finite number, written as null before, is any non-finite number now)."""
    if isinstance(before, dict) and isinstance(after, dict):
        out = [f"{path}/{k}: missing" for k in before if k not in after and k not in NOT_COMPARED | DROPPED]
        out += [f"{path}/{k}: new" for k in after if k not in before and k not in NOT_COMPARED | ADDED]
        for k in before.keys() & after.keys() - NOT_COMPARED:
            out += differences(before[k], after[k], f"{path}/{k}")
        return out
    if isinstance(before, list) and isinstance(after, list):
        if len(before) != len(after):
            return [f"{path}: {len(before)} items before, {len(after)} now"]
        return [d for i, (b, a) in enumerate(zip(before, after)) for d in differences(b, a, f"{path}[{i}]")]
    if before is None and isinstance(after, float) and not math.isfinite(after):
        return []
    numbers = (int, float)
    if isinstance(before, numbers) and isinstance(after, numbers) and not isinstance(before, bool) \
            and not isinstance(after, bool):
        if math.isnan(before) and math.isnan(after) or before == after or \
                abs(before - after) <= RELATIVE * max(abs(before), abs(after)) + ABSOLUTE:
            return []
    elif before == after:
        return []
    return [f"{path}: {before!r} before, {after!r} now"]


@pytest.mark.parametrize("name", ["landscape", "noise_robustness", "smoothness"])
def test_quick_measurements_are_those_of_before_the_port(name, tmp_path):
    before = json.loads((BEFORE / f"{name}.json").read_text())
    experiment.main(name, ["--quick", "--dtype", "float64", "--quiet", "--out", str(tmp_path / name),
                           *RESTORED.get(name, [])])
    after = fileio.load_json(tmp_path / name / "metrics.json")
    ids = [c["id"] for c in before["claims"]]
    assert [c["id"] for c in after["claims"] if c["id"] in ids] == ids  # claims added since come beside them
    assert differences(before, after) == []
    assert after["experiment"] == name and after["title"] == experiment.load(name).title


def test_the_comparison_sees_a_changed_number_a_missing_key_and_a_changed_verdict():
    before = {"a": [1.0, None], "b": {"c": "REPRODUCED"}, "seeds": [0, 1], "claims": [1]}
    assert differences(before, {"a": [1.0, math.inf], "b": {"c": "REPRODUCED"}, "seeds": [0, 1]}) == []
    assert differences(before, {"a": [1.0 + 1e-9, math.nan], "b": {"c": "REPRODUCED"}, "seeds": [0, 1]}) == []
    assert differences(before, {"a": [1.001, None], "b": {"c": "REPRODUCED"}, "seeds": [0, 1]}) == [
        "/a[0]: 1.0 before, 1.001 now"]
    assert differences(before, {"a": [1.0, None], "b": {"c": "PARTLY"}}) == [
        "/seeds: missing", "/b/c: 'REPRODUCED' before, 'PARTLY' now"]
