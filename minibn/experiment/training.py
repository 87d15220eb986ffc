"""Training helpers the experiments share: batch order, evaluation, divergence, best values."""

from __future__ import annotations

import math

import numpy as np

from ..grad_mode import no_grad
from ..nn.module import running_stats_kept  # noqa: F401  (the experiments' import)


def batch_indices(seed: int, step: int, n: int, batch_size: int | None, shuffle: bool = True):
    """Indices (sorted) of the samples in the batch of ``step``, or None for the full batch.

    Epoch e = step // (n // batch_size) takes the samples in the order of a permutation drawn
    from (seed, e) with ``shuffle`` (reshuffled every epoch), or from (seed, 0) without it (one
    fixed order, the same batches every epoch). A fixed function of its arguments: every
    network of a run, and a resumed run, see the same batches. The n % batch_size samples left
    over in an epoch are not used in it.
    """
    if batch_size is None or batch_size >= n:
        return None
    per_epoch = n // batch_size
    epoch, k = divmod(step, per_epoch)
    order = np.random.default_rng([seed, epoch if shuffle else 0]).permutation(n)
    return np.sort(order[k * batch_size:(k + 1) * batch_size])


def chance_accuracy(labels) -> float:
    """The accuracy of always answering the most frequent class of ``labels``: what a network that
    has learned nothing (or diverged) scores."""
    labels = np.asarray(labels)
    return float(np.bincount(labels).max() / len(labels))


@no_grad()
def evaluate(net, x, y, chunk: int = 5000) -> float:
    """Accuracy of ``net`` on (x, y) in eval mode (batch norm with its running statistics), in
    chunks of ``chunk`` samples; the module's mode is restored afterwards."""
    was_training = net.training
    net.eval()
    try:
        correct = sum(float((net(x[i:i + chunk]).argmax(1) == y[i:i + chunk]).cpu().numpy().sum())
                      for i in range(0, len(x), chunk))
    finally:
        net.train(was_training)
    return correct / len(x)


def accuracy(logits, labels) -> float:
    return float((logits.argmax(1) == labels).cpu().numpy().mean())


def divergence(loss: float, activation_rms: float, limit: float) -> str | None:
    """Why a network counts as diverged (a non-finite loss or activations, or an activation
    root-mean-square above ``limit``), or None if it has not."""
    if not math.isfinite(loss):
        return "non-finite loss"
    if not math.isfinite(activation_rms):
        return "non-finite activations"
    if activation_rms > limit:
        return f"activation RMS {activation_rms:.3g} > {limit:g}"
    return None


class Best:
    """The best value seen so far and when: ``mode="max"`` (accuracy) or ``"min"`` (loss).
    NaN never counts as best. Checkpointable (``state_dict``/``load_state_dict``)."""

    def __init__(self, mode: str = "max"):
        if mode not in ("max", "min"):
            raise ValueError(f"Best: mode must be 'max' or 'min', got {mode!r}")
        self.mode, self.value, self.at = mode, None, None

    def update(self, value: float, at) -> bool:
        """Record ``value`` measured at ``at`` (a step or epoch); True if it is a new best."""
        value = float(value)
        if math.isnan(value):
            return False
        if self.value is None or (value > self.value if self.mode == "max" else value < self.value):
            self.value, self.at = value, at
            return True
        return False

    def state_dict(self) -> dict:
        return {"mode": self.mode, "value": self.value, "at": self.at}

    def load_state_dict(self, state: dict) -> None:
        self.mode, self.value, self.at = state["mode"], state["value"], state["at"]


def lr_below(optimizer, floor: float) -> bool:
    """True once every parameter group's learning rate is below ``floor``: with
    ``minibn.optim.ReduceLROnPlateau`` (x0.1 after ``patience`` epochs without improvement),
    the seed author's protocol stops training there."""
    return all(group["lr"] < floor for group in optimizer.param_groups)


