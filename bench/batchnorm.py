"""Batch norm forward + backward (training mode) with each CPU kernel set, against PyTorch CPU.

    python bench/batchnorm.py [--threads 2] [--rounds 21]

The cases and the method are those of ``bench/run.py`` (agreement checked before timing,
interleaved steady-state rounds); this script only repeats them for both kernel sets.
"""

from __future__ import annotations

import argparse

from timing import set_threads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    set_threads(args.threads)

    import torch

    import minibn as mb
    from cases import CASES_BY_NAME
    from run import run_case

    torch.set_num_threads(args.threads)
    print(f"minibn {mb.__version__}, torch {torch.__version__}, {args.threads} threads, float32, "
          f"{args.rounds} interleaved rounds; median ms\n")
    print("| case | kernels | minibn | PyTorch | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for name in ("batch_norm_10000x100", "batch_norm_256x1024"):
        for kernels in ("numba", "numpy"):
            mb.set_kernels(kernels)
            row = run_case(CASES_BY_NAME[name], "float32", args.rounds)
            if row["refused"]:
                print(f"| {name} | {kernels} | refused: results differ by {row['agreement']:.1e} | | |")
            else:
                print(f"| {name} | {kernels} | {row['minibn_ms']:.3f} | {row['torch_ms']:.3f} | {row['ratio']:.2f} |")


if __name__ == "__main__":
    main()
