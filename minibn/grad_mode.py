"""Grad mode and anomaly mode: whether ops record a graph, and whether they check for NaN.

Both are per thread, as in PyTorch: ``no_grad`` in one thread leaves the others recording.
"""

from __future__ import annotations

import functools
import inspect
import threading


class _Mode(threading.local):
    """A flag with a value of its own in every thread (``default`` in a new one)."""

    def __init__(self, default: bool):
        self.enabled = default


_GradMode = _Mode(True)
_AnomalyMode = _Mode(False)


def is_grad_enabled() -> bool:
    """Whether ops are being recorded for autodiff in this thread (off inside ``no_grad``)."""
    return _GradMode.enabled


class _Switch:
    """Sets ``mode.enabled`` to ``value`` inside a ``with`` block or a decorated function."""

    mode = _GradMode
    value = True

    def __enter__(self):
        self.prev = self.mode.enabled
        self.mode.enabled = self.value
        return self

    def __exit__(self, *exc):
        self.mode.enabled = self.prev

    def __call__(self, fn):
        mode, value = self.mode, self.value
        if inspect.isgeneratorfunction(fn):
            return _generator_within(fn, lambda: _Within(((mode, value),)))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            prev = mode.enabled
            mode.enabled = value
            try:
                return fn(*args, **kwargs)
            finally:
                mode.enabled = prev

        return wrapper


class _Within:
    """Sets each (mode, value) pair for a ``with`` block, and puts the old values back after it."""

    def __init__(self, settings: tuple):
        self.settings = settings

    def __enter__(self):
        self.prev = [mode.enabled for mode, _ in self.settings]
        for mode, value in self.settings:
            mode.enabled = value

    def __exit__(self, *exc):
        for (mode, _), prev in zip(self.settings, self.prev):
            mode.enabled = prev


def _generator_within(fn, within):
    """A decorated generator function: the mode holds while the generator runs (each step to its
    next ``yield``), not while its caller does, as PyTorch's decorators do."""

    @functools.wraps(fn)
    def wrapper(*args, **kwargs):
        with within():
            gen = fn(*args, **kwargs)
        step = functools.partial(gen.send, None)
        while True:
            try:
                with within():
                    item = step()
            except StopIteration as stop:
                return stop.value
            try:
                sent = yield item
            except GeneratorExit:
                with within():
                    gen.close()
                raise
            except BaseException as exc:  # thrown into the wrapper: pass it on to the generator
                step = functools.partial(gen.throw, exc)
            else:
                step = functools.partial(gen.send, sent)

    return wrapper


class _Decorator(_Switch):
    """A switch that also decorates without parentheses: ``@mb.no_grad`` as ``@mb.no_grad()``."""

    def __new__(cls, orig_func=None):
        switch = super().__new__(cls)
        return switch if orig_func is None else switch(orig_func)


class no_grad(_Decorator):
    """Run without recording a graph: ``with mb.no_grad(): ...``, ``@mb.no_grad`` or ``@mb.no_grad()``."""

    value = False


class enable_grad(_Decorator):
    """Record a graph again inside a ``no_grad`` block."""

    value = True


_InferenceMode = _Mode(False)


def is_inference_mode_enabled() -> bool:
    """Whether this thread is inside ``inference_mode()``."""
    return _InferenceMode.enabled


class inference_mode(_Switch):
    """``no_grad`` for evaluation, as PyTorch's ``torch.inference_mode``: ``with mb.inference_mode():``,
    ``@mb.inference_mode`` or ``@mb.inference_mode()``; ``inference_mode(False)`` records again.

    Tensors made inside are ordinary tensors that do not require grad (PyTorch marks them as
    inference tensors and refuses them in a graph later; minibn lets them in).
    """

    def __new__(cls, mode=True):
        switch = super().__new__(cls)
        if callable(mode):  # @mb.inference_mode without parentheses
            switch.__init__()
            return switch(mode)
        return switch

    def __init__(self, mode=True):
        self.inference = bool(mode)
        self.value = not self.inference

    def __enter__(self):
        self.prev = _GradMode.enabled, _InferenceMode.enabled
        _GradMode.enabled, _InferenceMode.enabled = self.value, self.inference
        return self

    def __exit__(self, *exc):
        _GradMode.enabled, _InferenceMode.enabled = self.prev

    def __call__(self, fn):
        settings = ((_GradMode, self.value), (_InferenceMode, self.inference))
        if inspect.isgeneratorfunction(fn):
            return _generator_within(fn, lambda: _Within(settings))

        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            with _Within(settings):
                return fn(*args, **kwargs)

        return wrapper


class set_grad_enabled(_Switch):
    """Switch graph recording on or off: at once when called (like torch.set_grad_enabled),
    until the end of a ``with`` block, or inside a decorated function."""

    def __init__(self, mode: bool):
        self.value = bool(mode)
        self.prev = _GradMode.enabled
        _GradMode.enabled = self.value

    def __enter__(self):
        return self

    def __call__(self, fn):
        _GradMode.enabled = self.prev  # as a decorator, the mode applies inside fn only
        return super().__call__(fn)


class detect_anomaly(_Switch):
    """Find the op that first produced NaN or inf, forward or backward.

    Inside the block every op remembers where it was created; an op whose
    inputs are finite but whose output (or, in backward, whose input gradient)
    is not raises a RuntimeError naming the op and that place in your code.
    Slow: use it to hunt a NaN, not to train.
    """

    mode = _AnomalyMode

    def __init__(self, check_nan: bool = True):
        self.value = bool(check_nan)
