"""The grid of an experiment measured task by task: every (variant, seed) is a unit, computed in a
worker process by the experiment's ``task(cfg, variant, seed)`` (or, for an experiment whose seeds
train side by side, by one call of ``ensemble(cfg, variant, seeds)``), and kept in the checkpoint
under its key ``"<variant>/seed=<seed>"`` as soon as it is done.

A unit's result is a function of the config, its variant and its seed alone: it is computed (by
:mod:`minibn.experiment.parallel`) with one BLAS thread, the config's backend, and minibn's default generator seeded with the unit's seed
(an ensemble's first seed), wherever it runs. :class:`Units` keeps the finished ones in the run's
checkpoint, written by the one process that gathers them.

A job of an hour or more need not start again from nothing after a kill: an ``ensemble`` (or
``task``) that takes a ``checkpoint`` argument gets a :class:`JobCheckpoint`, saves its training
state there as it goes, and continues from it when the job runs again; the job's file goes once
its result is in the run's checkpoint.
"""

from __future__ import annotations

import importlib
import inspect
import sys
import time
from pathlib import Path

from .. import fileio, random
from . import checkpoint, rundir
from .config import from_saved, use_backend

JOBS = "jobs"  # the run folder's subfolder of the checkpoints of jobs in progress
SAVE_EVERY = 300.0  # seconds: at most this much of a job's work is lost to a kill


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
    ensembled = hasattr(module, "ensemble")
    compute = module.ensemble if ensembled else module.task
    kwargs = {}
    if cfg.out and "checkpoint" in inspect.signature(compute).parameters:
        kwargs["checkpoint"] = JobCheckpoint(cfg, job)
    if ensembled:
        results = list(compute(cfg, variant, list(seeds), **kwargs))
        if len(results) != len(seeds):
            raise ValueError(f"{module.__name__}.ensemble gave {len(results)} results for {len(seeds)} seeds")
    else:
        results = [compute(cfg, variant, seeds[0], **kwargs)]
    return {key(variant, s): r for s, r in zip(seeds, results)}


def job_name(job: dict) -> str:
    """A job's name in progress messages: its variant, and its seed unless it is an ensemble's."""
    return job["variant"] if len(job["seeds"]) > 1 else key(job["variant"], job["seeds"][0])


def job_path(folder, variant: str, seeds: list) -> Path:
    """The checkpoint of the job computing ``seeds`` of ``variant`` in the run folder ``folder``."""
    name = job_name({"variant": variant, "seeds": seeds}).replace("/", ".").replace("\\", ".")
    return Path(folder) / JOBS / f"{name}.ckpt"


class JobCheckpoint:
    """The training state of one job in progress, in one file of the run folder
    (<out>/jobs/<job>.ckpt), so that a job run again after a kill continues where it was.

    The experiment makes its state once, :meth:`state` (restored from the file if there is one),
    and calls :meth:`save` at points where the state is whole (say, after each epoch); a save is
    written when ``every`` seconds have passed since the last one. Saved and restored exactly,
    the state makes the continued job compute what it would have computed uninterrupted.
    """

    def __init__(self, cfg, job: dict, every: float | None = None):
        self.cfg, self.job = cfg, {"module": job["module"], "variant": job["variant"], "seeds": list(job["seeds"])}
        self.path = job_path(cfg.out, job["variant"], job["seeds"])
        self.every = SAVE_EVERY if every is None else every
        self._saved_at = time.monotonic()
        for leftover in self.path.parent.glob(f"{fileio.TEMP_PREFIX}*-{self.path.name}"):
            leftover.unlink(missing_ok=True)  # a write of this job's killed before its rename

    def state(self, objects: dict, record: dict) -> checkpoint.TrainingState:
        """The job's :class:`~minibn.experiment.checkpoint.TrainingState` of ``objects`` and ``record``,
        restored from the job's file if there is one (``resumed`` then says so)."""
        state = checkpoint.TrainingState(objects, record)
        if self.path.exists():
            saved = checkpoint.load(self.path)
            self._check(saved)
            state.restore(saved, self.path)
        self._saved_at = time.monotonic()
        return state

    def save(self, state: checkpoint.TrainingState, force: bool = False) -> bool:
        """Write ``state`` (atomically) if ``every`` seconds have passed since the last write, or
        ``force``; whether it was written."""
        if not force and time.monotonic() - self._saved_at < self.every:
            return False
        checkpoint.save(self.path, {"job": self.job, "config": self.cfg.to_dict(), **state.snapshot()})
        self._saved_at = time.monotonic()
        return True

    def _check(self, saved: dict) -> None:
        if saved.get("job") != self.job:
            raise checkpoint.CheckpointError(
                f"{self.path} is the checkpoint of the job {saved.get('job')!r}, not of {self.job!r}: delete it "
                "to compute this job from its start")
        # the job names its experiment (its module): what is left to check is the config
        checkpoint.check_resume(self.job["module"], self.cfg, {**saved, "experiment": self.job["module"]}, self.path,
                                what="job in progress")


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
        """Keep a job's result ({unit key: result}), write the checkpoint, and delete the job's
        own checkpoint (:class:`JobCheckpoint`)."""
        self.done.update(result)
        checkpoint.save(self.path, {"experiment": self.exp.name, "config": self.cfg.to_dict(), "step": 0,
                                    "done": False, "record": {"tasks": self.done}, "objects": {}})
        by_variant = {}
        for unit in result:
            variant, _, seed = unit.rpartition("/seed=")
            by_variant.setdefault(variant, []).append(int(seed))
        for variant, seeds in by_variant.items():
            job_path(self.path.parent, variant, seeds).unlink(missing_ok=True)

    def results(self) -> dict:
        """{variant: [the result of each seed, in order]}, once every unit is done."""
        seeds = self.cfg.seed_list()
        return {v: [self.done[key(v, s)] for s in seeds] for v in variants_of(self.exp, self.cfg)}
