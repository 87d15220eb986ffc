"""Every op of the spec table against PyTorch in float64: values, gradients and second derivatives.

The same ``fn(lib, *xs)`` runs on both libraries. The second derivative is
the Hessian-vector product d/dx (v . J^T u), computed with create_graph=True
on both sides. Agreement is required to 1e-10 relative.
"""

import numpy as np
import pytest

import minibn as mb

from .conftest import requires_torch, torch
from .op_specs import SPECS

pytestmark = requires_torch
RTOL = 1e-10


def _rel(a, b):
    a, b = np.asarray(a), np.asarray(b)
    assert a.shape == b.shape, f"shape {a.shape} vs PyTorch {b.shape}"
    scale = max(np.abs(b).max(initial=0.0), 1e-300)
    return np.abs(a - b).max(initial=0.0) / scale


def _both(spec, arrays):
    m = [mb.tensor(a, requires_grad=True) for a in arrays]
    t = [torch.tensor(a, requires_grad=True) for a in arrays]
    return m, spec.fn(mb, *m), t, spec.fn(torch, *t)


@pytest.mark.parametrize("spec", [s for s in SPECS if s.torch], ids=lambda s: s.name)
def test_matches_torch(spec, rng):
    arrays = spec.inputs(rng)
    m, m_out, t, t_out = _both(spec, arrays)
    assert _rel(m_out.detach().numpy(), t_out.detach().numpy()) <= RTOL

    u = rng.standard_normal(m_out.shape)
    m_g = mb.grad(m_out, m, mb.tensor(u), create_graph=True)
    t_g = torch.autograd.grad(t_out, t, torch.tensor(u), create_graph=True)
    for a, b in zip(m_g, t_g):
        assert _rel(a.detach().numpy(), b.detach().numpy()) <= RTOL

    vs = [rng.standard_normal(a.shape) for a in arrays]
    m_dot = sum((g * mb.tensor(v)).sum() for g, v in zip(m_g, vs))
    t_dot = sum((g * torch.tensor(v)).sum() for g, v in zip(t_g, vs))
    # A graph-free gradient means a zero second derivative (linear ops, or relu's constant mask)
    m_h = mb.grad(m_dot, m, allow_unused=True) if m_dot.requires_grad else [None] * len(m)
    t_h = torch.autograd.grad(t_dot, t, allow_unused=True) if t_dot.requires_grad else [None] * len(t)
    for a, b, x in zip(m_h, t_h, arrays):
        a = np.zeros(x.shape) if a is None else a.numpy()
        b = np.zeros(x.shape) if b is None else b.numpy(force=True)
        if b.any():
            assert _rel(a, b) <= RTOL
        else:
            assert not a.any()


def test_result_type_matches_torch():
    """PyTorch's promotion: dimensioned tensors > 0-d tensors > Python scalars, by category."""
    dtypes = {"float32": torch.float32, "float64": torch.float64, "int64": torch.int64,
              "int32": torch.int32, "bool": torch.bool}
    operands = []
    for name, tdt in dtypes.items():
        for shape in [(2,), ()]:
            operands.append((mb.zeros(shape, dtype=name), torch.zeros(shape, dtype=tdt)))
    for scalar in [True, 2, 2.5, 1j]:
        operands.append((scalar, scalar))
    for ma, ta in operands:
        for mb_, tb in operands:
            if not isinstance(ma, mb.Tensor) and not isinstance(mb_, mb.Tensor):
                continue
            expected = str(torch.result_type(ta, tb)).replace("torch.", "")
            assert mb.result_type(ma, mb_).name == expected, (ma, mb_)


@pytest.mark.parametrize("op", ["add", "mul", "sub", "div"])
def test_mixed_dtype_arithmetic_matches_torch(op):
    cases = [(np.float32, (3,), np.float64, ()), (np.int64, (3,), np.float32, (3,)),
             (np.float32, (3,), np.float64, (3,)), (np.int64, (3,), np.int64, (3,))]
    for da, sa, db, sb in cases:
        a = np.arange(1, 1 + int(np.prod(sa))).reshape(sa).astype(da)
        b = np.full(sb, 2, dtype=db)
        m = getattr(mb.tensor(a), op)(mb.tensor(b))
        t = getattr(torch.tensor(a), op)(torch.tensor(b))
        assert m.dtype.name == str(t.dtype).replace("torch.", "")
        np.testing.assert_allclose(m.numpy(), t.numpy(), rtol=1e-6)
