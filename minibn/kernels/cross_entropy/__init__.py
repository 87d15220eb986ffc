"""Softmax cross-entropy on arrays, per sample i of logits x (N, C) and class t_i:

    loss_i = logsumexp(x_i) - x_i[t_i],   computed as  top_i + log sum_j exp(x_ij - top_i) - x_i[t_i],

with top_i = max_j x_ij, together with softmax(x) for the backward (softmax - onehot).
Implementations: ``reference.py`` (NumPy, and CuPy: there is no CuPy kernel), ``numba_cpu.py``.
"""

from . import numba_cpu, reference  # noqa: F401
