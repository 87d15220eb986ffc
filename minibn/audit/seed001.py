"""Seed 001 ("Effect of Batch Normalization on Loss Landscape"): equations (1)-(8) and sec. 1.1
(the second-order equations (9)-(16) are in ``seed001_hessian.py``).

Setting of every entry: one neuron j, a batch of m. y = X w in R^m (X in R^(m x d),
w = W_{.,j}), yhat = (y - mean y)/sigma with sigma the biased batch standard
deviation (eps = 0), z = gamma yhat + beta. The loss downstream of the layer
is a smooth L(z) = sum r tanh(z) + z^T Q z / 2; L-hat(y) = L(z(y)). As in
Santurkar et al., "grad_y L" means grad L at z (the gradient arriving at the
normalization's output) and H_jj = Hess L at z; grad_y L-hat and Hess L-hat
are taken with respect to y.
"""

from __future__ import annotations

import copy

import numpy as np

from .. import functional as F
from .. import grad as _grad
from .core import (const as _const, hessian, TOL, bound_verdict, fmt, formula, gradients, identity_verdict, leaf, rel, slack,
                   three_way)

M, D = 5, 4  # batch size and input dimension


def _rng(tag):
    return np.random.default_rng(sum(map(ord, tag)) + 1)



class Instance:
    """One random instance of the setting, with everything the formulas mention."""

    def __init__(self, rng, psd=True, m=M, d=D):
        self.m, self.d = m, d
        self.X = rng.standard_normal((m, d))
        self.w = rng.standard_normal(d)
        self.gamma, self.beta = rng.uniform(0.5, 2.0), rng.standard_normal()
        self.r = rng.standard_normal(m)
        B = rng.standard_normal((m, m))
        self.Q = B @ B.T / m if psd else (B + B.T) / 2
        self.refresh()

    def refresh(self):
        """Recompute everything that depends on X, w and the downstream loss."""
        y = self.X @ self.w
        self.y = y
        self.sigma = y.std()
        self.yhat = (y - y.mean()) / self.sigma
        z = self.gamma * self.yhat + self.beta
        t = np.tanh(z)
        self.g = self.r * (1 - t ** 2) + self.Q @ z  # grad L at z
        self.H = np.diag(-2 * self.r * t * (1 - t ** 2)) + self.Q  # Hess L at z
        return self

    def with_X(self, X):
        other = copy.copy(self)
        other.X = X
        return other.refresh()

    def align_with_yhat(self, strength, rng):
        """Make the downstream gradient point (almost) along yhat: L = c z^T yhat yhat^T z / (2m) + ..."""
        self.r = np.zeros(self.m)
        noise = rng.standard_normal((self.m, self.m)) * 0.05
        self.Q = strength * np.outer(self.yhat, self.yhat) / self.m + noise @ noise.T
        return self.refresh()

    def downstream(self, z):
        return (z.tanh() * _const(self.r)).sum() + (z * (_const(self.Q) @ z)).sum() * 0.5

    def loss_y(self, y):
        """L-hat as a function of y (minibn ops; analytic, so complex step applies)."""
        z = F.batch_norm(y.reshape(self.m, 1), None, None, training=True, eps=0.0).reshape(self.m)
        return self.downstream(z * self.gamma + self.beta)

    def loss_w(self, w):
        return self.loss_y(_const(self.X) @ w)

    def loss_plain_w(self, w):
        """The vanilla network: the same downstream loss applied to y = X w directly."""
        return self.downstream(_const(self.X) @ w)

    def grad_y(self):
        y = leaf(self.y)
        (g,) = _grad(self.loss_y(y), y)
        return g.numpy()

    def hess_y(self):
        """Hess L-hat (m x m) by double backward."""
        return hessian(self.loss_y, self.y)[1]

    def projection(self, k=None):
        m = self.m
        k = m if k is None else k
        return np.eye(m) - np.ones((m, m)) / m - np.outer(self.yhat, self.yhat) / k


def _instances(tag, count, **kw):
    rng = _rng(tag)
    return [Instance(rng, **kw) for _ in range(count)]


def _fd_check(inst):
    """Autodiff against complex-step finite differences for grad_y L-hat of one instance."""
    auto, numeric = gradients(inst.loss_y, [inst.y])
    return rel(auto[0], numeric[0])


# -- (1) ----------------------------------------------------------------------------------------


def _eq1_sides(inst, k):
    g = inst.g
    lhs = float(np.sum(inst.grad_y() ** 2))
    rhs = inst.gamma ** 2 / inst.sigma ** 2 * (g @ g - (g.sum()) ** 2 / inst.m - (g @ inst.yhat) ** 2 / k)
    return lhs, rhs


@formula("F001-E1", "001", "eq. (1)",
         "||grad_y L-hat||^2 <= (gamma^2/sigma^2)(||grad_y L||^2 - (1/m)<1, grad_y L>^2 - (1/sqrt(m))<grad_y L, yhat>^2)",
         "see the module setting; yhat has mean 0 and ||yhat||^2 = m; 300 random instances plus adversarial "
         "ones with grad_y L along yhat")
def _e1():
    instances = _instances("e1", 300)
    rng = _rng("e1-adv")
    instances += [Instance(rng).align_with_yhat(rng.uniform(1, 5), rng) for _ in range(30)]
    written, exact = [], []
    for inst in instances:
        lhs, rhs_written = _eq1_sides(inst, np.sqrt(inst.m))
        _, rhs_exact = _eq1_sides(inst, inst.m)
        written.append(slack(lhs, rhs_written))
        scale = inst.gamma ** 2 / inst.sigma ** 2 * (inst.g @ inst.g)  # the size of the terms that cancel
        exact.append(abs(rhs_exact - lhs) / scale)
    verdict, worst, violations = bound_verdict(written)
    fd = max(_fd_check(inst) for inst in instances[:3])
    return verdict, ("||grad_y L-hat||^2 = (gamma^2/sigma^2)(||grad_y L||^2 - (1/m)<1, grad_y L>^2 - (1/m)"
                     "<grad_y L, yhat>^2): an equality (the map is gamma/sigma times an orthogonal projection); "
                     "with 1/m in the last term the bound holds"), worst, (
        f"{violations} of {len(written)} instances violate the bound as written (m = {M}); worst normalized "
        f"slack {worst:.3g}. With 1/m the two sides agree to {fmt(max(exact))} of (gamma/sigma)^2 ||grad_y L||^2. "
        f"Autodiff vs complex-step on "
        f"grad_y L-hat: {fmt(fd)}. The 1/sqrt(m) subtracts more than the exact 1/m whenever <grad_y L, yhat> "
        "is not 0, so the right side falls below the left")


# -- (2), (2b), (3) -----------------------------------------------------------------------------


@formula("F001-E2", "001", "eq. (2)",
         "dL-hat/dW_ij = sum_b dL-hat/dy_j^(b) dy_j^(b)/dW_ij",
         "the chain rule over the batch, y_j^(b) = sum_i W_ij x_i^(b) (the indexing under which the text's "
         "next sentence holds)")
def _e2():
    inst = _instances("e2", 1)[0]
    auto, numeric = gradients(inst.loss_w, [inst.w])
    chain = inst.grad_y() @ inst.X  # sum_b dL/dy^(b) x_i^(b)
    res, auto_res = three_way({"chain": chain}, auto[0], numeric[0])
    return identity_verdict(res["chain"], None, TOL["complex"]), None, res["chain"], (
        f"sum over the batch vs complex-step dL-hat/dW_.j: {fmt(res['chain'])}; autodiff {fmt(auto_res)}")


@formula("F001-E2b", "001", "text after eq. (2)", "since y = W x, dy_j^(b)/dW_ij = x_i^(b)",
         "y = W x for one sample, W in R^(k x d): y_j = sum_i W_ji x_i")
def _e2b():
    rng = _rng("e2b")
    W, x = rng.standard_normal((3, 4)), rng.standard_normal(4)

    def fn(W_):
        return W_ @ _const(x)

    from .core import jacobian
    auto, numeric = jacobian(fn, W)
    jac = numeric.reshape(3, 3, 4)  # [j, row, col] = dy_j / dW_row,col
    as_written = np.array([[jac[j, i, j] for j in range(3)] for i in range(3)])  # dy_j/dW_ij, i < 3
    want_written = np.array([[x[i] for j in range(3)] for i in range(3)])
    corrected = np.array([[jac[j, j, i] for j in range(3)] for i in range(4)])  # dy_j/dW_ji
    want_corrected = np.array([[x[i] for j in range(3)] for i in range(4)])
    res_w, res_c = rel(as_written, want_written), rel(corrected, want_corrected)
    return identity_verdict(res_w, res_c, TOL["complex"]), (
        "dy_j/dW_ji = x_i for y = W x (equivalently dy_j/dW_ij = x_i for y = W^T x, the convention of eq. (3))"), \
        res_c, (f"as written (y = W x): residual {fmt(res_w)} (dy_j/dW_ij = x_j when i = j, else 0); with the "
                f"indices swapped {fmt(res_c)}; autodiff vs complex-step Jacobian {fmt(rel(auto, numeric))}")


@formula("F001-E3", "001", "eq. (3)", "grad_w L-hat = X^T grad_y L-hat",
         "w = W_{.,j}, X in R^(m x d) with rows the samples, y = X w")
def _e3():
    inst = _instances("e3", 1)[0]
    auto, numeric = gradients(inst.loss_w, [inst.w])
    res, auto_res = three_way({"X^T g": inst.X.T @ inst.grad_y()}, auto[0], numeric[0])
    return identity_verdict(res["X^T g"], None, TOL["complex"]), None, res["X^T g"], (
        f"X^T grad_y L-hat vs complex-step grad_w L-hat: {fmt(res['X^T g'])}; autodiff {fmt(auto_res)}")


# -- (4), (5), (6), (7), (8) -------------------------------------------------------------------------


def _scaled(X, lam):
    """X rescaled to spectral norm lam."""
    return X * (lam / np.linalg.norm(X, 2))


@formula("F001-E4", "001", "eq. (4)", "v^T X X^T v <= lambda^2 ||v||^2 if ||X||_2 <= lambda (= when X X^T = lambda^2 I)",
         "X in R^(m x d), any v in R^m; 2000 random instances with ||X||_2 = lambda, plus v along the top "
         "left singular vector (equality) and X X^T = lambda^2 I")
def _e4():
    rng = _rng("e4")
    slacks = []
    for k in range(2000):
        lam = rng.uniform(0.1, 10)
        X = _scaled(rng.standard_normal((M, D + 2)), lam)
        v = np.linalg.svd(X)[0][:, 0] * rng.uniform(0.5, 2) if k % 10 == 0 else rng.standard_normal(M)
        slacks.append(slack(v @ X @ X.T @ v, lam ** 2 * v @ v))
    lam = 2.0
    X = lam * np.linalg.qr(rng.standard_normal((D + 2, M)))[0].T  # orthonormal rows: X X^T = lam^2 I
    v = rng.standard_normal(M)
    equality = abs(slack(v @ X @ X.T @ v, lam ** 2 * v @ v))
    verdict, worst, violations = bound_verdict(slacks)
    return verdict, None, worst, (
        f"{violations} violations in {len(slacks)} instances; worst normalized slack {worst:.2g} (tight along "
        f"the top singular vector); with X X^T = lambda^2 I the two sides agree to {fmt(equality)}")


@formula("F001-E5", "001", "eq. (5)",
         "||grad_w L-hat||^2 = grad_y L-hat^T X X^T grad_y L-hat <= lambda^2 ||grad_y L-hat||^2",
         "as eq. (3)-(4); the identity checked three ways, the bound on 300 instances with ||X||_2 = lambda")
def _e5():
    instances = _instances("e5", 300)
    inst = instances[0]
    auto, numeric = gradients(inst.loss_w, [inst.w])
    g = inst.grad_y()
    identity = abs(g @ inst.X @ inst.X.T @ g - numeric[0] @ numeric[0]) / (numeric[0] @ numeric[0])
    slacks = []
    for inst in instances:
        lam = np.linalg.norm(inst.X, 2)
        g = inst.grad_y()
        slacks.append(slack(float(np.sum((inst.X.T @ g) ** 2)), lam ** 2 * g @ g))
    verdict, worst, violations = bound_verdict(slacks)
    if identity > TOL["complex"]:
        verdict = "FALSE"
    return verdict, None, worst, (
        f"the identity ||X^T g||^2 = ||grad_w L-hat||^2 holds to {fmt(identity)} (complex step); the bound: "
        f"{violations} violations in {len(slacks)} instances, worst slack {worst:.2g}; autodiff vs complex-step "
        f"grad_w {fmt(rel(auto[0], numeric[0]))}")


def _max_fixed_gradient(g, lam, rng, tries=200):
    """max ||X^T g||^2 over ||X||_2 <= lam, g held fixed: the maximizer X = lam g^ e^T, and a random search
    (which must not beat it)."""
    e = np.zeros(D)
    e[0] = 1.0
    best = float(np.sum((_scaled(np.outer(g, e), lam).T @ g) ** 2))
    searched = max(float(np.sum((_scaled(rng.standard_normal((len(g), D)), lam).T @ g) ** 2)) for _ in range(tries))
    return best, searched


def _max_claim(tag, plain: bool):
    rng = _rng(tag)
    fixed = []
    for _ in range(20):
        inst = Instance(rng)
        lam = rng.uniform(0.5, 3)
        g = inst.g if plain else inst.grad_y()
        best, searched = _max_fixed_gradient(g, lam, rng)
        fixed.append(max(abs(best - lam ** 2 * g @ g) / (lam ** 2 * g @ g), max(0.0, searched - best) / best))
    # the gradient as a function of X: max over X of ||grad_w||^2 vs lambda^2 ||grad_y||^2 at the maximizer
    inst = Instance(rng)
    best_value, best_rhs = -1.0, None
    for _ in range(300):
        local = inst.with_X(_scaled(rng.standard_normal((M, D)), 1.0))
        g_y = _plain_grad(local) if plain else local.grad_y()
        value = float(np.sum((local.X.T @ g_y) ** 2))
        if value > best_value:
            best_value, best_rhs = value, g_y @ g_y
    return max(fixed), abs(best_rhs - best_value) / best_rhs


def _plain_grad(inst):
    y = leaf(inst.y)
    (g,) = _grad(inst.downstream(y), y)
    return g.numpy()


@formula("F001-E6", "001", "eq. (6)", "max_{||X||_2 <= lambda} ||grad_W L-hat||^2 = lambda^2 ||dL-hat/dy_j||^2",
         "primary reading: dL-hat/dy_j held fixed while X varies (as the derivation from (5) treats it); the "
         "other reading lets the gradient depend on X through y = X w")
def _e6():
    fixed, dependent = _max_claim("e6", plain=False)
    verdict = "CONDITIONAL" if fixed <= 1e-12 and dependent > 1e-6 else ("HOLDS" if fixed <= 1e-12 else "FALSE")
    return verdict, ("holds when dL-hat/dy_j is treated as fixed (the maximizer X = lambda g^ e^T aligns X "
                     "with it); as a maximum over inputs X with the gradient evaluated at y = X w it does not "
                     "follow"), fixed, (
        f"fixed gradient: the maximizer reaches lambda^2 ||g||^2 to {fmt(fixed)} and 200 random X per instance "
        f"never exceed it (20 instances). Gradient depending on X (300 random X, ||X||_2 = 1): at the best X "
        f"found, ||grad_W||^2 falls short of lambda^2 ||grad_y||^2 by {dependent:.2g} (relative)")


@formula("F001-E7", "001", "eq. (7)", "max_{||X|| <= lambda} ||grad_W L||^2 = lambda^2 ||grad_y L||^2",
         "the vanilla network (no normalization), same readings as eq. (6)")
def _e7():
    fixed, dependent = _max_claim("e7", plain=True)
    verdict = "CONDITIONAL" if fixed <= 1e-12 and dependent > 1e-6 else ("HOLDS" if fixed <= 1e-12 else "FALSE")
    return verdict, "as eq. (6): holds with grad_y L held fixed", fixed, (
        f"fixed gradient: {fmt(fixed)}; gradient depending on X: the best X found misses by {dependent:.2g}")


@formula("F001-E8", "001", "eq. (8)",
         "max ||grad_w L-hat||^2 <= (gamma^2/sigma^2) lambda^2 (||grad_y L||^2 - (1/m)<1,grad_y L>^2 - "
         "(1/sqrt(m))<grad_y L, yhat>^2) = (gamma^2/sigma^2)(max ||grad_W L||^2 - ...)",
         "gradients held fixed as in eq. (6)-(7), so max ||grad_w L-hat||^2 = lambda^2 ||grad_y L-hat||^2; "
         "300 random instances")
def _e8():
    rng = _rng("e8")
    written, corrected = [], []
    for _ in range(300):
        inst = Instance(rng)
        lam = rng.uniform(0.5, 3)
        lhs, rhs = _eq1_sides(inst, np.sqrt(inst.m))
        _, rhs_exact = _eq1_sides(inst, inst.m)
        written.append(slack(lam ** 2 * lhs, lam ** 2 * rhs))
        corrected.append(slack(lam ** 2 * lhs, lam ** 2 * rhs_exact))
    verdict, worst, violations = bound_verdict(written)
    _, _, corrected_violations = bound_verdict(corrected)
    return verdict, "as eq. (1): with 1/m in place of 1/sqrt(m) it holds (with equality)", worst, (
        f"{violations} of {len(written)} instances violate it as written (inherited from eq. (1)); with 1/m: "
        f"{corrected_violations} violations")


@formula("F001-DEF", "001", "sec. 1.1",
         "BN(y_i) = gamma (y_i - mu)/sigma + beta, u = (1/N) sum y_i, sigma^2 = (1/N) sum (y_i - u)^2",
         "the text names the mean u in its definition and mu in the formula; read as one quantity. Compared "
         "with minibn's training-mode batch norm (eps = 0), which divides by the biased standard deviation")
def _definition():
    rng = _rng("def")
    y = rng.standard_normal(9) * 3 + 1
    gamma, beta = 0.7, 0.2
    u = y.mean()
    sigma = np.sqrt(np.mean((y - u) ** 2))
    written = gamma * (y - u) / sigma + beta
    layer = F.batch_norm(_const(y.reshape(-1, 1)), None, None, _const([gamma]), _const([beta]), training=True,
                         eps=0.0).numpy().ravel()
    unbiased = gamma * (y - u) / y.std(ddof=1) + beta
    res = rel(written, layer)
    return identity_verdict(res, None, TOL["exact"]), None, res, (
        f"vs minibn's batch_norm: {fmt(res)}; with the unbiased variance instead the outputs would differ by "
        f"{fmt(rel(unbiased, layer))} (batch of 9): training-mode batch norm uses the biased one, as written")
