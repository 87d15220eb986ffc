"""One run of an experiment: its folder, its checkpoints, its numbers, its figures.

An experiment is a module; the framework drives it (:mod:`minibn.experiment.protocol` says what
it provides). One measured on a grid of variants x seeds gives a task per unit:

    \"\"\"Loss landscapes with and without batch norm (seed 001 sec. 3).\"\"\"   # the title: first line

    @dataclasses.dataclass
    class Config(experiment.GridConfig):              # seeds, workers, seed, backend, dtype, out, quiet
        SEEDS = 5
        epochs: int = option(20, "training epochs (seed 001's)", check=at_least(1))

    QUICK = {"seeds": 3, "epochs": 2}                 # --quick
    AUTHOR = {"epochs": 200}                          # --protocol author: the seed author's whole protocol
    NOTES = ("Seed 001 ran LeNet on CIFAR-10; this runs an MLP on MNIST.",)

    def variants(cfg): return ("plain", "bn")
    def task(cfg, variant, seed) -> dict: ...         # one network: train, measure; in a worker process
    def collect(cfg, results) -> dict: ...            # results[variant][i]: seed i's; the metrics' numbers

    claims = C.Claims()                               # claims(metrics) -> [claim]

    @claims.rule("LAND-VARIANCE")
    def variance(metrics): return C.claim("LAND-VARIANCE", ..., evidence, rule, decide)

    def figures(metrics, folder): return {"surface.png": lambda path: ...}
    def summary(metrics): return "..."

and one without a grid measures in one function, with the run at hand for its checkpoints:

    def measure(cfg, run) -> dict:
        state = run.state({"net": net, "sgd": opt}, record={"loss": []})   # fresh, or loaded on --resume
        for step in run.steps(state, cfg.steps, every=100):               # checkpointed every 100 steps
            ...                                                           # append to state.record
        return {"loss": state.record["loss"]}

Either way the framework writes ``metrics.json`` (the experiment, its title, the config, the
seeds, the measured numbers and the notes), then decides the claims into it, then draws the
figures, and prints the summary, the notes and every verdict.

The folder is checked before any work and created on entry; a run that fails before its first
result (a checkpoint or metrics.json) removes what it created. Leftover temporary files of a
write killed before its rename are deleted at the start. ``run.files`` lists every file
written, in order.
"""

from __future__ import annotations

import sys
from pathlib import Path

from tqdm.auto import tqdm

from .. import fileio, random
from . import checkpoint, grid, parallel, rundir
from .checkpoint import check_resume  # noqa: F401  (where the command lines find it)
from .config import Config, use_backend


def progress(iterable, quiet: bool = False, **kwargs):
    """A tqdm progress bar (silent with ``quiet``)."""
    return tqdm(iterable, disable=quiet, dynamic_ncols=True, **kwargs)


def draw_figures(figures: dict, folder: Path, name: str) -> tuple:
    """Draw each figure (file name -> ``draw(path)``) into ``folder``; return (the files written,
    {file name: error} for those that failed). A figure that fails is reported on stderr: it is
    never worth the numbers, which are saved before."""
    written, errors = [], {}
    for file, draw in figures.items():
        path = Path(folder) / file
        try:
            draw(path)
        except Exception as exc:
            errors[file] = f"{type(exc).__name__}: {exc}"
            print(f"{name}: figure {file} failed ({errors[file]})", file=sys.stderr)
            continue
        written.append(path)
    return written, errors


class Run:
    """The context of one run of ``experiment`` (a :class:`~minibn.experiment.protocol.Experiment`)
    with ``config`` (checked first); with ``resume``, the run continues from the checkpoint in
    ``config.out``."""

    def __init__(self, experiment, config: Config, resume: bool = False):
        config.check()
        name = experiment.name
        if resume and not config.out:
            raise ValueError(f"{name}: resuming needs the run folder (config.out)")
        self.experiment, self.name, self.config, self.resume = experiment, name, config, bool(resume)
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
        self._state = None

    def __enter__(self) -> "Run":
        if self.config.out:
            self._top = rundir.create(self.path)
        else:  # runs/<name>/<timestamp>, made atomically: a run started in the same second gets its own
            self.path, self._top = rundir.create_unique(self.path)
        self.config.out = str(self.path)
        self.checkpoint_path = self.path / rundir.CHECKPOINT
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
        ``record``: fresh, or when resuming, loaded from the run's checkpoint. A run has one."""
        if self._state is not None:
            raise RuntimeError(f"{self.name}: a run has one training state (Run.state was called twice)")
        state = checkpoint.TrainingState(objects, record)
        if self.resume:
            saved = checkpoint.load(self.checkpoint_path)
            check_resume(self.name, self.config, saved, self.checkpoint_path)
            state.restore(saved, self.checkpoint_path)
            self._saved_step = state.step
        self._state = state
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

    def grid(self) -> dict:
        """Every (variant, seed) of the experiment's grid (:mod:`minibn.experiment.grid`), in
        ``config.workers`` processes, a checkpoint after each job, so that a resumed run computes
        only what is missing; returns {variant: [the result of each seed, in order]}."""
        units = grid.Units(self.experiment, self.config, self.resume)
        todo = units.jobs()
        bar = progress(None, self.config.quiet, total=units.total, initial=units.total - len(todo), desc=self.name,
                       unit="task")
        failed = []

        def done(task, outcome):
            if not outcome.ok:
                failed.append((task, outcome))
                bar.write(f"{self.name}: {task.key} failed: {outcome.error}")
                return
            units.add(outcome.value)
            self._written(units.path)
            bar.update(1)

        try:
            parallel.run([parallel.Task(grid.job_name(job), grid.work, (job,)) for job in todo], done,
                         workers=self.config.workers)
        finally:
            bar.close()
        if failed:
            task, outcome = failed[0]
            raise RuntimeError(f"{self.name}: {len(failed)} of the grid's jobs failed; the first, {task.key}, with "
                               f"{outcome.error}\n{outcome.traceback}")
        return units.results()

    def checkpoint(self, state: checkpoint.TrainingState) -> Path:
        """Write the one-file checkpoint of ``state`` (atomically)."""
        checkpoint.save(self.checkpoint_path, {"experiment": self.name, "config": self.config.to_dict(),
                                               **state.snapshot()})
        self._saved_step = state.step
        self._written(self.checkpoint_path)
        return self.checkpoint_path

    # -- results ---------------------------------------------------------------------------------

    def save_metrics(self, metrics: dict) -> Path:
        """Write the run's numbers as JSON, atomically (:func:`minibn.fileio.save_json`)."""
        path = self.path / rundir.METRICS
        fileio.save_json(path, metrics)
        self._written(path)
        return path

    def save_arrays(self, name: str, arrays: dict) -> Path:
        """Arrays too large for metrics.json (histories, trajectories) as an .npz, atomically."""
        path = self.path / name
        fileio.save_npz(path, arrays)
        self._written(path)
        return path

    def draw(self, figures: dict) -> None:
        """Draw ``figures`` (file name -> ``draw(path)``) into the run folder (:func:`draw_figures`)."""
        written, errors = draw_figures(figures, self.path, self.name)
        for path in written:
            self._written(path)
        self.figure_errors.update(errors)

    def result(self, metrics: dict) -> dict:
        """The metrics with ``files`` (every file written) and ``figure_errors``."""
        return {**metrics, "files": [str(p) for p in self.files], "figure_errors": dict(self.figure_errors)}

    def _written(self, path: Path) -> None:
        self._has_result = True
        if path not in self.files:
            self.files.append(path)
