"""The benchmark harness runs, writes what it promises, and refuses to time what disagrees.
(Times are reported by bench/run.py, never asserted here.)"""

import json
import pathlib
import sys

import numpy as np
import pytest

from .conftest import requires_torch
from .test_backends import gpu  # noqa: F401  (the CuPy stand-in fixture)

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
    run.main(["--quick", "--rounds", "1", "--threads", "1", "--device", "cpu", "--only", "autograd_overhead_4x4",
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

    def build(lib, dtype, device="cpu"):
        side = case.build(lib, dtype, device)
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


def test_the_hvp_is_counted_in_gradients_timed_in_the_same_rounds(bench):
    run, cases = bench
    case = cases.CASES_BY_NAME["hessian_vector_product_batch_1024"]
    row = run.run_case(case, "float32", rounds=1)
    for lib in ("minibn", "torch"):
        assert row[f"{lib}_baseline_ms"] > 0
        assert row[f"{lib}_over_baseline"] == pytest.approx(row[f"{lib}_ms"] / row[f"{lib}_baseline_ms"])
    row["target"] = case.target
    row["target_met"] = case.meets(row)
    shown = run._markdown_row(row)
    assert f"{row['minibn_over_baseline']:.2f}x (PyTorch {row['torch_over_baseline']:.2f}x)" in shown
    assert set(run._syncs("cpu")) >= {"minibn", "torch", "floor", "minibn_baseline", "torch_baseline"}


def test_the_ensemble_case_computes_what_pytorch_does_and_times_its_separate_baseline(bench):
    run, cases = bench
    case = cases.CASES_BY_NAME["ensemble_8_mlps_batch_64"]
    ours, theirs = (case.build(lib, np.dtype("float64")).result() for lib in ("minibn", "torch"))
    assert len(ours) == 1 + 2 * 3 + 2 * 2 and ours[1].shape == (8, 100, 784)  # the loss, then the stacked gradients
    assert run._agreement(ours, theirs) <= 1e-9
    row = run.run_case(case, "float32", rounds=1)
    assert not row["refused"] and row["floor_ms"] > 0 and row["minibn_baseline_ms"] > 0


def test_the_lanczos_of_both_libraries_computes_the_same_eigenvalues(bench):
    run, cases = bench
    case = cases.CASES_BY_NAME["top_eigenvalues_k10_batch_256"]
    ours, theirs = (case.build(lib, np.dtype("float64")).result() for lib in ("minibn", "torch"))
    assert ours[0].shape == (10,) and np.all(np.diff(ours[0]) <= 0)
    assert run._agreement(ours, theirs) <= 1e-9


def test_agreement_ignores_noise_in_zero_gradients(bench):
    run, _ = bench
    big = np.ones(3)
    assert run._agreement([big, np.array([1e-9])], [big, np.array([-1e-9])]) < 1e-3
    assert run._agreement([big * 1.1], [big]) == pytest.approx(0.1)


def test_cuda_without_a_gpu_is_refused_with_the_reason(bench, capsys, monkeypatch, tmp_path):
    run, _ = bench
    monkeypatch.setattr(run, "gpu_unavailable", lambda: "minibn: no GPU here")  # whatever this machine has
    with pytest.raises(SystemExit):
        run.main(["--device", "cuda", "--quick", "--only", "autograd_overhead_4x4",
                  "--json", str(tmp_path / "b.json"), "--markdown", str(tmp_path / "b.md")])
    assert "--device cuda: minibn: no GPU here" in capsys.readouterr().err
    assert not (tmp_path / "b.json").exists()


GPU_CASES = ["autograd_overhead_4x4", "linear_256x1024_to_1024", "batch_norm_256x1024", "lp_norm_pinf_10000x100",
             "softmax_cross_entropy_10000x10", "train_step_batch_256", "hessian_vector_product_batch_1024"]


@pytest.mark.parametrize("name", GPU_CASES)
def test_cases_build_on_the_gpu(bench, gpu, name):  # noqa: F811
    """minibn's side of each case on "cuda" (the CuPy stand-in) computes what it computes on the CPU;
    PyTorch's CUDA side needs a GPU."""
    _, cases = bench
    case = cases.CASES_BY_NAME[name]
    on_gpu = case.build("minibn", np.dtype("float64"), "cuda")
    on_cpu = case.build("minibn", np.dtype("float64"), "cpu")
    on_gpu.step()  # a training step updates the weights: both sides take one
    on_cpu.step()
    for a, b in zip(on_gpu.result(), on_cpu.result(), strict=True):
        assert isinstance(a, np.ndarray)
        np.testing.assert_allclose(a, b, rtol=1e-9, atol=1e-12)
    if case.floor is not None:
        case.floor(np.dtype("float32"), "cuda")()


def test_gpu_rows_get_a_table_of_their_own(bench):
    run, _ = bench
    row = {"name": "x", "dtype": "float32", "refused": False, "minibn_ms": 1.0, "torch_ms": 2.0, "ratio": 0.5}
    info = {"date": "d", "cpu": "c", "cores": 2, "threads": 2, "numpy": "n", "blas": "b", "blas_kernel": "k",
            "minibn": "m", "minibn_kernels": "numba", "torch": "t", "gpu": "H100", "cupy": "13", "torch_cuda": "12.8"}
    text = run.markdown([dict(row, device="cpu"), dict(row, device="cuda")], info, "cmd")
    assert text.count("| case | dtype |") == 2
    assert "On the GPU (H100): minibn on CuPy 13 against PyTorch on CUDA 12.8." in text


def test_a_forced_openblas_core_gets_the_steps_again_with_it_unset(bench, tmp_path, monkeypatch):
    run, _ = bench
    monkeypatch.setenv("OPENBLAS_CORETYPE", "Haswell")  # read by the child processes only: NumPy is loaded here
    monkeypatch.setattr(run, "NATIVE_CASES", ("linear_10000x784_to_100",))
    out_json, out_md = tmp_path / "b.json", tmp_path / "b.md"
    run.main(["--quick", "--rounds", "1", "--threads", "1", "--device", "cpu", "--only", "autograd_overhead_4x4",
              "linear_10000x784_to_100", "--json", str(out_json), "--markdown", str(out_md)])
    native = json.loads(out_json.read_text())["native"]
    assert native["forced"] == {"OPENBLAS_CORETYPE": "Haswell"} and native["kernel"] not in ("", "unknown")
    assert [(c["name"], c["dtype"]) for c in native["cases"]] == [("linear_10000x784_to_100", "float32")]
    assert native["cases"][0]["minibn_ms"] > 0
    text = out_md.read_text()
    assert "forces OpenBLAS's core (OPENBLAS_CORETYPE=Haswell)" in text and f"(kernel {native['kernel']})" in text
    page = tmp_path / "page.md"
    run.main(["--from", str(out_json), "--page", str(page)])
    assert f"(kernel {native['kernel']})" in page.read_text()


def test_nothing_forced_nothing_run_again(bench, monkeypatch):
    run, _ = bench
    for name in run.FORCED_KERNEL:
        monkeypatch.delenv(name, raising=False)
    assert run.native_kernel(list(run.NATIVE_CASES), rounds=1, threads=1) is None
