"""The learner's side: tracing a backward pass, drawing graphs (both back ends), and the tour."""

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import nn, tour, viz
from minibn.autograd.trace import rule_of

needs_graphviz = pytest.mark.skipif(not viz.graphviz_available(),
                                    reason="Graphviz is not installed (pip install graphviz; Debian: apt install graphviz)")


def _bn_loss(rng, create=True):
    x = mb.tensor(rng.standard_normal((4, 3)), requires_grad=True)
    gamma = mb.tensor(1 + 0.1 * rng.standard_normal(3), requires_grad=True)
    beta = mb.tensor(rng.standard_normal(3), requires_grad=True)
    w = mb.tensor(rng.standard_normal((4, 3)))
    return x, gamma, beta, w, (F.batch_norm(x, None, None, gamma, beta, training=True) * w).sum()


def test_a_trace_holds_each_nodes_gradients_in_visiting_order_and_its_rule(rng):
    x, gamma, beta, w, loss = _bn_loss(rng)
    with mb.trace() as t:
        loss.backward()
    assert t.passes == 1 and [e.name for e in t][:3] == ["Sum", "Mul", "BatchNorm"]
    bn = t.find("BatchNorm")[0]
    assert "dx = (gamma / sigma) (dy - mean(dy) - xhat mean(dy xhat))" in bn.rule
    # the recorded arrays are the ones a learner checks the formula with
    xhat = (x.detach().numpy() - x.detach().numpy().mean(0)) / np.sqrt(x.detach().numpy().var(0) + 1e-5)
    dy, g = bn.grad_output, gamma.detach().numpy() / np.sqrt(x.detach().numpy().var(0) + 1e-5)
    np.testing.assert_allclose(bn.grad_inputs[0], g * (dy - dy.mean(0) - xhat * (dy * xhat).mean(0)), rtol=1e-12)
    np.testing.assert_allclose(dy, w.numpy(), rtol=0)
    leaves = [e for e in t if e.is_leaf]
    assert len(leaves) == 3 and all(e.rule == "accumulated into .grad" for e in leaves)
    np.testing.assert_array_equal(leaves[-1].grad_output, x.grad.numpy())
    table = str(t)
    assert "BatchNorm" in table and "4x3" in table and len(table.splitlines()) == len(t) + 1


def test_a_second_order_computation_is_traced_as_two_passes(rng):
    x, gamma, beta, w, loss = _bn_loss(rng)
    with mb.trace() as t:
        (g,) = mb.grad(loss, [x], create_graph=True)
        (g * g).sum().backward()
    assert t.passes == 2
    second = [e for e in t if e.pass_index == 2]
    assert "BatchNormGrad" in [e.name for e in second]  # the node of dx, differentiated
    assert [e.rule for e in t if e.pass_index == 1 and e.is_leaf][-1] in ("returned by grad()", "not asked for")
    assert "d/dg" in rule_of(t.find("BatchNormGrad")[0].node)
    outside = mb.tensor([1.0], requires_grad=True)
    (outside * 2).sum().backward()
    assert t.passes == 2  # nothing is recorded after the block


def test_every_function_has_a_rule():
    from minibn.autograd import Function

    seen, stack = set(), [Function]
    while stack:
        for c in stack.pop().__subclasses__():
            if c not in seen:
                seen.add(c)
                stack.append(c)
    missing = [c.__name__ for c in seen if c.__module__.startswith("minibn")
               and not any(ch in rule_of(c.__new__(c)) for ch in "=:")]
    assert not missing, missing


def _mlp_loss():
    net = nn.mlp([3, 4, 4, 2], norm="bn", dtype="float64", generator=mb.Generator(0))
    x = mb.randn(5, 3, dtype=mb.float64, generator=mb.Generator(1))
    return net, x, F.cross_entropy(net(x), mb.tensor([0, 1, 1, 0, 1]))


@pytest.mark.parametrize("renderer", ["matplotlib", pytest.param("graphviz", marks=needs_graphviz)])
def test_draw_labels_ops_fusion_parameters_and_gradients(renderer, tmp_path):
    net, x, loss = _mlp_loss()
    d = viz.draw(loss, tmp_path / "graph", names=net, renderer=renderer)
    assert d.renderer == renderer
    assert [p.suffix for p in d.paths] == [".svg", ".png"]
    assert (tmp_path / "graph.png").read_bytes()[:4] == b"\x89PNG" and b"<svg" in (tmp_path / "graph.svg").read_bytes()
    labels = list(d.labels.values())
    assert labels[0].startswith("CrossEntropy\nscalar  float64\ngrad [1.]")
    assert any("fused: BatchNorm1d -> ReLU" in label and "Linear bias" in label for label in labels)
    assert any(label.startswith("0.weight\n4x3  float64\n|grad|") for label in labels)
    (gw,) = mb.grad(loss, [net[0].weight], retain_graph=True)
    shown = next(label for label in labels if label.startswith("0.weight")).split("|grad| ")[1]
    assert float(shown) == pytest.approx(np.linalg.norm(gw.numpy()), rel=1e-3)
    assert all(p.grad is None for p in net.parameters())  # drawing accumulates nothing
    loss.backward()  # and the graph is still there to backward through
    assert net[0].weight.grad is not None
    if renderer == "graphviz":
        assert "digraph" in d.source and "fused" in d.source


def test_draw_after_backward_says_why_only_leaves_have_gradients_and_cuts_big_graphs(tmp_path):
    net, x, loss = _mlp_loss()
    loss.backward()
    d = viz.draw(loss, renderer="matplotlib", names=net)
    assert "freed" in d.note and any("|grad|" in label for label in d.labels.values() if "weight" in label)
    deep = nn.mlp([3] + [4] * 30 + [2], norm="bn", dtype="float64", generator=mb.Generator(0))
    big = viz.draw(F.cross_entropy(deep(x), mb.tensor([0, 1, 1, 0, 1])), tmp_path / "big", max_nodes=20,
                   renderer="matplotlib")
    assert len(big.labels) == 21 and big.labels["more"].startswith("... 164 more nodes")
    assert any(a == "more" for a, _ in big.edges)
    with pytest.raises(ValueError, match="renderer must be one of"):
        viz.draw(loss, renderer="svg")
    with pytest.raises(TypeError, match="expected a Tensor"):
        viz.draw(np.zeros(3))


def test_draw_module_collapses_repeated_blocks(tmp_path):
    deep = nn.mlp([6] + [5] * 9 + [2], norm="bn", generator=mb.Generator(0))
    x = mb.randn(8, 6)
    F.cross_entropy(deep(x), mb.randint(0, 2, (8,), generator=mb.Generator(2))).backward()
    blocks = viz.module_blocks(deep, x)
    assert [(b[0].split("\n"), b[2]) for b in blocks] == [
        (["Linear(6, 5)"], 1), (["BatchNorm1d(5)", "ReLU", "Linear(5, 5)"], 8), (["BatchNorm1d(5)"], 1), (["ReLU"], 1),
        (["Linear(5, 2)"], 1)]
    d = viz.draw_module(deep, x, tmp_path / "layers")
    assert "(x 8)" in d.labels["b1"] and "|d weight|" in d.labels["b1"] and d.paths


def test_the_tours_statements_hold_and_its_figures_are_written(tmp_path):
    printed = []
    result = tour.run(tmp_path / "tour", show=printed.append)
    text = "\n".join(printed)
    assert result["ok"] and len(result["statements"]) == 8
    for s in result["statements"]:
        assert s.holds, s.text
        assert s.text in text
    n = result["numbers"]
    np.testing.assert_allclose(n["dx"], n["dx_minibn"], rtol=1e-12, atol=1e-15)
    assert n["dx_ones_max"] < 1e-12 < n["fold_gradient_gap"] and n["hvp_error"] < 1e-6
    for p in result["figures"]:
        assert p.exists() and p.stat().st_size > 1000
    assert tour.main(["--out", str(tmp_path / "again")]) == 0


def test_drawing_leaves_retained_gradients_and_running_statistics_alone():
    net, x, loss = _mlp_loss()
    hidden = net[0](x)
    hidden.retain_grad()
    out = (hidden * 2).sum()
    viz.draw(out, renderer="matplotlib")
    out.backward()
    np.testing.assert_array_equal(hidden.grad.numpy(), np.full(hidden.shape, 2.0))  # one backward's worth
    before = [b.numpy().copy() for b in net.buffers()]
    net.train()
    viz.draw_module(net, x)
    assert net.training
    for b, v in zip(net.buffers(), before):
        np.testing.assert_array_equal(b.numpy(), v)
