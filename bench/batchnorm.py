"""Batch norm forward + backward (training mode, float32): minibn's kernel sets against PyTorch CPU.

    python bench/batchnorm.py [--threads 2] [--rounds 21]

Each case is the full user-facing path: a leaf x, y = batch_norm(x) with
affine parameters, y.backward(dy), at (10000, 100) and (256, 1024). Before
timing, the gradients of minibn and PyTorch are compared (float32, relative
1e-4); ratios are minibn / PyTorch medians from the same interleaved run.
"""

from __future__ import annotations

import argparse

from timing import interleaved, set_threads


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=21)
    args = parser.parse_args()
    set_threads(args.threads)

    import numpy as np
    import torch

    import minibn as mb

    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    print(f"minibn {mb.__version__}, torch {torch.__version__}, {args.threads} threads, float32, "
          f"{args.rounds} interleaved rounds; times in ms (median / min)\n")
    print("| shape | kernels | minibn | PyTorch | ratio |")
    print("| --- | --- | --- | --- | --- |")
    for shape in ((10000, 100), (256, 1024)):
        x_np = rng.standard_normal(shape).astype(np.float32)
        dy_np = rng.standard_normal(shape).astype(np.float32)
        t_bn = torch.nn.BatchNorm1d(shape[1])
        tx = torch.tensor(x_np, requires_grad=True)
        tdy = torch.tensor(dy_np)

        def torch_step():
            t_bn(tx).backward(tdy)
            tx.grad = t_bn.weight.grad = t_bn.bias.grad = None

        for kernels in ("numba", "numpy"):
            mb.set_kernels(kernels)
            m_bn = mb.nn.BatchNorm1d(shape[1])
            mx = mb.tensor(x_np, requires_grad=True)
            mdy = mb.tensor(dy_np)

            def minibn_step():
                m_bn(mx).backward(mdy)
                mx.grad = m_bn.weight.grad = m_bn.bias.grad = None

            m_bn(mx).backward(mdy)
            t_bn(tx).backward(tdy)
            scale = np.abs(tx.grad.numpy()).max()
            if np.abs(mx.grad.numpy() - tx.grad.numpy()).max() > 1e-4 * scale:
                raise SystemExit(f"{shape} {kernels}: gradients differ from PyTorch's; not timing")
            mx.grad = tx.grad = None
            repeat = max(1, int(2e6 // (shape[0] * shape[1])))
            times = interleaved({"minibn": minibn_step, "torch": torch_step}, args.rounds, repeat)
            (m_med, m_min), (t_med, t_min) = times["minibn"], times["torch"]
            print(f"| {shape} | {kernels} | {m_med * 1e3:.3f} / {m_min * 1e3:.3f} | {t_med * 1e3:.3f} / "
                  f"{t_min * 1e3:.3f} | {m_med / t_med:.2f} |")


if __name__ == "__main__":
    main()
