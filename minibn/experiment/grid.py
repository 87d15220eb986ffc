"""The grid of an experiment measured task by task: every (variant, seed) is a unit, computed in a
worker process by the experiment's ``task(cfg, variant, seed)`` (or, for an experiment whose seeds
train side by side, by one call of ``ensemble(cfg, variant, seeds)``), and kept in the checkpoint
under its key ``"<variant>/seed=<seed>"`` as soon as it is done.

A unit's result is a function of the config, its variant and its seed alone: it is computed (by
:mod:`minibn.experiment.parallel`) with one BLAS thread, the config's backend, and minibn's default generator seeded with the unit's seed
(an ensemble's first seed), wherever it runs. :class:`Units` keeps the finished ones in the run's
checkpoint, written by the one process that gathers them.
"""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

from .. import random
from . import checkpoint, rundir
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


def job_name(job: dict) -> str:
    """A job's name in progress messages: its variant, and its seed unless it is an ensemble's."""
    return job["variant"] if len(job["seeds"]) > 1 else key(job["variant"], job["seeds"][0])


class Units:
    """The finished units of the grid of ``exp`` with ``cfg`` ({key: result}), kept in the run's
    one-file checkpoint (``cfg.out``): read from it when resuming, written again, atomically, after
    each job by the one process that gathers them (:meth:`add`)."""

    def __init__(self, exp, cfg, resume: bool):
        self.exp, self.cfg = exp, cfg
        self.path = Path(cfg.out) / rundir.CHECKPOINT
        self.done = {}
        if resume:
            saved = checkpoint.load(self.path)
            checkpoint.check_resume(exp.name, cfg, saved, self.path)
            done = saved.get("record", {}).get("tasks")
            if not isinstance(done, dict):
                raise checkpoint.CheckpointError(f"{self.path} holds no task results (a checkpoint of an earlier "
                                                 "version of this experiment?): start the run again")
            self.done = done

    @property
    def total(self) -> int:
        """The jobs of the whole grid."""
        return len(variants_of(self.exp, self.cfg)) * (1 if self.exp.ensembled else len(self.cfg.seed_list()))

    def jobs(self) -> list:
        """The jobs still to do (:func:`jobs`)."""
        return jobs(self.exp, self.cfg, self.done)

    def add(self, result: dict) -> None:
        """Keep a job's result ({unit key: result}) and write the checkpoint."""
        self.done.update(result)
        checkpoint.save(self.path, {"experiment": self.exp.name, "config": self.cfg.to_dict(), "step": 0,
                                    "done": False, "record": {"tasks": self.done}, "objects": {}})

    def results(self) -> dict:
        """{variant: [the result of each seed, in order]}, once every unit is done."""
        seeds = self.cfg.seed_list()
        return {v: [self.done[key(v, s)] for s in seeds] for v in variants_of(self.exp, self.cfg)}
