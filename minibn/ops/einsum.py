"""einsum: sums of products named by subscripts, ``einsum("ij,jk->ik", a, b)``.

The equation is first brought to a plain form: ``...`` replaced by letters,
a letter repeated within one operand (a diagonal, as in "ii->i") taken as
that diagonal, a size-1 dimension broadcast to its letter's size. The plain
form's gradient for operand i is again an einsum, of the output's gradient
with the other operands, into operand i's letters:

    y = einsum("ij,jk->ik", a, b)   =>   da = einsum("ik,jk->ij", g, b),   db = einsum("ij,ik->jk", a, g)

A letter only operand i has (summed away inside it) gets the gradient
broadcast along it. Each of those steps is an op, so every order differentiates.
"""

from __future__ import annotations

import string

from ..autograd import Function
from ..tensor import Tensor
from .shape import GetItem, broadcast_to, permute


class Einsum(Function):
    """y = einsum(terms -> out) on operands already in plain form (one letter per dimension)."""

    save_inputs = True

    def forward(self, *arrays):
        spec = ",".join(self.terms) + "->" + self.out
        return self.xp.einsum(spec, *arrays, optimize=len(arrays) > 2)

    def backward(self, g):
        operands, grads = self.inputs, []
        for i, need in enumerate(self.needs):
            if not need:
                grads.append(None)
                continue
            others = [(t, x) for j, (t, x) in enumerate(zip(self.terms, operands)) if j != i]
            have = set(self.out).union(*(t for t, _ in others))
            target = self.terms[i]
            inner = "".join(c for c in target if c in have)
            gi = _plain_einsum([self.out] + [t for t, _ in others], inner, [g] + [x for _, x in others])
            if inner != target:  # letters summed inside operand i alone: broadcast back along them
                shape = operands[i].shape
                gi = gi.reshape(tuple(shape[k] if c in have else 1 for k, c in enumerate(target)))
                gi = broadcast_to(gi, shape)
            grads.append(gi)
        return tuple(grads)


def _plain_einsum(terms, out, operands):
    if len(terms) == 1 and terms[0] == out:
        return operands[0]
    return Einsum.apply(*operands, terms=tuple(terms), out=out)


def _diagonal(x, term):
    """Operand ``x`` with each repeated letter of ``term`` taken once (the diagonal): (x, new term)."""
    while True:
        repeated = next((c for c in term if term.count(c) > 1), None)
        if repeated is None:
            return x, term
        axes = [k for k, c in enumerate(term) if c == repeated]
        sizes = {x.shape[k] for k in axes}
        if len(sizes) > 1:
            raise ValueError(f"einsum: subscript {repeated!r} is repeated in one operand over dimensions of "
                             f"different sizes {sorted(sizes)}")
        rest = [k for k in range(x.ndim) if k not in axes]
        x = permute(x, axes + rest)
        diag = x.xp.arange(sizes.pop())
        x = GetItem.apply(x, index=(diag,) * len(axes), basic=False)
        term = repeated + "".join(term[k] for k in rest)


def einsum(equation, *operands):
    """Sum of products over the subscripts of ``equation`` (NumPy's and PyTorch's notation: "ij,jk->ik",
    "bij,bjk->bik", "ii->i", "...ij->...ji", implicit output "ij,jk"). Operands may also come as one list."""
    if len(operands) == 1 and isinstance(operands[0], (list, tuple)):
        operands = tuple(operands[0])
    if not isinstance(equation, str) or not operands:
        raise TypeError("einsum: expected an equation string and at least one operand")
    for k, x in enumerate(operands):
        if not isinstance(x, Tensor):
            raise TypeError(f"einsum: operand {k} is a {type(x).__name__}, not a Tensor")
    lhs, arrow, rhs = equation.replace(" ", "").partition("->")
    terms = lhs.split(",")
    if len(terms) != len(operands):
        raise ValueError(f"einsum: the equation {equation!r} has {len(terms)} operand(s), {len(operands)} were given")
    letters = set(c for c in lhs + rhs if c.isalpha())
    bad = set(lhs + rhs) - letters - set(".,")
    if bad:
        raise ValueError(f"einsum: invalid subscript(s) {sorted(bad)} in {equation!r} (letters only, and ...)")
    # ... -> fresh letters, right-aligned across the operands as broadcasting is
    width = max((x.ndim - (len(t) - 3) for t, x in zip(terms, operands) if "..." in t), default=0)
    fresh = [c for c in string.ascii_letters if c not in letters][:width]
    ellipsis = "".join(fresh)
    plain = []
    for k, (t, x) in enumerate(zip(terms, operands)):
        if "..." in t:
            t = t.replace("...", ellipsis[width - (x.ndim - (len(t) - 3)):])
        if "." in t or len(t) != x.ndim:
            raise ValueError(f"einsum: subscripts {terms[k]!r} do not match operand {k} of shape {tuple(x.shape)}")
        plain.append(t)
    if arrow:
        out = rhs.replace("...", ellipsis)
        if "." in out or len(set(out)) != len(out) or not set(out) <= set("".join(plain)):
            raise ValueError(f"einsum: output subscripts {rhs!r} must be distinct letters of the inputs")
    else:  # implicit: the broadcast dims, then the letters that appear once, in alphabetical order
        joined = "".join(plain)
        out = ellipsis + "".join(sorted(c for c in set(joined) - set(ellipsis) if joined.count(c) == 1))
    operands = list(operands)
    for k in range(len(operands)):
        operands[k], plain[k] = _diagonal(operands[k], plain[k])
    sizes = {}  # a letter's size; a size 1 gives way to any other (broadcasting), 0 included
    for t, x in zip(plain, operands):
        for c, n in zip(t, x.shape):
            if c not in sizes or sizes[c] == 1:
                sizes[c] = n
            elif n not in (1, sizes[c]):
                raise ValueError(f"einsum: subscript {c!r} has sizes {sizes[c]} and {n} in different operands")
    for k, (t, x) in enumerate(zip(plain, operands)):
        full = tuple(sizes[c] for c in t)
        if x.shape != full:
            operands[k] = broadcast_to(x, full)
    return _plain_einsum(plain, out, operands)
