"""A tiny grid experiment for the framework's tests: two variants (plain SGD and momentum) of a small
network on synthetic data, a task per (variant, seed); each task also draws from minibn's default
generator, which the grid seeds with the unit's seed. ``trace`` names a folder where every unit
computed leaves a file, ``sleep`` slows each unit down and ``fail`` makes one unit raise."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import numpy as np

import minibn as mb
import minibn.functional as F
from minibn import experiment, nn, plotting
from minibn.experiment import at_least, option
from minibn.experiment import claims as C

NOTES = ("A toy.",)


@dataclasses.dataclass
class Config(experiment.GridConfig):
    SEEDS = 2
    steps: int = option(5, "training steps", check=at_least(1))
    sleep: float = option(0.0, "seconds each unit sleeps", check=at_least(0), resumable=True)
    trace: str | None = option(None, "folder where each computed unit leaves a file", resumable=True)
    fail: str | None = option(None, "the unit (variant/seed=s) that raises", resumable=True)


QUICK = {"steps": 2}


def variants(cfg: Config) -> tuple:
    return ("sgd", "momentum")


def task(cfg: Config, variant: str, seed: int) -> dict:
    if cfg.fail == f"{variant}/seed={seed}":
        raise RuntimeError(f"toy_grid: {cfg.fail} fails as asked")
    if cfg.trace:
        (Path(cfg.trace) / f"{variant}-seed={seed}-pid={os.getpid()}-{time.monotonic_ns()}").write_text("")
    time.sleep(cfg.sleep)
    rng = np.random.default_rng(seed)
    x = mb.tensor(rng.standard_normal((32, 4)).astype(cfg.dtype))
    y = mb.tensor((rng.standard_normal(32) > 0).astype(np.int64))
    net = nn.mlp([4, 6, 2], dtype=cfg.dtype, generator=mb.Generator(seed))
    opt = mb.optim.SGD(net.parameters(), lr=0.1, momentum=0.9 if variant == "momentum" else 0.0)
    draw = mb.randn(1).item()  # from the default generator
    losses = []
    for _ in range(cfg.steps):
        opt.zero_grad()
        loss = F.cross_entropy(net(x), y)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    return {"loss": losses, "draw": draw}


def collect(cfg: Config, results: dict) -> dict:
    return {"runs": results, "final_loss": {v: [r["loss"][-1] for r in rs] for v, rs in results.items()}}


claims = C.Claims()


@claims.rule("GRID-1")
def momentum_helps(metrics):
    final = metrics["final_loss"]
    return C.claim("GRID-1", "none", "-", "momentum ends lower", "toy", {"final": final},
                   "REPRODUCED if momentum's mean final loss is below SGD's",
                   lambda e: C.REPRODUCED if np.mean(e["final"]["momentum"]) < np.mean(e["final"]["sgd"])
                   else C.NOT_REPRODUCED, test="comparison of means")


def figures(metrics, folder) -> dict:
    return {"loss.png": lambda path: plotting.curves(
        {"loss": {v: rs[0]["loss"] for v, rs in metrics["runs"].items()}}, "toy grid", path)}


if __name__ == "__main__":
    experiment.main(__name__)
