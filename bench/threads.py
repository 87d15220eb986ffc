"""Can parallel batch-norm kernels win inside a training step? Serial against parallel (numba
prange over blocks of rows) batch-norm forward + backward, timed between matrix products as a step
runs them, under each thread-pool arrangement:

    default          OpenBLAS with its defaults (idle threads spin before they sleep)
    timeout=1        OPENBLAS_THREAD_TIMEOUT=1: OpenBLAS's idle threads sleep almost at once
    workqueue        numba's workqueue threading layer (no OpenMP pool of its own)
    threadpoolctl    OpenBLAS limited to 1 thread while the kernels run, then given back

    python bench/threads.py [--rounds 9]

Each arrangement runs in a fresh process (the variables must be set before NumPy starts). The
result decides whether minibn's kernels stay serial; the table goes to stdout.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys

SHAPES = ((10000, 100), (256, 1024))
ARRANGEMENTS = {
    "default": {},
    "timeout=1": {"OPENBLAS_THREAD_TIMEOUT": "1"},
    "workqueue": {"NUMBA_THREADING_LAYER": "workqueue"},
    "threadpoolctl": {"MINIBN_BENCH_THREADPOOLCTL": "1"},
}

CHILD = r'''
import json, os, statistics, sys, time
import numpy as np
import numba
from numba import njit, prange

BLOCK = 256


@njit(parallel=True)
def parallel_forward(x, y):
    n, c = x.shape
    blocks = (n + BLOCK - 1) // BLOCK
    s1 = np.zeros((blocks, c))
    s2 = np.zeros((blocks, c))
    for b in prange(blocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            for j in range(c):
                s1[b, j] += x[i, j]
                s2[b, j] += x[i, j] * x[i, j]
    mean = s1.sum(0) / n
    invstd = 1.0 / np.sqrt(np.maximum(s2.sum(0) / n - mean * mean, 0.0) + 1e-5)
    for b in prange(blocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            for j in range(c):
                y[i, j] = (x[i, j] - mean[j]) * invstd[j]
    return mean, invstd


@njit(parallel=True)
def parallel_backward(dy, x, mean, invstd, dx):
    n, c = x.shape
    blocks = (n + BLOCK - 1) // BLOCK
    s1 = np.zeros((blocks, c))
    s2 = np.zeros((blocks, c))
    for b in prange(blocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            for j in range(c):
                s1[b, j] += dy[i, j]
                s2[b, j] += dy[i, j] * (x[i, j] - mean[j])
    mean_dy = s1.sum(0) / n
    mean_dy_xc_over_var = s2.sum(0) * invstd * invstd / n
    for b in prange(blocks):
        for i in range(b * BLOCK, min(n, (b + 1) * BLOCK)):
            for j in range(c):
                dx[i, j] = invstd[j] * (dy[i, j] - mean_dy[j] - (x[i, j] - mean[j]) * mean_dy_xc_over_var[j])


def main(shape, rounds):
    from minibn.kernels.batchnorm import numba_cpu
    limit = None
    if os.environ.get("MINIBN_BENCH_THREADPOOLCTL"):
        from threadpoolctl import threadpool_limits
        limit = threadpool_limits
    rng = np.random.default_rng(0)
    n, c = shape
    x = rng.standard_normal(shape).astype(np.float32)
    dy = rng.standard_normal(shape).astype(np.float32)
    w = rng.standard_normal((c, c)).astype(np.float32)
    y, dx = np.empty_like(x), np.empty_like(x)
    ones = np.ones(c, np.float32)

    def serial():
        y, mean, var, invstd = numba_cpu.forward(x, ones, ones * 0, 1e-5)
        numba_cpu.backward(dy, x, mean, invstd, ones)

    def parallel():
        mean, invstd = parallel_forward(x, y)
        parallel_backward(dy, x, mean, invstd, dx)

    def in_step(kernel):
        def step():
            x @ w  # a matrix product before and after, as in a training step
            if limit is not None:
                with limit(limits=1, user_api="blas"):
                    kernel()
            else:
                kernel()
            dy @ w.T
        return step

    steps = {"serial": in_step(serial), "parallel": in_step(parallel), "gemms only": in_step(lambda: None)}
    for s in steps.values():
        for _ in range(5):
            s()
    times = {k: [] for k in steps}
    for _ in range(rounds):
        for k, s in steps.items():
            start = time.perf_counter()
            for _ in range(20):
                s()
            times[k].append((time.perf_counter() - start) / 20 * 1e3)
    med = {k: statistics.median(v) for k, v in times.items()}
    print(json.dumps({"serial": med["serial"] - med["gemms only"], "parallel": med["parallel"] - med["gemms only"],
                      "gemms": med["gemms only"], "layer": numba.config.THREADING_LAYER,
                      "threads": numba.get_num_threads()}))


main(tuple(json.loads(sys.argv[1])), int(sys.argv[2]))
'''


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=9)
    args = parser.parse_args()
    print("batch norm forward + backward inside a step (ms, median; the step's two GEMMs subtracted), float32\n")
    print("| arrangement | shape | serial kernels | parallel kernels | parallel / serial | the two GEMMs |")
    print("| --- | --- | --- | --- | --- | --- |")
    for name, env in ARRANGEMENTS.items():
        for shape in SHAPES:
            out = subprocess.run([sys.executable, "-c", CHILD, json.dumps(shape), str(args.rounds)],
                                 env={**os.environ, **env}, capture_output=True, text=True, timeout=600)
            if out.returncode:
                print(f"| {name} | {shape} | failed: {out.stderr.strip().splitlines()[-1]} | | | |")
                continue
            r = json.loads(out.stdout.strip().splitlines()[-1])
            print(f"| {name} | {shape[0]}x{shape[1]} | {r['serial']:.3f} | {r['parallel']:.3f} | "
                  f"{r['parallel'] / r['serial']:.2f} | {r['gemms']:.3f} |")


if __name__ == "__main__":
    main()
