"""Grad mode and anomaly mode: whether ops record a graph, and whether they check for NaN."""

from __future__ import annotations

import functools


class _GradMode:
    enabled = True


class _AnomalyMode:
    enabled = False


def is_grad_enabled() -> bool:
    return _GradMode.enabled


class set_grad_enabled:
    """Context manager and decorator that switches graph recording on or off."""

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode  # also works as a plain call, like torch.set_grad_enabled

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        _GradMode.enabled = self.prev  # used as a decorator: the mode applies inside fn only

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = _GradMode.enabled
            _GradMode.enabled = self.mode
            try:
                return fn(*args, **kwargs)
            finally:
                _GradMode.enabled = prev

        return wrapper


class _GradModeContext:
    mode = True

    def __enter__(self):
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.mode
        return self

    def __exit__(self, *exc):
        _GradMode.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with self.__class__():
                return fn(*args, **kwargs)

        return wrapper


class no_grad(_GradModeContext):
    """Run without recording a graph: ``with mb.no_grad(): ...`` or ``@mb.no_grad()``."""

    mode = False


class enable_grad(_GradModeContext):
    """Record a graph again inside a ``no_grad`` block."""

    mode = True


class detect_anomaly:
    """Find the op that first produced NaN or inf, forward or backward.

    Inside the block every op remembers where it was created; an op whose
    inputs are finite but whose output (or, in backward, whose input gradient)
    is not raises a RuntimeError naming the op and that place in your code.
    Slow: use it to hunt a NaN, not to train.
    """

    def __init__(self, check_nan: bool = True):
        self.check_nan = check_nan

    def __enter__(self):
        self.prev = _AnomalyMode.enabled
        _AnomalyMode.enabled = self.check_nan
        return self

    def __exit__(self, *exc):
        _AnomalyMode.enabled = self.prev

    def __call__(self, fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with detect_anomaly(self.check_nan):
                return fn(*args, **kwargs)

        return wrapper
