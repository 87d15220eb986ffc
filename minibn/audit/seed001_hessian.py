"""Seed 001, equations (9)-(16): the second-order (Hessian) part of sec. 2.2, in the setting of
``seed001.py``."""

from __future__ import annotations

import numpy as np

from .. import grad as _grad
from .core import TOL, hessian, hvp_fd, bound_verdict, fmt, formula, identity_verdict, leaf, rel, slack, three_way
from .seed001 import D, M, Instance, _const, _instances, _rng, _scaled


# -- (9)-(16): second order ----------------------------------------------------------------------------


@formula("F001-E9", "001", "eq. (9)",
         "L(y + dy) = L(y) + grad L(y)^T dy + (1/2) dy^T H dy + o(||dy||^2)",
         "L-hat of the setting, H its Hessian from minibn's double backward; the remainder divided by "
         "||dy||^2 must vanish as dy -> 0 (dy = t u, t = 1e-1 ... 1e-4)")
def _e9():
    inst = _instances("e9", 1)[0]
    rng = _rng("e9-dir")
    u = rng.standard_normal(M)
    g, H = inst.grad_y(), inst.hess_y()
    base = inst.loss_y(_const(inst.y)).item()
    ratios = []
    for t in (1e-1, 1e-2, 1e-3, 1e-4):
        value = inst.loss_y(_const(inst.y + t * u)).item()
        ratios.append(abs(value - base - t * g @ u - 0.5 * t * t * u @ H @ u) / (t * t * u @ u))
    shrinking = all(b < a / 5 for a, b in zip(ratios[:-1], ratios[1:-1])) and ratios[-1] < 1e-3
    verdict = "HOLDS" if shrinking else "FALSE"
    hv_fd = hvp_fd(inst.loss_y, inst.y, u)
    return verdict, None, ratios[-1], (
        "remainder / ||dy||^2 = " + ", ".join(f"{r:.2g}" for r in ratios)
        + f" for t = 1e-1 ... 1e-4 (O(t): L-hat is smooth). Hessian from double backward vs complex-step "
        f"differences of the gradient: {fmt(rel(H @ u, hv_fd))}")


def _e10_sides(inst, first_term_gradient):
    v = inst.grad_y()
    A = inst.hess_y()
    lhs = float(v @ A @ v)
    p = first_term_gradient(inst, v)
    rhs = (inst.gamma ** 2 / inst.sigma ** 2) * p @ inst.H @ p - (inst.gamma / (inst.m * inst.sigma ** 2)) * (
        inst.g @ inst.yhat) * (v @ v)
    return lhs, rhs


@formula("F001-E10", "001", "eq. (10)",
         "grad_y L-hat^T Hess_y L-hat grad_y L-hat <= (gamma^2/sigma^2) dL-hat/dy^T H_jj dL-hat/dy - "
         "(gamma/(m sigma^2)) <grad_y L, yhat> ||dL-hat/dy||^2",
         "the module setting; Hess_y L-hat by double backward (cross-checked against finite differences of "
         "the gradient); 200 random instances with H_jj positive semidefinite or indefinite")
def _e10():
    slacks, gaps = [], []
    for inst in _instances("e10", 100) + _instances("e10b", 100, psd=False):
        lhs, rhs = _e10_sides(inst, lambda inst, v: v)
        slacks.append(slack(lhs, rhs))
        gaps.append(abs(slacks[-1]))
    verdict, worst, violations = bound_verdict(slacks, tol=1e-10)
    inst = _instances("e10", 1)[0]
    v = inst.grad_y()
    hv_fd = hvp_fd(inst.loss_y, inst.y, v)
    return verdict, ("holds with equality: on the range of the BN projection the second derivative of the "
                     "normalization contributes exactly -(gamma/(m sigma^2))<grad_y L, yhat>||v||^2"), worst, (
        f"{violations} violations in {len(slacks)} instances; the two sides are equal to {fmt(max(gaps))} "
        f"(relative), so the bound is tight everywhere. Double backward vs complex-step Hessian-vector "
        f"product: {fmt(rel(inst.hess_y() @ v, hv_fd))}")


class _Quadratic(Instance):
    """An instance whose downstream loss is quadratic around the current z, with a chosen gradient g and
    Hessian H_jj there: L(z) = g^T (z - z0) + (z - z0)^T H (z - z0) / 2 (so any pair (g, H) can be posed)."""

    def __init__(self, rng, psd):
        super().__init__(rng, psd=psd)
        self.w = self.w * rng.uniform(0.2, 3.0)  # sigma from small to large: gamma / sigma on both sides of 1
        super().refresh()
        self.z0 = self.gamma * self.yhat + self.beta
        self.g = rng.standard_normal(self.m)
        B = rng.standard_normal((self.m, self.m))
        self.H = B @ B.T / self.m if psd else (B + B.T) / 2

    def refresh(self):
        return self

    def downstream(self, z):
        dz = z - _const(self.z0)
        return (dz * _const(self.g)).sum() + (dz * (_const(self.H) @ dz)).sum() * 0.5

    def preserve_relative_norms(self):
        """Move H (least change, Frobenius) onto the hyperplane where u^T H u = e^T H e for the unit vectors
        u, e along grad_y L-hat and grad_y L: H then scales both norms alike, ||H^(1/2) v|| / ||v|| =
        ||H^(1/2) g|| / ||g|| (for H positive semidefinite)."""
        v = self.grad_y()
        u, e = v / np.linalg.norm(v), self.g / np.linalg.norm(self.g)
        K = np.outer(u, u) - np.outer(e, e)
        self.H = self.H - (np.sum(self.H * K) / np.sum(K * K)) * K
        return self


@formula("F001-E11", "001", "eq. (11)",
         "as (10) with dL-hat/dy replaced by dL/dy in the first term: (gamma^2/sigma^2) grad_y L^T H_jj grad_y L - ...",
         "the document's condition 'H_jj preserves the relative norms of grad_y L-hat and grad_y L' read on its "
         "own terms: H_jj scales both by the same factor, u^T H_jj u = e^T H_jj e for their unit vectors u, e; "
         "instances posed to meet it (a quadratic downstream loss with chosen gradient and H_jj, moved onto that "
         "condition), H_jj drawn positive semidefinite or indefinite before that move, gamma / sigma from about "
         "0.1 to 12")
def _e11():
    met, predicted = [], []
    for psd, tag in ((True, "e11"), (False, "e11b")):
        rng = _rng(tag)
        for _ in range(150):
            inst = _Quadratic(rng, psd).preserve_relative_norms()
            v, g = inst.grad_y(), inst.g
            assert abs((v @ inst.H @ v) / (v @ v) - (g @ inst.H @ g) / (g @ g)) <= 1e-9 * np.abs(inst.H).max()
            lhs, rhs = _e10_sides(inst, lambda inst, v: inst.g)
            met.append(slack(lhs, rhs))
            # with (10) an equality the bound holds exactly when v^T H v <= g^T H g, which under the condition
            # is R (||g||^2 - ||v||^2) >= 0 with R = g^T H g / ||g||^2
            predicted.append((g @ inst.H @ g) * (g @ g - v @ v) >= 0)
    met, predicted = np.asarray(met), np.asarray(predicted)
    verdict, worst, violations = bound_verdict(met, tol=1e-10)
    explained = bool(np.all((met >= -1e-10) == predicted))
    if violations:
        verdict = "BOUND-FAILS"
        corrected = ("under the condition the bound holds exactly when g^T H_jj g (||grad_y L||^2 - "
                     "||grad_y L-hat||^2) >= 0: for H_jj positive semidefinite, when the normalization does not "
                     "enlarge the gradient (for instance gamma <= sigma); the condition alone is not enough"
                     if explained else None)
    else:
        verdict, corrected = "CONDITIONAL", "holds whenever H_jj preserves the relative norms, as stated"
    return verdict, corrected, worst, (
        f"{len(met)} instances meeting the condition: {violations} violate (11) (worst slack {worst:.2g}); "
        f"the rule 'holds iff g^T H g (||g||^2 - ||grad_y L-hat||^2) >= 0' "
        f"{'predicts every one' if explained else 'does not predict them all'}")


@formula("F001-E12", "001", "eq. (12)", "Hess_W L-hat = d2 L-hat/dW_.j dW_.j = X^T Hess_y L-hat X",
         "w = W_{.,j}; y = X w is linear in w, so no second-order term of y appears")
def _e12():
    inst = _instances("e12", 1)[0]
    auto = hessian(inst.loss_w, inst.w)[1]
    numeric = np.array([hvp_fd(inst.loss_w, inst.w, e) for e in np.eye(D)])
    res, auto_res = three_way({"X^T A X": inst.X.T @ inst.hess_y() @ inst.X}, auto, numeric)
    return identity_verdict(res["X^T A X"], None, TOL["complex"]), None, res["X^T A X"], (
        f"X^T Hess_y X vs complex-step differences of the gradient: {fmt(res['X^T A X'])}; double backward "
        f"{fmt(auto_res)}")


@formula("F001-E13", "001", "eq. (13)",
         "grad_W^T Hess_W grad_W = grad_y L-hat^T X X^T Hess_y L-hat X X^T grad_y L-hat",
         "from (3) and (12)")
def _e13():
    inst = _instances("e13", 1)[0]
    w = leaf(inst.w)
    (gw,) = _grad(inst.loss_w(w), w, create_graph=True)
    (hv,) = _grad((gw * gw.detach()).sum(), w)
    lhs = float(gw.detach().numpy() @ hv.numpy())
    g = inst.grad_y()
    rhs = float(g @ inst.X @ inst.X.T @ inst.hess_y() @ inst.X @ inst.X.T @ g)
    res = abs(lhs - rhs) / abs(lhs)
    return identity_verdict(res, None, TOL["complex"]), None, res, (
        f"left side by double backward in w, right side from Hess_y and X: relative difference {fmt(res)}")


@formula("F001-E13b", "001", "text after eq. (13)",
         "(grad_W L-hat)^T (Hess_W L-hat)(grad_W L-hat) <= lambda^4 (grad_y L-hat)^T (Hess_y L-hat)(grad_y L-hat)",
         "||X||_2 <= lambda, Hess_y L-hat and grad_y L-hat held fixed as X varies (as the text treats them); "
         "300 random X per instance plus X = lambda e f^T along the top eigenvector e of Hess_y L-hat")
def _e13b():
    rng = _rng("e13b")
    slacks = []
    for inst in _instances("e13b", 20):
        A, g = inst.hess_y(), inst.grad_y()
        top = np.linalg.eigh(A)[1][:, -1]
        candidates = [_scaled(rng.standard_normal((M, D)), 1.0) for _ in range(300)]
        candidates.append(np.outer(top, np.eye(D)[0]))
        for X in candidates:
            u = X @ X.T @ g
            slacks.append(slack(float(u @ A @ u), float(g @ A @ g)))  # lambda = 1
    verdict, worst, violations = bound_verdict(slacks)
    return verdict, ("only max_{||X|| <= lambda} ... <= lambda^4 ||grad_y L-hat||^2 max(lambda_max(Hess_y), 0) "
                     "follows; X X^T can rotate the gradient toward high curvature"), worst, (
        f"{violations} of {len(slacks)} (instance, X) pairs violate it; worst normalized slack {worst:.3g}. "
        "Equality holds when X X^T = lambda^2 I, as the text says, but that is not the worst case")


@formula("F001-E14", "001", "eq. (14)",
         "max_{||X|| <= lambda} (grad_W L-hat)^T (Hess_W L-hat)(grad_W L-hat) = lambda^4 (grad_y L-hat)^T Hess_y L-hat grad_y L-hat",
         "as F001-E13b: gradient and Hessian in y held fixed")
def _e14():
    rng = _rng("e14")
    exceed = 0
    ratios = []
    instances = _instances("e14", 20)
    for inst in instances:
        A, g = inst.hess_y(), inst.grad_y()
        claimed = float(g @ A @ g)
        top = np.linalg.eigh(A)[1][:, -1]
        found = max(float((X @ X.T @ g) @ A @ (X @ X.T @ g))
                    for X in [np.outer(top, np.eye(D)[0])] + [_scaled(rng.standard_normal((M, D)), 1.0)
                                                             for _ in range(300)])
        if found > claimed * (1 + 1e-9) + 1e-300:
            exceed += 1
        ratios.append((found - claimed) / abs(claimed))
    verdict = "FALSE" if exceed else "HOLDS"
    return verdict, ("max_{||X|| <= lambda} equals lambda^4 max over u = X X^T g of u^T Hess u, which is at "
                     "least lambda^4 <e, g>^2 lambda_max(Hess) for the top eigenvector e"), max(ratios), (
        f"in {exceed} of {len(instances)} instances some X with ||X||_2 = 1 gives a larger value than the "
        f"claimed maximum (largest excess found, relative to it: {max(ratios):.3g}); when g^T Hess g is <= 0 "
        "the claimed maximum is exceeded by any X that turns g toward positive curvature")


@formula("F001-E16", "001", "eq. (16)",
         "max (grad_W L-hat)^T Hess_W L-hat grad_W L-hat <= (gamma^2/sigma^2)[max (grad_w L)^T Hess_w L grad_w L "
         "- (lambda^4/(m gamma)) <grad_y L, yhat> ||grad_y L-hat||^2]",
         "the document's assumptions: <grad_y L, yhat> >= 0 and H_jj positive semidefinite; gradients and "
         "Hessians held fixed as X varies; lambda = 1. The left maximum is bounded below by the best of 300 "
         "random X and X along the top curvature; the right maximum is bounded above by "
         "||g||^2 max(lambda_max(H_jj), 0) (||X X^T g|| <= ||g||), so a reported violation is certain")
def _e16():
    rng = _rng("e16")
    certain, tried = 0, 0
    worst = np.inf
    for inst in _instances("e16", 60):
        if inst.g @ inst.yhat < 0:
            continue
        tried += 1
        A, v = inst.hess_y(), inst.grad_y()
        top = np.linalg.eigh(A)[1][:, -1]
        lhs = max(float((X @ X.T @ v) @ A @ (X @ X.T @ v))
                  for X in [np.outer(top, np.eye(D)[0])] + [_scaled(rng.standard_normal((M, D)), 1.0)
                                                           for _ in range(300)])
        vanilla_upper = float(inst.g @ inst.g) * max(np.linalg.eigvalsh(inst.H).max(), 0.0)
        rhs = inst.gamma ** 2 / inst.sigma ** 2 * (vanilla_upper - (inst.g @ inst.yhat) * (v @ v) / (inst.m * inst.gamma))
        s = slack(lhs, rhs)
        worst = min(worst, s)
        certain += s < -1e-12
    verdict = "BOUND-FAILS" if certain else "NOT-CHECKABLE"
    return verdict, ("does not follow: it rests on eq. (14), which is false, and on the replacement of eq. (11)"), \
        worst, (f"{certain} of {tried} instances meeting the assumptions violate it even against an upper bound "
                f"of the right side; worst normalized slack {worst:.3g}")


