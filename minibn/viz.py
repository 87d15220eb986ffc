"""Drawing graphs: the ops that produced a tensor (``draw``) and the layers of a network (``draw_module``).

    loss = F.cross_entropy(net(x), y)
    mb.viz.draw(loss, "graph", names=net)      # graph.svg and graph.png
    mb.viz.draw_module(net, x, "layers")       # one box per layer, repeated blocks collapsed

Each op node shows its name (a fused node, what it fuses), its output's shape and dtype and,
with ``show_grads``, the gradient that reaches its output: its norm, or its values for a
tensor of up to 6 elements. Those gradients come from a traced ``grad`` of the tensor with
``retain_graph=True``: nothing accumulates into any ``.grad`` (gradient hooks do run), and a
backward can still follow.
Leaves are drawn as ellipses, parameters (named from ``names``, a Module) in green.

Graphviz draws when the ``graphviz`` Python package and its ``dot`` program are installed
(``pip install graphviz``; Debian: ``apt install graphviz``); otherwise a layered matplotlib
drawing is made, so that the feature works on a bare machine. A graph of more than
``max_nodes`` nodes keeps the ones nearest the output and stands for the rest with one node.
"""

from __future__ import annotations

import dataclasses
import io
import shutil
from collections import deque
from pathlib import Path

import numpy as np

from .autograd import Function, grad
from .devices import to_host
from .autograd.trace import Trace
from .fileio import write_atomic
from .tensor import Tensor

RENDERERS = ("auto", "graphviz", "matplotlib")


@dataclasses.dataclass
class Drawing:
    """What ``draw`` made: the renderer used, the files written, the nodes' labels and the edges
    (pairs of node keys, from input to consumer), and Graphviz's source when it drew."""

    renderer: str
    paths: list
    labels: dict
    edges: list
    source: str | None = None
    note: str = ""


def graphviz_available() -> bool:
    """Whether the graphviz Python package and its ``dot`` program are both there."""
    try:
        import graphviz  # noqa: F401
    except ImportError:
        return False
    return shutil.which("dot") is not None


def _gradient_label(array) -> str:
    a = to_host(array).astype(float)
    if a.size <= 6:
        return "grad " + np.array2string(a.ravel(), precision=3, separator=", ", suppress_small=True)
    return f"|grad| {np.linalg.norm(a):.4g}"


def _node_gradients(tensor: Tensor, leaves: list) -> tuple:
    """({vertex: gradient array at its output}, note): a traced grad of ``tensor`` (one element)."""
    if tensor.numel() != 1 or not tensor.requires_grad or not leaves:
        return {}, "gradients are shown for a tensor of one element that requires grad"
    retained = [v for v in _functions(tensor) if v._retain is not None]
    saved = [v._retain for v in retained]
    for v in retained:  # a traced grad must not fill the .grad of tensors that called retain_grad()
        v._retain = None
    with Trace() as t:
        try:
            grad(tensor, leaves, retain_graph=True, allow_unused=True)
        except RuntimeError as exc:
            if "freed" not in str(exc) and "released" not in str(exc) and "retain_graph" not in str(exc):
                raise
            return ({leaf: leaf.grad._data for leaf in leaves if leaf.grad is not None},
                    "the graph was freed by a backward: only the leaves' .grad are shown (draw before backward, "
                    "or backward with retain_graph=True)")
        finally:
            for v, r in zip(retained, saved):
                v._retain = r
    return {e.node: e.grad_output for e in t if e.grad_output is not None}, ""


def _functions(tensor):
    root = tensor._node
    seen, stack = {root} if root is not None else set(), [root] if root is not None else []
    while stack:
        for e in stack.pop().edges:
            if isinstance(e, Function) and e not in seen:
                seen.add(e)
                stack.append(e)
    return seen


def _walk(root, max_nodes: int) -> tuple:
    """(the vertices nearest the output, at most max_nodes; the edges (input, consumer) among them;
    how many were left out; the kept consumers of a left-out input)."""
    order, seen, edges = [], {root}, []
    queue = deque([root])
    while queue:
        v = queue.popleft()
        order.append(v)
        if isinstance(v, Tensor):
            continue
        for e in v.edges:
            if e is None:
                continue
            edges.append((e, v))
            if e not in seen:
                seen.add(e)
                queue.append(e)
    kept = set(order[:max_nodes])
    inside = [(a, b) for a, b in edges if a in kept and b in kept]
    cut = list(dict.fromkeys(b for a, b in edges if b in kept and a not in kept))
    return order[:max_nodes], inside, len(order) - len(kept), cut


def draw(tensor: Tensor, path=None, *, show_grads: bool = True, names=None, max_nodes: int = 150,
         renderer: str = "auto") -> Drawing:
    """Draw the graph that produced ``tensor``; with ``path`` (no suffix), write path.svg and path.png.

    ``names`` is a Module (its parameters are labelled by their state-dict names) or a dict
    {tensor: name}; ``renderer`` is "auto" (Graphviz if available), "graphviz" or "matplotlib"."""
    if not isinstance(tensor, Tensor):
        raise TypeError(f"draw: expected a Tensor, got {type(tensor).__name__}")
    if renderer not in RENDERERS:
        raise ValueError(f"draw: renderer must be one of {RENDERERS}, got {renderer!r}")
    if renderer == "graphviz" and not graphviz_available():
        raise RuntimeError("draw: renderer='graphviz' needs the graphviz Python package and its dot program "
                           "(pip install graphviz; Debian: apt install graphviz)")
    if max_nodes < 1:
        raise ValueError(f"draw: max_nodes must be >= 1, got {max_nodes}")
    if hasattr(names, "named_parameters"):
        names = {p: n for n, p in names.named_parameters()}
    names = {id(k): v for k, v in (names or {}).items()}
    root = tensor._node if tensor._node is not None else tensor
    vertices, pairs, hidden, frontier = _walk(root, max_nodes)
    leaves = [v for v in vertices if isinstance(v, Tensor) and v.requires_grad]
    grads, note = _node_gradients(tensor, leaves) if show_grads else ({}, "")
    key = {v: f"n{i}" for i, v in enumerate(vertices)}
    labels, kinds = {}, {}
    for v in vertices:
        labels[key[v]], kinds[key[v]] = _label(v, v is root, names, grads.get(v) if show_grads else None)
    edges = [(key[a], key[b]) for a, b in pairs]
    if hidden:
        labels["more"], kinds["more"] = f"... {hidden} more nodes\n(max_nodes={max_nodes})", "more"
        edges += [("more", key[b]) for b in frontier]
    return _render(labels, kinds, edges, note, path, renderer == "graphviz" or (renderer == "auto" and graphviz_available()))


def _render(labels, kinds, edges, note, path, use_graphviz) -> Drawing:
    drawing = Drawing("graphviz" if use_graphviz else "matplotlib", [], labels, edges, note=note)
    if use_graphviz:
        drawing.source = _graphviz_source(labels, kinds, edges, note)
    if path is not None:
        drawing.paths = (_write_graphviz if use_graphviz else _write_matplotlib)(drawing, kinds, Path(path))
    return drawing


def _label(v, is_root, names, gradient) -> tuple:
    if isinstance(v, Tensor):
        kind = "parameter" if type(v).__name__ == "Parameter" else "leaf"
        title = names.get(id(v), kind)
        shape, dtype = tuple(v.shape), v.dtype
    else:
        kind = "output" if is_root else "op"
        title = v.name + (f"\nfused: {v.fuses}{chr(10) + '+ the Linear bias' if len(v.edges) == 4 else ''}"
                          if getattr(v, "fuses", None) else "")
        shape, dtype = v._meta
    lines = [title, f"{'x'.join(map(str, shape)) or 'scalar'}  {dtype}"]
    if gradient is not None:
        lines.append(_gradient_label(gradient))
    return "\n".join(lines), kind


_STYLE = {"op": {"shape": "box", "style": "rounded,filled", "fillcolor": "#e8eef7"},
          "output": {"shape": "box", "style": "rounded,filled,bold", "fillcolor": "#fbe3c8"},
          "leaf": {"shape": "ellipse", "style": "filled", "fillcolor": "#f2f2f2"},
          "parameter": {"shape": "ellipse", "style": "filled", "fillcolor": "#d9f0d3"},
          "more": {"shape": "note", "style": "filled", "fillcolor": "#ffffff"}}


def _graphviz_source(labels, kinds, edges, note) -> str:
    import graphviz

    g = graphviz.Digraph("minibn", graph_attr={"rankdir": "LR", "fontsize": "10", "label": note},
                         node_attr={"fontname": "Helvetica", "fontsize": "10"})
    for k, label in labels.items():
        g.node(k, label, **_STYLE[kinds[k]])
    for a, b in edges:
        g.edge(a, b)
    return g.source


def _write_graphviz(drawing, kinds, path) -> list:
    import graphviz

    source = graphviz.Source(drawing.source)
    out = []
    for fmt in ("svg", "png"):
        target = path.with_suffix(f".{fmt}")
        write_atomic(target, source.pipe(format=fmt))
        out.append(target)
    return out


def _positions(labels, edges) -> dict:
    """(column, row) of each node: columns by the longest path to the output (which is rightmost), so
    that a leaf sits just left of its consumer; rows in each column ordered by their consumers' rows."""
    consumers = {k: [] for k in labels}
    for a, b in edges:
        consumers[a].append(b)
    depth = {}
    for k in labels:  # longest path to a sink, iteratively
        stack = [k]
        while stack:
            v = stack[-1]
            pending = [c for c in consumers[v] if c not in depth]
            if pending:
                stack.extend(pending)
                continue
            stack.pop()
            depth[v] = 1 + max((depth[c] for c in consumers[v]), default=-1)
    last = max(depth.values())
    position = {}
    for d in range(0, last + 1):  # right to left: the output's column first
        column = [k for k in labels if depth[k] == d]
        column.sort(key=lambda k: (np.mean([position[c][1] for c in consumers[k]]) if consumers[k] else 0, k))
        for row, k in enumerate(column):
            position[k] = (last - d, row)
    return position


def _write_matplotlib(drawing, kinds, path) -> list:
    from .plotting import plt

    position = _positions(drawing.labels, drawing.edges)
    width = max(c for c, _ in position.values()) + 1
    height = max(r for _, r in position.values()) + 1
    fig, ax = plt.subplots(figsize=(max(4.0, 3.6 * width), max(2.5, 1.1 * height)))
    colors = {k: v["fillcolor"] for k, v in _STYLE.items()}
    for a, b in drawing.edges:
        (xa, ya), (xb, yb) = position[a], position[b]
        ax.annotate("", xy=(xb - 0.32, -yb), xytext=(xa + 0.32, -ya),
                    arrowprops={"arrowstyle": "->", "color": "0.4", "lw": 0.8})
    for k, label in drawing.labels.items():
        x, y = position[k]
        style = "round,pad=0.3" if kinds[k] in ("op", "output") else "round4,pad=0.3"
        ax.text(x, -y, label, ha="center", va="center", fontsize=7, family="monospace",
                bbox={"boxstyle": style, "facecolor": colors[kinds[k]], "edgecolor": "0.3",
                      "linewidth": 1.6 if kinds[k] == "output" else 0.8})
    ax.set_xlim(-0.6, width - 0.4)
    ax.set_ylim(-height + 0.4, 0.6)
    ax.axis("off")
    if drawing.note:
        ax.set_title(drawing.note, fontsize=8)
    out = []
    for fmt in ("svg", "png"):
        buffer = io.BytesIO()
        fig.savefig(buffer, format=fmt, dpi=130, bbox_inches="tight")
        target = path.with_suffix(f".{fmt}")
        write_atomic(target, buffer.getvalue())
        out.append(target)
    plt.close(fig)
    return out


# -- the layers of a network -------------------------------------------------------------------------


def _describe(module) -> str:
    """A short name: Linear(784, 100), BatchNorm1d(100), ReLU."""
    name = type(module).__name__
    if hasattr(module, "in_features"):
        return f"{name}({module.in_features}, {module.out_features})"
    if hasattr(module, "num_features"):
        return f"{name}({module.num_features})"
    return name


def module_blocks(module, x) -> list:
    """[(description, output shape, repeats, modules)]: the leaf modules of ``module`` in the order
    they ran on ``x`` (one forward in eval mode, the mode restored), runs of an identical block of
    consecutive layers collapsed into one entry."""
    ran = []
    leaves = [m for m in module.modules() if not list(m.children())] or [module]
    handles = [m.register_forward_hook(lambda mod, inp, out: ran.append((mod, tuple(out.shape)))) for m in leaves]
    was_training = module.training
    module.eval()  # shapes only: no running statistics updated, no noise drawn
    try:
        from .autograd import no_grad

        with no_grad():
            module(x)
    finally:
        module.train(was_training)
        for h in handles:
            h.remove()
    items = [(_describe(m), s, m) for m, s in ran]
    out, i = [], 0
    while i < len(items):
        best = (1, 1)
        for period in range(1, min(6, (len(items) - i) // 2) + 1):
            block = [d[:2] for d in items[i:i + period]]
            reps = 1
            while [d[:2] for d in items[i + reps * period:i + (reps + 1) * period]] == block:
                reps += 1
            if reps > 1 and period * reps > best[0] * best[1]:
                best = (period, reps)
        period, reps = best
        chunk = items[i:i + period * reps]
        out.append(("\n".join(d[0] for d in chunk[:period]), chunk[period - 1][1], reps, [d[2] for d in chunk]))
        i += period * reps
    return out


def draw_module(module, x, path=None, *, show_grads: bool = True) -> Drawing:
    """One box per layer of ``module`` as it runs on ``x`` (repeated blocks collapsed: "(x 8)"), with its
    output shape and, when the weights have gradients (after a backward), the range of their norms."""
    blocks = module_blocks(module, x)
    labels, kinds, edges = {"input": f"input\n{'x'.join(map(str, x.shape))}"}, {"input": "leaf"}, []
    previous = "input"
    for i, (description, shape, reps, modules) in enumerate(blocks):
        key = f"b{i}"
        lines = [description + (f"\n(x {reps})" if reps > 1 else ""), "out " + "x".join(map(str, shape))]
        weights = [getattr(m, "weight", None) for m in modules]
        grads = [float(np.linalg.norm(to_host(w.grad._data))) for w in weights
                 if show_grads and w is not None and w.grad is not None]
        if grads:
            lines.append(f"|d weight| {min(grads):.3g}" + (f" .. {max(grads):.3g}" if len(grads) > 1 else ""))
        labels[key], kinds[key] = "\n".join(lines), "output" if i == len(blocks) - 1 else "op"
        edges.append((previous, key))
        previous = key
    return _render(labels, kinds, edges, "", path, graphviz_available())
