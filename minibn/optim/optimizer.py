"""Optimizers with PyTorch's update rules: SGD (momentum, dampening, Nesterov, weight decay) and Adam.

Updates work on the parameters' arrays in place, outside the graph.
"""

from __future__ import annotations

import math
import numbers
import warnings

from ..tensor import Tensor


class Optimizer:
    """Parameters in groups (dicts with their own hyperparameters), per-parameter state."""

    def __init__(self, params, **hyper):
        if isinstance(params, Tensor):
            raise TypeError(f"{type(self).__name__}: params must be an iterable of Tensors or dicts (e.g. "
                            "net.parameters() or [w]), got a Tensor")
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__} got an empty parameter list")
        self.defaults = dict(hyper)
        self.param_groups = []
        self.state: dict = {}  # id(param) -> dict of arrays
        for group in params if isinstance(params[0], dict) else [{"params": params}]:
            self.add_param_group(group)

    def add_param_group(self, param_group: dict) -> None:
        """Add a group of parameters with hyperparameters of its own (the optimizer's defaults for
        those it does not give), as for a layer unfrozen in the middle of training."""
        if not isinstance(param_group, dict):
            raise TypeError(f"{type(self).__name__}.add_param_group: expects a dict, got {type(param_group).__name__}")
        if "params" not in param_group:
            raise KeyError(f"{type(self).__name__}.add_param_group: the group has no 'params'")
        group = dict(param_group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.is_leaf:
                raise TypeError(f"{type(self).__name__} can only optimize leaf Tensors, got {p!r:.60}")
        held = {id(p) for g in self.param_groups for p in g["params"]}
        if held & {id(p) for p in group["params"]}:
            raise ValueError(f"{type(self).__name__}: some parameters appear in more than one parameter group")
        if len({id(p) for p in group["params"]}) < len(group["params"]):
            warnings.warn(f"{type(self).__name__}: a parameter group holds a parameter twice; it is updated once per "
                          "listing", UserWarning, stacklevel=3)
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for group in self.param_groups:
            for p in group["params"]:
                if set_to_none or p.grad is None:
                    p.grad = None
                else:
                    p.grad._data[...] = 0

    def _params_with_grad(self):
        for group in self.param_groups:
            for p in group["params"]:
                if p.grad is not None:
                    yield group, p, p.grad._data

    def state_dict(self) -> dict:
        """Hyperparameters and state (momentum buffers, moments), parameters named by position."""
        index = {id(p): i for i, p in enumerate(p for g in self.param_groups for p in g["params"])}
        return {
            "state": {index[k]: {n: (v.copy() if hasattr(v, "copy") else v) for n, v in s.items()}
                      for k, s in self.state.items() if k in index},
            "param_groups": [{**{k: v for k, v in g.items() if k != "params"}, "params": [index[id(p)] for p in g["params"]]}
                             for g in self.param_groups],
        }

    def load_state_dict(self, state: dict) -> None:
        params = [p for g in self.param_groups for p in g["params"]]
        if len(state["param_groups"]) != len(self.param_groups):
            raise ValueError(f"load_state_dict: {len(state['param_groups'])} parameter groups in the state, "
                             f"{len(self.param_groups)} here")
        for group, saved in zip(self.param_groups, state["param_groups"]):
            if "params" in saved and len(saved["params"]) != len(group["params"]):
                raise ValueError(f"load_state_dict: a parameter group of {len(saved['params'])} parameters in the "
                                 f"state, of {len(group['params'])} here")
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, s in state["state"].items():
            p = params[int(i)]
            self.state[id(p)] = {n: (p.xp.asarray(v).copy() if getattr(v, "ndim", 0) else v)
                                 for n, v in s.items()}

    def step(self):
        raise NotImplementedError

    def _bump(self, p):
        p._version[0] += 1


def _check_hyper(name: str, **values) -> None:
    """Every value a finite number >= 0 (NaN and inf learning rates train to NaN without a word)."""
    for key, value in values.items():
        if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) or value < 0:
            raise ValueError(f"{name}: {key} must be a finite number >= 0, got {value!r}")


class SGD(Optimizer):
    """PyTorch's SGD:  g = grad + weight_decay p;  with momentum, b = momentum b + (1 - dampening) g
    (b = g at the first step) and g = b, or g + momentum b with Nesterov;  p -= lr g."""

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False):
        _check_hyper("SGD", lr=lr, momentum=momentum, dampening=dampening, weight_decay=weight_decay)
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: Nesterov momentum needs momentum > 0 and dampening = 0")
        super().__init__(params, lr=lr, momentum=momentum, dampening=dampening,
                         weight_decay=weight_decay, nesterov=nesterov)

    def step(self):
        for group, p, g in self._params_with_grad():
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p._data
            momentum = group["momentum"]
            if momentum:
                state = self.state.setdefault(id(p), {})
                buf = state.get("momentum_buffer")
                if buf is None:
                    buf = state["momentum_buffer"] = g.copy()
                else:
                    buf *= momentum
                    buf += (1 - group["dampening"]) * g
                g = g + momentum * buf if group["nesterov"] else buf
            p._data -= group["lr"] * g
            self._bump(p)


class Adam(Optimizer):
    """PyTorch's Adam (weight decay added to the gradient, as L2):
    m = b1 m + (1 - b1) g,  v = b2 v + (1 - b2) g^2,
    p -= lr / (1 - b1^t) * m / (sqrt(v) / sqrt(1 - b2^t) + eps)."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0):
        _check_hyper("Adam", lr=lr, eps=eps, weight_decay=weight_decay)
        if len(betas) != 2 or not all(isinstance(b, (int, float)) and 0 <= b < 1 for b in betas):
            raise ValueError(f"Adam: betas must be two numbers in [0, 1), got {betas!r}")
        super().__init__(params, lr=lr, betas=tuple(betas), eps=eps, weight_decay=weight_decay)

    def step(self):
        for group, p, g in self._params_with_grad():
            if group["weight_decay"]:
                g = g + group["weight_decay"] * p._data
            b1, b2 = group["betas"]
            state = self.state.setdefault(id(p), {})
            if not state:
                state.update(step=0, exp_avg=p.xp.zeros_like(p._data), exp_avg_sq=p.xp.zeros_like(p._data))
            state["step"] += 1
            t = state["step"]
            m, v = state["exp_avg"], state["exp_avg_sq"]
            m *= b1
            m += (1 - b1) * g
            v *= b2
            v += (1 - b2) * g * g
            denom = p.xp.sqrt(v) / math.sqrt(1 - b2 ** t) + group["eps"]
            p._data -= (group["lr"] / (1 - b1 ** t)) * m / denom
            self._bump(p)
