"""The main job's training step with and without fusion, and its GEMM floor, interleaved.

    python bench/fusion.py [--batch 10000] [--rounds 15] [--threads N]

``nn.Sequential`` runs Linear -> BatchNorm1d -> ReLU as two nodes (``net.fuse =
True``, the default) or as three (``net.fuse = False``); both compute the same
values and gradients. The table shows the median and minimum milliseconds per
step, and each median over the floor's (the step's 29 matrix products alone).
"""

from __future__ import annotations

import argparse
import os

from timing import interleaved, set_threads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--batch", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--threads", type=int, default=os.cpu_count())
    args = parser.parse_args()
    set_threads(args.threads)

    import numpy as np

    from cases import _train_step, _train_step_floor

    dtype = np.dtype(np.float32)
    steps = {"fused": _train_step(args.batch)("minibn", dtype).step,
             "unfused": _train_step(args.batch, fuse=False)("minibn", dtype).step,
             "GEMM floor": _train_step_floor(args.batch)(dtype)}
    times = interleaved(steps, rounds=args.rounds, repeat=2)
    floor = times["GEMM floor"][0]
    print(f"training step, batch {args.batch}, float32, {args.threads} threads ({args.rounds} rounds)")
    print("| step | median ms | min ms | median / floor |\n| --- | --- | --- | --- |")
    for name, (median, minimum) in times.items():
        print(f"| {name} | {median * 1e3:.2f} | {minimum * 1e3:.2f} | {median / floor:.2f} |")


if __name__ == "__main__":
    main()
