"""Autograd overhead: forward + backward of a few ops on 4x4 tensors, minibn against PyTorch CPU.

    python bench/overhead.py [--rounds 15] [--threads 1]

At this size the arithmetic is negligible and the time is the engine's own
bookkeeping per op. Both libraries run the same expression, interleaved
round by round (A B A B ...) so that machine drift cancels; the table shows
the median and minimum microseconds per step and the ratio of medians, and
then the step split into its forward (building the graph) and the rest (the
backward walk and its rules), medians from the same rounds.
"""

from __future__ import annotations

import argparse

from timing import interleaved, set_threads

CASES = {
    # name: (expression over (x, w, b), description)
    "mlp_layer": (lambda x, w, b: ((x @ w + b).tanh() * x).sum(), "((x @ w + b).tanh() * x).sum()"),
    "elementwise": (lambda x, w, b: ((x * w).exp() / (b + 2) - x).sum(), "((x * w).exp() / (b + 2) - x).sum()"),
    "bn_by_hand": (lambda x, w, b: ((x - x.mean(0)) / (x.var(0) + 1e-5).sqrt() * w).sum(),
                   "((x - x.mean(0)) / (x.var(0) + 1e-5).sqrt() * w).sum()"),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--repeat", type=int, default=2000, help="steps per timed round")
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    set_threads(args.threads)

    import numpy as np

    import minibn as mb
    from cases import _grad_side, _tensor  # after set_threads: it imports NumPy

    try:
        import torch
    except ImportError:
        raise SystemExit("PyTorch is needed for the comparison: pip install torch==2.13.0") from None
    torch.set_num_threads(args.threads)

    rng = np.random.default_rng(0)
    arrays = [rng.standard_normal(s).astype(np.float32) for s in ((4, 4), (4, 4), (4,))]
    print(f"minibn {mb.__version__}, numpy {np.__version__}, torch {torch.__version__}, "
          f"{args.threads} thread(s), float32, {args.rounds} interleaved rounds of {args.repeat} steps")
    print("\n| case | expression | minibn median (min) us | torch median (min) us | ratio | "
          "forward minibn / torch us | backward minibn / torch us |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, (expr, text) in CASES.items():
        steps = {}
        for lib in ("minibn", "torch"):
            inputs = [_tensor(lib, a, True) for a in arrays]
            steps[lib] = _grad_side(lambda inputs=inputs: expr(*inputs).backward(), inputs).step
            steps[lib + " forward"] = lambda inputs=inputs: expr(*inputs)
        times = interleaved(steps, args.rounds, args.repeat, warmup=args.repeat // 4)
        us = {k: tuple(v * 1e6 for v in t) for k, t in times.items()}
        (m_med, m_min), (t_med, t_min) = us["minibn"], us["torch"]
        m_fwd, t_fwd = us["minibn forward"][0], us["torch forward"][0]
        print(f"| {name} | `{text}` | {m_med:.1f} ({m_min:.1f}) | {t_med:.1f} ({t_min:.1f}) | {m_med / t_med:.2f} | "
              f"{m_fwd:.1f} / {t_fwd:.1f} | {m_med - m_fwd:.1f} / {t_med - t_fwd:.1f} |")


if __name__ == "__main__":
    main()
