"""The grid of an experiment measured task by task: every (variant, seed) is a unit, computed in a
worker process by the experiment's ``task(cfg, variant, seed)`` (or, for an experiment whose seeds
train side by side, by one call of ``ensemble(cfg, variant, seeds)``), and kept in the checkpoint
under its key ``"<variant>/seed=<seed>"`` as soon as it is done.

A unit's result is a function of the config, its variant and its seed alone: each worker is a
fresh process with one BLAS thread, the config's backend, and minibn's default generator seeded
with the unit's seed (an ensemble's first seed).
"""

from __future__ import annotations

import importlib
import sys

from .. import random
from .config import from_saved, use_backend


def key(variant: str, seed: int) -> str:
    """The checkpoint's name of the unit (variant, seed)."""
    return f"{variant}/seed={seed}"


def variants_of(exp, cfg) -> list:
    """The experiment's variants for ``cfg``: distinct, non-empty strings."""
    variants = list(exp.module.variants(cfg))
    bad = [v for v in variants if not isinstance(v, str) or not v]
    if bad or not variants or len(set(variants)) != len(variants):
        raise ValueError(f"{exp.name}.variants(cfg) must give distinct non-empty strings, got {variants!r}")
    return variants


def jobs(exp, cfg, done: dict) -> list:
    """The work still to do: one job per missing unit (seed by seed, every variant of a seed in
    turn, so the first seeds finish first), or with ``ensemble`` one job per variant."""
    variants, seeds = variants_of(exp, cfg), cfg.seed_list()
    job = {"module": exp.module.__name__, "config": cfg.to_dict()}
    if exp.ensembled:
        return [{**job, "variant": v, "seeds": seeds} for v in variants
                if any(key(v, s) not in done for s in seeds)]
    return [{**job, "variant": v, "seeds": [s]} for s in seeds for v in variants if key(v, s) not in done]


def work(job: dict) -> dict:
    """Compute one job in this (worker) process: {unit key: result}."""
    module = sys.modules.get(job["module"]) or importlib.import_module(job["module"])
    cfg = from_saved(module.Config, job["config"])
    use_backend(cfg.backend)
    variant, seeds = job["variant"], job["seeds"]
    random.manual_seed(seeds[0])
    if hasattr(module, "ensemble"):
        results = list(module.ensemble(cfg, variant, list(seeds)))
        if len(results) != len(seeds):
            raise ValueError(f"{module.__name__}.ensemble gave {len(results)} results for {len(seeds)} seeds")
    else:
        results = [module.task(cfg, variant, seeds[0])]
    return {key(variant, s): r for s, r in zip(seeds, results)}
