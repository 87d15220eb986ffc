"""minibn against PyTorch eager, side by side in one run: on the CPU, and on the GPU (minibn on
CuPy against PyTorch on CUDA) when both can use one.

    python bench/run.py [--quick] [--threads N] [--device auto|cpu|cuda] [--json PATH]
                        [--markdown PATH] [--only NAME ...] [--page docs/results/benchmark.md]
    python bench/run.py --from bench/results/<stamp>.json --page docs/results/benchmark.md

Method: the same thread count for both libraries (NumPy's BLAS, numba and
torch); before a case is timed, minibn's and PyTorch's results (gradients)
must agree to a stated tolerance, else the case is reported as refused;
warm-up, then interleaved rounds (minibn, PyTorch, floor, minibn, ...) so
that machine drift lands on all alike; median and minimum per case; every
ratio comes from the same rounds (the Hessian-vector product's cost in
gradients too: each library's gradient runs in the HVP case's rounds, as
its baseline). Peak memory per case is measured in a
separate process for each library: how far the resident set rises during
one step above what the process holds once the inputs exist and freed
memory has been returned to the system (on the CPU only). On the GPU every
timed call ends by waiting for the device (``mb.synchronize``,
``torch.cuda.synchronize``). Results go to stdout and to bench/results/
(JSON and markdown), with the machine they were measured on and the OpenBLAS kernel that ran;
where the environment forces one (OPENBLAS_CORETYPE), the steps of NATIVE_CASES run again in a
child process with it unset, and both tables are reported; ``--page`` also writes the table as
a documentation page, and ``--from`` writes that page from a saved run without running anything.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from timing import interleaved, set_threads

HERE = Path(__file__).resolve().parent
TOLERANCE = {"float32": 1e-2, "float64": 1e-9}
FORCED_KERNEL = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")  # an environment's choice of OpenBLAS core, unset together
NATIVE_CASES = ("linear_10000x784_to_100", "train_step_full_batch", "normalizations_epoch_bn")  # see _agreement; float32 rounding through 10 BN layers reaches 3e-3


def _agreement(a_list, b_list) -> float:
    """max |minibn - torch| / size, per array; the size is the array's largest entry, or a thousandth of
    the largest entry of all arrays if that is more (a bias followed by batch norm has a zero gradient,
    which both libraries compute as rounding noise)."""
    import numpy as np

    pairs = [(np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)) for a, b in zip(a_list, b_list)]
    if any(a.shape != b.shape for a, b in pairs) or len(a_list) != len(b_list):
        return float("inf")
    overall = max(np.abs(b).max(initial=0.0) for _, b in pairs)
    return max(float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-3 * overall, 1e-30))
               for a, b in pairs)


def machine_info(threads: int, gpu: bool = False) -> dict:
    import ctypes
    import platform

    import numpy as np
    import torch

    import minibn as mb

    cpu = "unknown"
    if os.path.exists("/proc/cpuinfo"):
        for line in open("/proc/cpuinfo"):
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    kernel = "unknown"
    np.ones((2, 2)) @ np.ones((2, 2))
    if os.path.exists("/proc/self/maps"):
        paths = {line.split()[-1] for line in open("/proc/self/maps") if "openblas" in line.lower()}
        for path in paths:
            lib = ctypes.CDLL(path)
            for symbol in ("openblas_get_corename", "scipy_openblas_get_corename64_", "openblas_get_corename64_"):
                if hasattr(lib, symbol):
                    fn = getattr(lib, symbol)
                    fn.restype = ctypes.c_char_p
                    kernel = fn().decode()
    info = mb.backend_info()
    gpu_info = {}
    if gpu:
        gpu_info = {"gpu": info.get("gpu"), "cupy": info.get("cupy"), "torch_cuda": torch.version.cuda}
    return {**gpu_info,
        "date": datetime.datetime.now().isoformat(timespec="seconds"),
        "cpu": cpu, "cores": os.cpu_count(), "threads": threads, "platform": platform.platform(),
        "python": platform.python_version(), "numpy": np.__version__, "blas": info["blas"],
        "blas_kernel": kernel, "numba": info["numba"], "minibn": mb.__version__,
        "minibn_kernels": info["cpu kernels"], "torch": torch.__version__,
    }


def gpu_unavailable() -> str | None:
    """Why the GPU comparison cannot run (None when it can): it needs CuPy with a GPU for minibn and a
    CUDA build of PyTorch."""
    import torch

    from minibn import devices

    try:
        devices.module_for("cuda")
    except RuntimeError as exc:
        return f"minibn: {exc}"
    if not torch.cuda.is_available():
        return f"PyTorch {torch.__version__} has no usable CUDA"
    return None


def _synced(step, sync):
    def timed():
        step()
        sync()

    return timed


def _syncs(device: str) -> dict:
    """What each side must call after a step so that the timer sees the work done."""
    import minibn as mb

    if device == "cpu":
        nothing = lambda: None  # noqa: E731
        return dict.fromkeys(("minibn", "torch", "floor", "minibn_baseline", "torch_baseline"), nothing)
    import torch

    minibn_sync = lambda: mb.synchronize("cuda")  # noqa: E731
    return {"minibn": minibn_sync, "torch": torch.cuda.synchronize, "floor": minibn_sync,
            "minibn_baseline": minibn_sync, "torch_baseline": torch.cuda.synchronize}


def run_case(case, dtype: str, rounds: int, device: str = "cpu"):
    import numpy as np

    sides = {lib: case.build(lib, np.dtype(dtype), device) for lib in ("minibn", "torch")}
    agreement = _agreement(sides["minibn"].result(), sides["torch"].result())
    row = {"name": case.name, "dtype": dtype, "device": device, "description": case.description,
           "agreement": agreement, "tolerance": TOLERANCE[dtype]}
    if not agreement <= TOLERANCE[dtype]:
        row.update(refused=True, minibn_ms=None, torch_ms=None, ratio=None, floor_ms=None)
        return row
    steps = {lib: side.step for lib, side in sides.items()}
    if case.floor is not None:
        steps["floor"] = case.floor(np.dtype(dtype), device)
    if case.baseline is not None:
        for lib in ("minibn", "torch"):
            steps[f"{lib}_baseline"] = case.baseline(lib, np.dtype(dtype), device).step
    if device != "cpu":
        syncs = _syncs(device)
        steps = {name: _synced(step, syncs[name]) for name, step in steps.items()}
    times = interleaved(steps, min(rounds, case.rounds or rounds), case.repeat, case.warmup)
    row.update(
        refused=False,
        minibn_ms=times["minibn"][0] * 1e3, torch_ms=times["torch"][0] * 1e3,
        minibn_min_ms=times["minibn"][1] * 1e3, torch_min_ms=times["torch"][1] * 1e3,
        ratio=times["minibn"][0] / times["torch"][0],
        floor_ms=times["floor"][0] * 1e3 if "floor" in times else None,
    )
    if row["floor_ms"]:
        row["ratio_to_floor"] = row["minibn_ms"] / row["floor_ms"]
    if case.baseline is not None:
        for lib in ("minibn", "torch"):
            row[f"{lib}_baseline_ms"] = times[f"{lib}_baseline"][0] * 1e3
            row[f"{lib}_over_baseline"] = row[f"{lib}_ms"] / row[f"{lib}_baseline_ms"]
    return row


def memory_in_child(name: str, lib: str, dtype: str, threads: int) -> float | None:
    """Peak memory (MB) of one step of one case and library (after a first one), in a fresh process."""
    cmd = [sys.executable, str(HERE / "run.py"), "--threads", str(threads), "--memory-child", name, lib, dtype]
    out = subprocess.run(cmd, capture_output=True, text=True, cwd=str(HERE), timeout=600)
    if out.returncode != 0:
        return None
    return json.loads(out.stdout.strip().splitlines()[-1])["peak_mb"]


def _rss_kb(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    raise RuntimeError(f"{field} not in /proc/self/status")


def _memory_child(name, lib, dtype):
    """Print the rise of the peak resident set during one step of one case: after the inputs are
    built and a first step has run, freed memory is handed back to the system (``malloc_trim``)
    and the high-water mark reset (``/proc/self/clear_refs``)."""
    import numpy as np

    from cases import CASES_BY_NAME

    import ctypes

    side = CASES_BY_NAME[name].build(lib, np.dtype(dtype))
    side.step()  # first call: lazy compilation and caches are not the step's memory
    ctypes.CDLL("libc.so.6").malloc_trim(0)  # hand freed memory back, so the step must take it again
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")  # reset VmHWM to the current resident set
        field = "VmHWM"
    except OSError:  # not allowed here: the resident set after the step, a lower bound
        field = "VmRSS"
    before = _rss_kb("VmRSS")
    side.step()
    print(json.dumps({"peak_mb": max(_rss_kb(field) - before, 0) / 1024, "measure": field}))


def markdown(rows, info, command, native: dict | None = None) -> str:
    lines = [f"Measured {info['date']} with `{command}`: {info['cpu']}, {info['cores']} cores, "
             f"{info['threads']} threads each; NumPy {info['numpy']} ({info['blas']}, kernel "
             f"{info['blas_kernel']}), minibn {info['minibn']} ({info['minibn_kernels']} kernels), PyTorch "
             f"{info['torch']}. Medians of interleaved rounds, ms."]
    for device in dict.fromkeys(r.get("device", "cpu") for r in rows):
        if device != "cpu":
            lines += ["", f"On the GPU ({info.get('gpu', device)}): minibn on CuPy {info.get('cupy', '')} against "
                          f"PyTorch on CUDA {info.get('torch_cuda', '')}."]
        lines += ["", "| case | dtype | minibn | PyTorch | minibn / PyTorch | floor | minibn / floor | "
                      "peak MB minibn / PyTorch | target |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
        lines += [_markdown_row(r) for r in rows if r.get("device", "cpu") == device]
    if native:
        forced = ", ".join(f"{k}={v}" for k, v in native["forced"].items())
        lines += ["", f"This environment forces OpenBLAS's core ({forced}), so the times above are those of the "
                      f"{info['blas_kernel']} kernel; a user's machine runs its native one. The steps again with "
                      f"{' and '.join(FORCED_KERNEL)} unset in that command alone (kernel {native['kernel']}), float32:",
                  "", "| case | dtype | minibn | PyTorch | minibn / PyTorch | floor | minibn / floor | "
                      "peak MB minibn / PyTorch | target |",
                  "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
                  *[_markdown_row(r) for r in native["cases"]]]
    return "\n".join(lines)


def native_kernel(cases: list, rounds: int, threads: int) -> dict | None:
    """Where the environment forces an OpenBLAS core: ``cases`` (of NATIVE_CASES) timed again in a
    child process without the forcing variables, {"forced", "kernel", "cases"}; None where nothing
    is forced or none of those cases runs."""
    forced = {k: os.environ[k] for k in FORCED_KERNEL if k in os.environ}
    names = [c for c in NATIVE_CASES if c in cases]
    if not forced or not names:
        return None
    env = {k: v for k, v in os.environ.items() if k not in FORCED_KERNEL}
    with tempfile.TemporaryDirectory(prefix="minibn-bench-") as folder:
        saved = Path(folder) / "native.json"
        command = [sys.executable, str(HERE / "run.py"), "--quick", "--device", "cpu", "--threads", str(threads),
                   "--rounds", str(rounds), "--only", *names, "--json", str(saved), "--markdown",
                   str(Path(folder) / "native.md")]
        subprocess.run(command, check=True, env=env, cwd=str(HERE), stdout=subprocess.DEVNULL)
        child = json.loads(saved.read_text())
    return {"forced": forced, "kernel": child["machine"]["blas_kernel"], "cases": child["cases"]}


def _markdown_row(r) -> str:
    if r["refused"]:
        return (f"| {r['name']} | {r['dtype']} | refused: results differ by {r['agreement']:.1e} "
                f"(tolerance {r['tolerance']:.0e}) | | | | | | |")
    floor = f"{r['floor_ms']:.2f}" if r.get("floor_ms") else ""
    to_floor = f"{r['ratio_to_floor']:.2f}" if r.get("ratio_to_floor") else ""
    memory = ""
    if r.get("minibn_peak_mb") is not None and r.get("torch_peak_mb") is not None:
        memory = f"{r['minibn_peak_mb']:.1f} / {r['torch_peak_mb']:.1f}"
    target = r.get("target", "")
    if target and "minibn_over_baseline" in r:  # the measure the target is stated in
        target += f": {r['minibn_over_baseline']:.2f}x (PyTorch {r['torch_over_baseline']:.2f}x)"
    if target and r.get("target_met") is not None:
        target += " (met)" if r["target_met"] else " (missed)"
    return (f"| {r['name']} | {r['dtype']} | {r['minibn_ms']:.3f} | {r['torch_ms']:.3f} | "
            f"{r['ratio']:.2f} | {floor} | {to_floor} | {memory} | {target} |")


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="float32 only, fewer rounds, no memory (< 2 min)")
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--json", metavar="PATH")
    parser.add_argument("--markdown", metavar="PATH")
    parser.add_argument("--only", nargs="+", metavar="NAME")
    parser.add_argument("--rounds", type=int, default=None)
    parser.add_argument("--device", choices=("auto", "cpu", "cuda"), default="auto",
                        help="auto: the CPU, and the GPU too when minibn (CuPy) and PyTorch can both use one")
    parser.add_argument("--page", metavar="PATH", help="also write the table as a documentation page "
                                                       "(docs/results/benchmark.md)")
    parser.add_argument("--from", dest="saved", metavar="JSON", help="run nothing: write --page from this saved "
                                                                   "run (bench/results/<stamp>.json)")
    parser.add_argument("--memory-child", nargs=3, metavar=("CASE", "LIB", "DTYPE"), help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.saved:
        if not args.page:
            parser.error("--from: give --page PATH, the page to write from the saved run")
        from minibn import fileio

        saved = fileio.load_json(args.saved)
        write_page(args.page, markdown(saved["cases"], saved["machine"], saved["command"], saved.get("native")),
                   Path(args.saved))
        print(f"page: {args.page}")
        return
    set_threads(args.threads)
    if args.memory_child:
        if args.memory_child[1] == "torch":
            import torch

            torch.set_num_threads(args.threads)
        return _memory_child(*args.memory_child)

    import torch

    import minibn  # noqa: F401  (imported before timing so that no case pays for it)
    from cases import CASES, CASES_BY_NAME

    torch.set_num_threads(args.threads)
    unknown = sorted(set(args.only or ()) - set(CASES_BY_NAME))
    if unknown:
        parser.error(f"unknown cases: {', '.join(unknown)}; known: {', '.join(CASES_BY_NAME)}")
    cases = [c for c in CASES if not args.only or c.name in args.only]
    dtypes = ["float32"] if args.quick else ["float32", "float64"]
    rounds = args.rounds or (5 if args.quick else 15)
    why_no_gpu = gpu_unavailable() if args.device != "cpu" else None
    if args.device == "cuda" and why_no_gpu:
        parser.error(f"--device cuda: {why_no_gpu}")
    devices = {"cpu": ["cpu"], "cuda": ["cuda"], "auto": ["cpu"] if why_no_gpu else ["cpu", "cuda"]}[args.device]
    if args.device == "auto" and why_no_gpu:
        print(f"CPU only: {why_no_gpu}", flush=True)
    info = machine_info(args.threads, gpu="cuda" in devices)
    command = "python bench/run.py" + "".join(f" {a}" for a in (argv if argv is not None else sys.argv[1:]))
    rows = []
    for device in devices:
        for dtype in dtypes:
            for case in cases:
                row = run_case(case, dtype, rounds, device)
                targeted = dtype == "float32" and device == "cpu"  # the targets are this machine's CPU's
                row["target"] = case.target if targeted else ""
                if not args.quick and not row["refused"] and device == "cpu":
                    row["minibn_peak_mb"] = memory_in_child(case.name, "minibn", dtype, args.threads)
                    row["torch_peak_mb"] = memory_in_child(case.name, "torch", dtype, args.threads)
                if case.meets and targeted and not row["refused"]:
                    row["target_met"] = bool(case.meets(row))
                rows.append(row)
                print(markdown([row], info, command).splitlines()[-1], flush=True)
    native = native_kernel([c.name for c in cases], rounds, args.threads) if "cpu" in devices else None
    table = markdown(rows, info, command, native)
    print("\n" + table)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    results = HERE / "results"
    json_path = Path(args.json) if args.json else results / f"{stamp}.json"
    md_path = Path(args.markdown) if args.markdown else results / f"{stamp}.md"
    from minibn import fileio

    fileio.save_json(json_path, {"machine": info, "command": command, "cases": rows,
                                 **({"native": native} if native else {})})
    fileio.write_atomic(md_path, (table + "\n").encode())
    print(f"\nJSON: {json_path}\nmarkdown: {md_path}")
    if args.page:
        write_page(args.page, table, json_path)
        print(f"page: {args.page}")


def write_page(path, table: str, source: Path) -> None:
    """The documentation page of one run's table (``source``: the run's JSON, named on the page)."""
    from minibn import fileio

    try:
        source = source.resolve().relative_to(HERE.parent)
    except ValueError:
        pass
    text = ("# Speed: the latest run\n\n"
            f"*Generated from the run saved in `{source}` (again: `python bench/run.py --from {source} --page "
            f"{path}`); do not edit it by hand.*\n\n" + table + "\n")
    fileio.write_atomic(path, text.encode())


if __name__ == "__main__":
    main()
