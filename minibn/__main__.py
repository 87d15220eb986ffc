"""``python -m minibn``: what minibn runs on, and a self-check of its derivatives
(``python -m minibn --tour``: the guided tour of batch norm, :mod:`minibn.tour`).

The self-check differentiates a small network with minibn's batch-norm layer
(one node, closed-form backward) and compares its first, second and third
derivatives with complex-step finite differences, in float64. It also shows
why upstream gradients must be random: with all ones, the input gradient of
batch norm vanishes identically.
"""

from __future__ import annotations

import sys
import time

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn.gradcheck import compare_gradients, vjp_fn


def _network(x, w1, b1, gamma, beta, w2, target):
    """Linear -> batch norm (training mode, eps = 1e-5) -> tanh -> linear -> squared error."""
    h = F.linear(x, w1, b1)
    y = F.batch_norm(h, None, None, gamma, beta, training=True)
    return F.mse_loss(F.linear(y.tanh(), w2), target)


def selfcheck(seed: int = 0) -> bool:
    rng = np.random.default_rng(seed)
    batch, n_in, n_hidden, n_out = 8, 5, 4, 3
    arrays = [rng.standard_normal((batch, n_in)), rng.standard_normal((n_hidden, n_in)),
              rng.standard_normal(n_hidden), 1 + 0.1 * rng.standard_normal(n_hidden),
              0.1 * rng.standard_normal(n_hidden), rng.standard_normal((n_out, n_hidden)),
              rng.standard_normal((batch, n_out))]
    inputs = [mb.tensor(a, requires_grad=i < 6) for i, a in enumerate(arrays)]

    checks = []

    def run(label, fn, args, tol):
        start = time.perf_counter()
        reports = compare_gradients(fn, args, method="complex")
        scale = max(np.abs(r.numeric).max() for r in reports)
        err = max(r.max_abs_error for r in reports) / scale
        checks.append((label, err, err <= tol, time.perf_counter() - start))

    run("gradient (J^T u)", _network, inputs, 1e-12)
    second, args2 = vjp_fn(_network, inputs)
    run("second derivative (Hessian-vector)", second, args2, 1e-12)
    third, args3 = vjp_fn(second, args2)
    run("third derivative", third, args3, 1e-11)

    print("Self-check: a 5-4-3 network with a batch-norm layer, batch of 8, float64.")
    print("Each derivative is compared with complex-step finite differences (independent of backward).\n")
    print(f"  {'derivative':<38}{'max rel. error':>16}{'seconds':>10}   result")
    for label, err, ok, seconds in checks:
        print(f"  {label:<38}{err:>16.1e}{seconds:>10.2f}   {'ok' if ok else 'FAILED'}")

    x = mb.tensor(arrays[0][:, :4], requires_grad=True)
    bn = F.batch_norm(x, None, None, training=True)
    (g_ones,) = mb.grad(bn, x, mb.ones_like(bn), retain_graph=True)
    (g_rand,) = mb.grad(bn, x, mb.tensor(rng.standard_normal(bn.shape)))
    print("\nWhy upstream gradients must be random: the input gradient of batch norm is")
    print(f"  |dL/dx| = {np.abs(g_ones.numpy()).max():.1e} for dL/dy = ones   (vanishes: a check with ones sees nothing)")
    print(f"  |dL/dx| = {np.abs(g_rand.numpy()).max():.1e} for a random dL/dy")
    return all(ok for _, _, ok, _ in checks)


def main() -> int:
    if "--tour" in sys.argv[1:]:
        from . import tour

        return tour.main([a for a in sys.argv[1:] if a != "--tour"])
    for key, value in mb.backend_info().items():
        print(f"{key:>12}: {value}")
    print()
    return 0 if selfcheck() else 1


if __name__ == "__main__":
    sys.exit(main())
