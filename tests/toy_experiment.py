"""A tiny experiment on the framework, for its tests: a small network with noisy batch norm
(a generator of its own), momentum SGD (optimizer state) and minibn's default generator (a
random number drawn each step), on synthetic data; ``fail_at`` and ``kill_once`` make it fail
or die on purpose."""

from __future__ import annotations

import dataclasses
import os
import signal
import time
from pathlib import Path

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting
from minibn.experiment import at_least, option, positive
from minibn.experiment import claims as C
from minibn.experiment.training import batch_indices


@dataclasses.dataclass
class Config(experiment.Config):
    STEPS = "steps"

    lr: float = option(0.1, "learning rate", check=positive)
    steps: int = option(20, "training steps", check=at_least(1), resumable=True)
    width: int = option(8, "hidden width", check=at_least(1))
    checkpoint_every: int = option(5, "steps between checkpoints", check=at_least(1), resumable=True)
    fail_at: int | None = option(None, "raise an error at this step", resumable=True)
    kill_once: str | None = option(None, "marker file: if it does not exist, create it and SIGKILL this "
                                         "process at step fail_at (or 0)", resumable=True)
    sleep: float = option(0.0, "seconds to sleep in each step", check=at_least(0), resumable=True)


QUICK = {"steps": 6}
AUTHOR = {"steps": 8, "width": 4}


def measure(cfg: Config, run) -> dict:
    rng = np.random.default_rng(cfg.seed)
    x = mb.tensor(rng.standard_normal((64, 5)).astype(cfg.dtype))
    y = mb.tensor((rng.standard_normal(64) > 0).astype(np.int64))
    g = mb.Generator(cfg.seed)
    net = nn.Sequential(nn.Linear(5, cfg.width, dtype=cfg.dtype, generator=g),
                        nn.BatchNorm1d(cfg.width, noise=nn.BatchNormNoise(seed=cfg.seed), dtype=cfg.dtype),
                        nn.ReLU(), nn.Linear(cfg.width, 2, dtype=cfg.dtype, generator=g))
    opt = mb.optim.SGD(net.parameters(), lr=cfg.lr, momentum=0.9)
    state = run.state({"net": net, "sgd": opt}, {"loss": [], "draws": []})
    for step in run.steps(state, cfg.steps, every=cfg.checkpoint_every):
        if cfg.kill_once and step == (cfg.fail_at or 0) and not Path(cfg.kill_once).exists():
            Path(cfg.kill_once).write_text("killed")
            os.kill(os.getpid(), signal.SIGKILL)
        if cfg.fail_at == step and not cfg.kill_once:
            raise RuntimeError(f"toy_experiment fails at step {step} as asked")
        time.sleep(cfg.sleep)
        idx = batch_indices(cfg.seed, step, 64, 16)
        opt.zero_grad()
        loss = F.cross_entropy(net(x[idx]), y[idx])
        loss.backward()
        opt.step()
        state.record["loss"].append(loss.item())
        state.record["draws"].append(mb.randn(1).item())
    return {"loss": state.record["loss"], "draws": state.record["draws"]}


claims = C.Claims()


@claims.rule("TOY-1")
def lowers_the_loss(metrics):
    losses = metrics["loss"]
    return C.claim("TOY-1", "none", "-", "training lowers the loss", "toy", {"first": losses[0], "last": losses[-1]},
                   "REPRODUCED if the last loss is below the first",
                   lambda e: C.REPRODUCED if e["last"] < e["first"] else C.NOT_REPRODUCED, test="comparison")


def document_numbers(metrics) -> list:
    return [C.number("none", "its table", "the final loss", 0.5, metrics["loss"][-1], "a made-up number")]


def figures(metrics, folder) -> dict:
    return {"loss.png": lambda path: plotting.curves({"loss": {"toy": metrics["loss"]}}, "toy", path)}


def headline(metrics: dict) -> dict:
    return {"final_loss": metrics["loss"][-1]}


def summary(metrics: dict) -> str:
    return f"toy: {len(metrics['loss'])} steps, final loss {metrics['loss'][-1]:.4f}"


if __name__ == "__main__":
    experiment.main(__name__)
