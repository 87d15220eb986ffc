"""Tracing a backward pass: what each node received, what it sent, and by which rule.

    with mb.trace() as t:
        loss.backward()
    print(t)                       # one row per node, in the order backward visited them
    t[0].grad_output               # the arrays, to check a formula by hand
    t.find("BatchNorm")            # the entries of one kind of node

Every backward pass run inside the block is recorded (``t.passes`` counts them), so a
second-order computation (``mb.grad(..., create_graph=True)`` and then a backward through its
result) shows both passes. The rule of a node is the formula its docstring gives for the
backward (the lines "dx = ..." and the like), or the docstring's first line.
"""

from __future__ import annotations

import dataclasses
import re

import numpy as np

from ..devices import to_host
from ..grad_mode import _Mode

_Tracing = _Mode(None)  # the active Trace of this thread, or None


def rule_of(fn) -> str:
    """The backward formula of a Function: its ``rule`` attribute, else the docstring's lines that
    define a derivative (d... = ..., d/d...: ...), else the docstring's first line."""
    rule = getattr(type(fn), "rule", None)
    if rule:
        return rule
    doc = type(fn).__doc__ or ""
    found = []
    for line in doc.splitlines():
        for part in line.split(";"):
            part = " ".join(part.split())
            if re.match(r"^(d\w*|d/d\w+)\s*[:=]|^d \w", part) and ("=" in part or ":" in part):
                found.append(part.rstrip(".,"))
    if found:
        return ";  ".join(found)
    first = " ".join(doc.strip().split("\n\n")[0].split())
    return first or type(fn).__name__


@dataclasses.dataclass
class TraceEntry:
    """One node of a traced backward pass. ``grad_output`` is the gradient that arrived at the node's
    output (for a leaf: the gradient accumulated into it); ``grad_inputs`` holds one array (or None)
    per input; ``shapes`` are the inputs' shapes."""

    index: int
    pass_index: int
    name: str
    rule: str
    grad_output: np.ndarray
    grad_inputs: list
    shapes: list
    shape: tuple = ()
    node: object = dataclasses.field(repr=False, default=None)

    @property
    def is_leaf(self) -> bool:
        return self.name in ("leaf", "parameter")


class Trace:
    """The record of the backward passes run inside ``with mb.trace() as t:`` (see the module docstring)."""

    def __init__(self):
        self.entries: list = []
        self.passes = 0
        self._previous = None

    def __enter__(self):
        self._previous = _Tracing.enabled
        _Tracing.enabled = self
        return self

    def __exit__(self, *exc):
        _Tracing.enabled = self._previous
        return False

    def _start_pass(self):
        self.passes += 1

    def _record(self, vertex, grad_output, grad_inputs, leaf_rule=None):
        from ..tensor import Tensor

        leaf = isinstance(vertex, Tensor)
        shapes = [tuple(vertex.shape)] if leaf else [
            tuple(e._meta[0]) if hasattr(e, "_meta") else tuple(e.shape) if e is not None else None
            for e in vertex.edges]
        self.entries.append(TraceEntry(
            index=len(self.entries), pass_index=self.passes,
            name=("parameter" if type(vertex).__name__ == "Parameter" else "leaf") if leaf else vertex.name,
            rule=leaf_rule if leaf else rule_of(vertex), shape=tuple(vertex.shape) if leaf else tuple(vertex._meta[0]),
            grad_output=None if grad_output is None else to_host(grad_output._data).copy(),
            grad_inputs=[] if leaf else [None if g is None else to_host(g._data).copy() for g in (grad_inputs or ())],
            shapes=shapes, node=vertex))

    def __len__(self):
        return len(self.entries)

    def __getitem__(self, i):
        return self.entries[i]

    def __iter__(self):
        return iter(self.entries)

    def find(self, name: str) -> list:
        """The entries whose node name contains ``name`` (e.g. "BatchNorm")."""
        return [e for e in self.entries if name in e.name]

    def table(self, width: int = 60) -> str:
        """One row per entry: pass, node, output shape, ||incoming gradient||, ||outgoing gradients||, rule."""
        rows = [f"{'#':>3} {'pass':>4}  {'node':<16} {'shape':<10} {'|grad out|':>10}  {'|grad in| per input':<26} rule"]
        for e in self.entries:
            norm = "" if e.grad_output is None else f"{np.linalg.norm(e.grad_output):.4g}"
            ins = ", ".join("-" if g is None else f"{np.linalg.norm(g):.4g}" for g in e.grad_inputs)
            rule = e.rule if len(e.rule) <= width else e.rule[:width - 3] + "..."
            shape = "x".join(map(str, e.shape)) or "()"
            rows.append(f"{e.index:>3} {e.pass_index:>4}  {e.name:<16} {shape:<10} {norm:>10}  {ins:<26} {rule}")
        return "\n".join(rows)

    def __str__(self):
        return self.table()

    def __repr__(self):
        return f"<Trace of {self.passes} backward pass(es), {len(self.entries)} entries>"


def trace() -> Trace:
    """A context that records every backward pass run inside it (see :mod:`minibn.autograd.trace`)."""
    return Trace()
