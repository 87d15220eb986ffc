"""One run of an experiment: its folder, its checkpoints, its numbers, its figures.

    def run(cfg: Config, resume: bool = False) -> dict:
        with Run("mnist_depth10", cfg, resume) as r:
            state = r.state({"net": net, "sgd": opt}, record={"loss": []})
            for step in r.steps(state, cfg.steps, every=cfg.checkpoint_every):
                ...                                # one step; append to state.record
            metrics = {...}
            r.save_metrics(metrics)                # numbers first: metrics.json
            r.figure("loss.png", draw_loss, metrics)
        return metrics

The folder is checked before any work and created on entry; a run that fails before its
first result (a checkpoint or metrics.json) removes what it created. Leftover temporary
files of a write killed before its rename are deleted at the start. ``r.files`` lists every
file written, in order.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm.auto import tqdm

from .. import fileio, random
from ..kernels import KERNEL_SETS, set_kernels
from . import checkpoint, parallel, rundir
from .config import Config, ConfigError, flag, resume_conflicts

BACKENDS = {"numpy": "cpu", "numba": "cpu", "cupy": "cuda"}


def use_backend(backend: str) -> str:
    """Apply a ``--backend`` choice and return its device: numpy and numba run on the CPU with
    that kernel set, cupy on the GPU."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if backend in KERNEL_SETS:
        set_kernels(backend)
    return BACKENDS[backend]


def progress(iterable, quiet: bool = False, **kwargs):
    """A tqdm progress bar (silent with ``quiet``)."""
    return tqdm(iterable, disable=quiet, dynamic_ncols=True, **kwargs)


def check_resume(name: str, config: Config, saved: dict, where) -> None:
    """Refuse to continue the checkpoint ``saved`` (read from ``where``) with ``config``: one of
    another experiment, fields that would change the results (all but the ``resumable`` ones and
    the folder), or fewer steps than it has done."""
    if saved.get("experiment") != name:
        raise checkpoint.CheckpointError(f"{where} is a checkpoint of {saved.get('experiment')!r}, not of {name!r}")
    differing = resume_conflicts(type(config), saved["config"], config.to_dict())
    if differing:
        raise ConfigError(differing[0], f"conflicts with the run in {Path(where).parent}: " + "; ".join(
            f"{flag(k)} {getattr(config, k)!r} asked, {saved['config'].get(k)!r} in the run" for k in differing))
    steps = type(config).STEPS
    if steps and getattr(config, steps) < saved["step"]:
        raise ConfigError(steps, f"{getattr(config, steps)} is below the {saved['step']} steps the run in "
                                 f"{Path(where).parent} has already done")


class Run:
    """The context of one run of experiment ``name`` with ``config`` (checked first); with
    ``resume``, the run continues from the checkpoint in ``config.out``."""

    def __init__(self, name: str, config: Config, resume: bool = False):
        config.check()
        if resume and not config.out:
            raise ValueError(f"{name}: resuming needs the run folder (config.out)")
        self.name, self.config, self.resume = name, config, bool(resume)
        self.path = Path(config.out) if config.out else rundir.default_path(name)
        # a default folder is made on entry, with a suffix if taken: its parent must take it
        rundir.check_output(self.path if config.out else self.path.parent, resume=self.resume)
        self.checkpoint_path = self.path / rundir.CHECKPOINT
        self.files: list = []
        self.figure_errors: dict = {}
        self.bar = None  # the progress bar of steps(), for set_postfix
        self._top = None
        self._has_result = False
        self._saved_step = None

    def __enter__(self) -> "Run":
        if self.config.out:
            self._top = rundir.create(self.path)
        else:  # runs/<name>/<timestamp>, made atomically: a run started in the same second gets its own
            self.path, self._top = rundir.create_unique(self.path)
        self.config.out = str(self.path)
        rundir.remove_leftovers(self.path)
        self.device = use_backend(self.config.backend)
        random.manual_seed(self.config.seed)
        return self

    def __exit__(self, exc_type, exc, tb):
        if exc_type is not None and not self._has_result:
            rundir.remove_created(self.path, self._top)
        return False

    # -- training state and checkpoints --------------------------------------------------------

    def state(self, objects: dict, record: dict) -> checkpoint.TrainingState:
        """The training state of ``objects`` (modules, optimizers, schedules, generators) and
        ``record``: fresh, or when resuming, loaded from the run's checkpoint."""
        state = checkpoint.TrainingState(objects, record)
        if self.resume:
            saved = checkpoint.load(self.checkpoint_path)
            check_resume(self.name, self.config, saved, self.checkpoint_path)
            state.restore(saved, self.checkpoint_path)
            self._saved_step = state.step
        return state

    def steps(self, state: checkpoint.TrainingState, total: int, every: int):
        """Yield the steps from ``state.step`` to ``total`` under a progress bar; after each one,
        advance ``state.step`` and checkpoint every ``every`` steps and at the end. Setting
        ``state.done`` in a step stops training after it (and is checkpointed)."""
        bar = progress(range(state.step, total), self.config.quiet, desc=self.name, unit="step",
                       initial=state.step, total=total)
        self.bar = bar
        try:
            for step in bar:
                if state.done:
                    break
                yield step
                state.step = step + 1
                if state.done or state.step == total or state.step % every == 0:
                    self.checkpoint(state)
        finally:
            bar.close()
        if self._saved_step != state.step:
            self.checkpoint(state)

    def tasks(self, state: checkpoint.TrainingState, fn, todo: list, *, total: int, record, unit: str = "task",
              workers: int = 1):
        """Run ``fn`` on each task of ``todo`` in ``workers`` processes (``parallel.imap_unordered``);
        ``record(result)`` files each result in ``state``, then a checkpoint is written, so that a
        resumed run does only the tasks still missing. ``total`` counts the done ones too (the
        progress bar)."""
        bar = progress(None, self.config.quiet, total=total, initial=total - len(todo), desc=self.name, unit=unit)
        try:
            for _, result in parallel.imap_unordered(fn, todo, workers=workers):
                record(result)
                self.checkpoint(state)
                bar.update(1)
        finally:
            bar.close()

    def checkpoint(self, state: checkpoint.TrainingState) -> Path:
        """Write the one-file checkpoint of ``state`` (atomically)."""
        checkpoint.save(self.checkpoint_path, {"experiment": self.name, "config": self.config.to_dict(),
                                               **state.snapshot()})
        self._saved_step = state.step
        self._written(self.checkpoint_path)
        return self.checkpoint_path

    # -- results ---------------------------------------------------------------------------------

    def save_metrics(self, metrics: dict, name: str = rundir.METRICS) -> Path:
        """Write the run's numbers as JSON (NaN and inf as null), atomically."""
        path = self.path / name
        fileio.save_json(path, metrics)
        self._written(path)
        return path

    def save_arrays(self, name: str, arrays: dict) -> Path:
        """Arrays too large for metrics.json (histories, trajectories) as an .npz, atomically."""
        path = self.path / name
        fileio.save_npz(path, arrays)
        self._written(path)
        return path

    def figure(self, name: str, draw, *args, **kwargs) -> Path | None:
        """``draw(*args, path, **kwargs)``: a figure ``name`` in the run folder. A figure that fails is
        reported on stderr and in :attr:`figure_errors`; the numbers are already saved."""
        path = self.path / name
        try:
            draw(*args, path, **kwargs)
        except Exception as exc:  # a figure is never worth the run's results
            self.figure_errors[name] = f"{type(exc).__name__}: {exc}"
            print(f"{self.name}: figure {name} failed ({self.figure_errors[name]})", file=sys.stderr)
            return None
        self._written(path)
        return path

    def finish(self, metrics: dict, figures: dict | None = None) -> dict:
        """Save ``metrics`` (numbers first), then draw ``figures`` (file name -> ``draw(path)``);
        return the metrics with ``files`` (every file written) and ``figure_errors`` added."""
        self.save_metrics(metrics)
        for name, draw in (figures or {}).items():
            self.figure(name, draw)
        return {**metrics, "files": [str(p) for p in self.files], "figure_errors": dict(self.figure_errors)}

    def _written(self, path: Path) -> None:
        self._has_result = True
        if path not in self.files:
            self.files.append(path)
