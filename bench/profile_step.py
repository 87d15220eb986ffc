"""Where the main job's training step spends its time: the functions with the most own time.

    python bench/profile_step.py [--batch 10000] [--steps 10] [--top 12] [--threads N] [--unfused]

Runs minibn's step (forward, backward, SGD update of the depth-10 BN MLP, float32) under
cProfile and lists milliseconds per step by function, own time only: a NumPy matrix product
or a numba kernel counts towards the Python function that calls it, so ``linalg.py`` and
``linear.py`` rows are the matrix products, ``numba_cpu.py`` rows (one per operation package of ``minibn.kernels``) the fused kernels.
cProfile adds a little to every Python call; the total is a few percent above an
unprofiled step. First, the same number of unprofiled steps gives the plain time per step and
the minor page faults per step (memory the allocator handed back to the system and the step
took again; 0 once the allocator keeps the step's arrays).
"""

from __future__ import annotations

import argparse
import os

from timing import set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--steps", type=int, default=10)
    parser.add_argument("--top", type=int, default=12)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    parser.add_argument("--unfused", action="store_true", help="run Linear, BatchNorm1d and ReLU as separate nodes")
    args = parser.parse_args()
    if args.steps < 1 or args.top < 1:
        parser.error("--steps and --top must be at least 1")
    set_threads(args.threads)

    import cProfile
    import pstats
    import resource
    import time

    import numpy as np

    from cases import _train_step

    step = _train_step(args.batch, fuse=not args.unfused)("minibn", np.dtype(np.float32)).step
    for _ in range(3):  # compile the kernels, fill the allocator's caches
        step()
    faults = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    plain_ms = (time.perf_counter() - start) / args.steps * 1e3
    faults = (resource.getrusage(resource.RUSAGE_SELF).ru_minflt - faults) / args.steps
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(args.steps):
        step()
    profiler.disable()

    stats = pstats.Stats(profiler).stats  # {(file, line, name): (calls, primitive calls, own, cumulative, callers)}
    rows = sorted(((own, calls, key) for key, (_, calls, own, _, _) in stats.items()), reverse=True)
    total = sum(own for own, _, _ in rows)
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    print(f"training step, batch {args.batch}, float32, {'unfused' if args.unfused else 'fused'}, "
          f"{args.threads} threads: {plain_ms:.1f} ms per step, {faults:g} minor page faults per step; "
          f"profiled: {total / args.steps * 1e3:.1f} ms per step ({args.steps} steps)")
    print("| function | calls per step | own ms per step | share |\n| --- | --- | --- | --- |")
    for own, calls, (file, line, name) in rows[:args.top]:
        where = os.path.relpath(file, root) if file.startswith(root) else file
        print(f"| {where}:{line} {name} | {calls / args.steps:g} | {own / args.steps * 1e3:.2f} | "
              f"{own / total:.0%} |")
    rest = sum(own for own, _, _ in rows[args.top:])
    print(f"| everything else ({len(rows) - args.top} functions) | | {rest / args.steps * 1e3:.2f} | "
          f"{rest / total:.0%} |")


if __name__ == "__main__":
    main()
