"""The machinery of the audit: entries, verdicts decided by numbers, and three-way comparisons.

Every gradient or Jacobian is computed three ways in float64: the document's
closed form (NumPy, written from the formula), minibn's autodiff, and finite
differences independent of both (complex step where the function is
analytic, Richardson-extrapolated central differences elsewhere). A verdict
comes from measured numbers: each check measures residuals or bound slacks
and turns them into one, with ``identity_verdict`` / ``bound_verdict`` or a
rule of its own stated in the check (a claim that cannot be measured is
NOT-CHECKABLE, with the reason).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from .. import grad as _grad
from ..tensor import Tensor, _wrap
from ..gradcheck import numerical_vjp

VERDICTS = ("HOLDS", "HOLDS-WITH-CORRECTION", "CONDITIONAL", "FALSE", "BOUND-HOLDS", "BOUND-FAILS",
            "NOT-CHECKABLE")
KEYS = ("id", "seed", "where", "as_written", "interpretation", "verdict", "corrected", "residual", "evidence")

# An identity holds when it matches finite differences to their own precision.
TOL = {"complex": 1e-12, "exact": 1e-12}
SEEDS = {
    "000": "000_363efac4d95cd1a9.txt",
    "001": "001_27cc233fd8ee84d1.txt",
    "002": "002_9d3d2ff613580f1a.txt",
    "003": "003_deabf5f2de76cc47.txt",
    "004": "004_3beea672259f3afd.txt",
}


@dataclasses.dataclass
class Entry:
    id: str
    seed: str
    where: str
    as_written: str
    interpretation: str
    verdict: str
    corrected: str | None
    residual: float | None
    evidence: str

    def as_dict(self) -> dict:
        return {k: getattr(self, k) for k in KEYS}


@dataclasses.dataclass
class Formula:
    """What a document states, and how it is read; ``check`` measures it and returns the rest."""

    id: str
    seed: str
    where: str
    as_written: str
    interpretation: str
    check: callable

    def run(self) -> Entry:
        verdict, corrected, residual, evidence = self.check()
        if verdict not in VERDICTS:
            raise ValueError(f"{self.id}: unknown verdict {verdict!r}")
        return Entry(self.id, SEEDS[self.seed], self.where, self.as_written, self.interpretation, verdict,
                     corrected, None if residual is None else float(residual), evidence)


REGISTRY: list = []


def formula(id, seed, where, as_written, interpretation):
    """Register the decorated function as the check of one formula."""
    def register(check):
        REGISTRY.append(Formula(id, seed, where, as_written, interpretation, check))
        return check
    return register


# -- verdicts ------------------------------------------------------------------------------


def identity_verdict(as_written: float, corrected: float | None, tol: float) -> str:
    """HOLDS if the formula as written matches, HOLDS-WITH-CORRECTION if only the corrected
    form does, FALSE if neither."""
    if as_written <= tol:
        return "HOLDS"
    if corrected is not None and corrected <= tol:
        return "HOLDS-WITH-CORRECTION"
    return "FALSE"


def bound_verdict(slacks: np.ndarray, tol: float = 1e-12) -> tuple:
    """(verdict, worst normalized slack, number of violations) of a family of bound instances.

    A slack is (right side - left side) / max(|left|, |right|); negative means violated.
    """
    slacks = np.asarray(slacks, dtype=float)
    violations = int((slacks < -tol).sum())
    return ("BOUND-FAILS" if violations else "BOUND-HOLDS"), float(slacks.min()), violations


def slack(lhs, rhs) -> float:
    """Normalized slack of lhs <= rhs."""
    scale = max(abs(lhs), abs(rhs), 1e-300)
    return (rhs - lhs) / scale


# -- numbers -----------------------------------------------------------------------------------


def rel(a, b) -> float:
    """max |a - b| / max |b|: the relative residual of a against the reference b."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if a.shape != b.shape:
        return float("inf")
    return float(np.abs(a - b).max(initial=0.0) / max(np.abs(b).max(initial=0.0), 1e-300))


def const(array) -> Tensor:
    """A float64 tensor that takes no gradient."""
    return _wrap(np.asarray(array, dtype=np.float64))


def leaf(array):
    t = _wrap(np.array(array, dtype=np.float64))
    t.requires_grad = True
    return t


def gradients(loss, arrays: list, method: str = "complex") -> tuple:
    """d loss / d arrays two ways: minibn's autodiff and finite differences (``method``).

    ``loss`` takes minibn tensors and returns a scalar tensor."""
    inputs = [leaf(a) for a in arrays]
    auto = [g.numpy() for g in _grad(loss(*inputs), inputs)]
    numeric = numerical_vjp(loss, inputs, [np.array(1.0)], method=method)
    return auto, numeric


def hvp_fd(loss, array, v) -> np.ndarray:
    """The Hessian of the scalar ``loss`` at ``array`` times ``v``, by complex-step differences of
    minibn's gradient: the check of double backward that does not use it."""
    return numerical_vjp(lambda y: _grad(loss(y), y, create_graph=True)[0], [leaf(array)], [v],
                         method="complex")[0]


def hessian(loss, array) -> tuple:
    """(gradient, Hessian) of the scalar ``loss`` at the 1-D ``array`` by minibn's double backward:
    one Hessian-vector product per unit vector."""
    x = leaf(array)
    (g,) = _grad(loss(x), x, create_graph=True)
    n = len(array)
    rows = [_grad((g * _wrap(np.eye(n)[k])).sum(), x, retain_graph=True)[0].numpy() for k in range(n)]
    return g.detach().numpy(), np.array(rows)


def jacobian(fn, array, method: str = "complex") -> tuple:
    """The Jacobian (outputs x inputs, flattened) of ``fn`` at ``array`` two ways: autodiff
    (one backward per output) and finite differences."""
    x = leaf(array)
    out = fn(x)
    m = out.numel()
    auto, numeric = np.zeros((m, x.numel())), np.zeros((m, x.numel()))
    for k in range(m):
        unit = np.zeros(out.shape)
        unit.flat[k] = 1.0
        (g,) = _grad(out, x, _wrap(unit), retain_graph=True)
        auto[k] = g.numpy().ravel()
        numeric[k] = numerical_vjp(fn, [x], [unit], method=method)[0].ravel()
    return auto, numeric


def three_way(closed: dict, auto, numeric) -> tuple:
    """Residuals of each closed form against finite differences, and of autodiff against them."""
    residuals = {name: rel(value, numeric) for name, value in closed.items()}
    return residuals, rel(auto, numeric)


def fmt(x) -> str:
    return f"{x:.1e}"
