"""How a tensor prints: PyTorch's layout, whatever NumPy's print options say.

The rules (those of ``print(torch_tensor)`` with its default options):

- real floats print with 4 decimals (``1.5000``); in scientific notation (``1.1300e-05``) when the
  non-zero finite magnitudes span more than a factor 1000, exceed 1e8, or (non-integers) go below
  1e-4; as ``2.`` when every finite value is an integer;
- every element is padded to one width; rows wrap at 80 characters;
- a tensor of more than 1000 elements shows its first and last 3 along each dimension, with ``...``.
"""

from __future__ import annotations

import math

import numpy as np

PRECISION, THRESHOLD, EDGE_ITEMS, LINE_WIDTH = 4, 1000, 3, 80


class _Style:
    """One format for every element of a tensor, chosen from its values."""

    def __init__(self, values: np.ndarray):
        self.real = values.dtype.kind == "f"
        self.integral, self.scientific, self.width = True, False, 1
        if not self.real:
            self.width = max((len(str(v)) for v in values.tolist()), default=1)
            return
        finite = values[np.isfinite(values) & (values != 0)].astype(np.float64)
        if finite.size == 0:
            return
        magnitude = np.abs(finite)
        low, high = float(magnitude.min()), float(magnitude.max())
        self.integral = bool(np.all(finite == np.ceil(finite)))
        self.scientific = high / low > 1000 or high > 1e8 or (not self.integral and low < 1e-4)
        self.width = max(len(self.format(v)) for v in finite.tolist())

    def format(self, v) -> str:
        if not self.real:
            text = str(v)
        elif self.scientific:
            text = f"{v:.{PRECISION}e}"
        elif self.integral:
            text = f"{v:.0f}" + ("." if math.isfinite(v) else "")
        else:
            text = f"{v:.{PRECISION}f}"
        return text.rjust(self.width)


def _summary(values: np.ndarray) -> np.ndarray:
    """The elements a summarized print shows: the first and last EDGE_ITEMS along each dimension."""
    for axis, n in enumerate(values.shape):
        if n > 2 * EDGE_ITEMS:
            keep = np.r_[0:EDGE_ITEMS, n - EDGE_ITEMS:n]
            values = np.take(values, keep, axis=axis)
    return values


def _body(values: np.ndarray, style: _Style, indent: int, summarize: bool) -> str:
    n = values.shape[0]
    cut = summarize and n > 2 * EDGE_ITEMS
    positions = [*range(EDGE_ITEMS), None, *range(n - EDGE_ITEMS, n)] if cut else list(range(n))
    if values.ndim == 1:
        items = [" ..." if i is None else style.format(values[i].item()) for i in positions]
        per_line = max(1, (LINE_WIDTH - indent) // (style.width + 2))
        lines = [", ".join(items[k:k + per_line]) for k in range(0, len(items), per_line)]
        return "[" + (",\n" + " " * (indent + 1)).join(lines) + "]"
    rows = ["..." if i is None else _body(values[i], style, indent + 1, summarize) for i in positions]
    return "[" + ("," + "\n" * (values.ndim - 1) + " " * (indent + 1)).join(rows) + "]"


def array_str(values: np.ndarray, indent: int) -> str:
    """``values`` (a host array) laid out as PyTorch prints a tensor's data, continuation lines
    indented by ``indent`` (the length of what precedes the data)."""
    if values.size == 0:
        return "[]"
    if values.dtype.kind == "c":  # PyTorch's complex layout is not copied here: NumPy's, with fixed options
        return np.array2string(values, precision=PRECISION, suppress_small=False, separator=", ", floatmode="fixed",
                               sign="-", threshold=THRESHOLD, edgeitems=EDGE_ITEMS, max_line_width=LINE_WIDTH,
                               prefix=" " * indent, legacy=False)
    summarize = values.size > THRESHOLD
    style = _Style((_summary(values) if summarize else values).reshape(-1))
    if values.ndim == 0:
        return style.format(values.item())
    return _body(values, style, indent, summarize)


def with_suffixes(text: str, suffixes: list, indent: int) -> str:
    """``text`` with ", suffix" appended for each suffix, on a new indented line where the line
    would pass LINE_WIDTH, and the closing parenthesis."""
    out, line = [text], len(text) - text.rfind("\n") + 1
    for suffix in suffixes:
        if line + len(suffix) + 2 > LINE_WIDTH:
            out.append(",\n" + " " * indent + suffix)
            line = indent + len(suffix)
        else:
            out.append(", " + suffix)
            line += len(suffix) + 2
    return "".join(out) + ")"
