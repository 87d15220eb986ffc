"""The benchmark harness runs, writes what it promises, and refuses to time what disagrees.
(Times are reported by bench/run.py, never asserted here.)"""

import json
import pathlib
import sys

import numpy as np
import pytest

from .conftest import requires_torch

BENCH = pathlib.Path(__file__).resolve().parent.parent / "bench"
pytestmark = requires_torch


@pytest.fixture
def bench(monkeypatch):
    monkeypatch.syspath_prepend(str(BENCH))
    import cases
    import run

    yield run, cases
    for name in ("run", "cases", "timing"):
        sys.modules.pop(name, None)


def test_quick_run_writes_json_and_markdown(bench, tmp_path, capsys):
    run, _ = bench
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    run.main(["--quick", "--rounds", "1", "--threads", "1", "--only", "autograd_overhead_4x4",
              "softmax_cross_entropy_10000x10", "--json", str(out_json), "--markdown", str(out_md)])
    data = json.loads(out_json.read_text())
    assert {"cpu", "cores", "blas", "blas_kernel", "numpy", "torch", "threads"} <= set(data["machine"])
    names = [c["name"] for c in data["cases"]]
    assert names == ["autograd_overhead_4x4", "softmax_cross_entropy_10000x10"]
    for c in data["cases"]:
        assert {"name", "minibn_ms", "torch_ms", "ratio", "floor_ms"} <= set(c)
        assert c["minibn_ms"] > 0 and c["torch_ms"] > 0 and c["ratio"] == pytest.approx(c["minibn_ms"] / c["torch_ms"])
        assert c["agreement"] <= c["tolerance"]
    assert "| autograd_overhead_4x4 | float32 |" in out_md.read_text()
    assert "autograd_overhead_4x4" in capsys.readouterr().out


def test_a_case_whose_results_differ_is_refused(bench):
    run, cases = bench
    case = cases.CASES_BY_NAME["autograd_overhead_4x4"]

    def build(lib, dtype):
        side = case.build(lib, dtype)
        if lib == "torch":
            honest = side.result
            side = cases.Side(side.step, lambda: [a * 1.01 for a in honest()])
        return side

    row = run.run_case(cases.Case(case.name, case.description, build), "float64", rounds=1)
    assert row["refused"] and row["minibn_ms"] is None and row["agreement"] > 1e-3


def test_floor_and_memory_of_a_small_step(bench):
    run, cases = bench
    row = run.run_case(cases.CASES_BY_NAME["train_step_batch_256"], "float32", rounds=1)
    assert row["floor_ms"] > 0 and row["ratio_to_floor"] > 0
    peak = run.memory_in_child("train_step_batch_256", "minibn", "float32", 1)
    assert peak is not None and peak >= 0


def test_agreement_ignores_noise_in_zero_gradients(bench):
    run, _ = bench
    big = np.ones(3)
    assert run._agreement([big, np.array([1e-9])], [big, np.array([-1e-9])]) < 1e-3
    assert run._agreement([big * 1.1], [big]) == pytest.approx(0.1)
