"""Several runs, of one experiment or of several, as one graph of tasks on the executors of
:mod:`minibn.experiment.parallel`: in this process, in local processes, or on a Dask cluster. The
reproduction report (experiments/reproduce.py) runs its entries this way.

An :class:`Entry` is a run in its own folder, and its tasks depend on how the experiment measures:

- on a grid: one task per job of the grid (a (variant, seed) unit, or the seeds of a variant side
  by side), each job's result written into the entry's checkpoint the moment it arrives (this
  process is the checkpoint's one writer), then, once every job is in, one task that finishes the
  run (collects the numbers, writes metrics.json, decides the claims, draws the figures);
- in one function: one task, the run itself, which checkpoints as it goes;
- an entry of ``seeds`` > 1 (an experiment whose run is one seed): one such run per seed, in
  <folder>/seed=<s>/, then each claim decided over the seeds (:func:`claims.over_runs`), written
  to <folder>/metrics.json with the first seed's numbers and figures beside it.

Every task computes with one BLAS thread (:mod:`minibn.experiment.parallel`), so a report's numbers
do not depend on where its tasks ran. Started again on the same folders, the graph skips every finished job, resumes every run from its
checkpoint, and finishes again (no training) the runs that were finished, so a kill at any moment
loses at most the tasks in flight.
"""

from __future__ import annotations

import dataclasses
import shutil
from pathlib import Path

from .. import fileio
from ..experiment import checkpoint, grid, parallel, rundir
from ..experiment import claims as C
from ..experiment.config import Config, from_saved
from ..experiment.protocol import Experiment, load
from ..experiment.rejudge import rejudge

SEED_FOLDER = "seed={}"


@dataclasses.dataclass
class Entry:
    """A run of ``experiment`` with ``config`` (its folder: ``config.out``), or with ``seeds`` > 1,
    one run per seed from ``config.seed`` on, each in <folder>/seed=<s>/."""

    name: str
    experiment: Experiment
    config: Config
    seeds: int = 1

    def __post_init__(self):
        if self.seeds < 1:
            raise ValueError(f"{self.name}: seeds must be at least 1, got {self.seeds}")
        if self.seeds > 1 and self.experiment.gridded:
            raise ValueError(f"{self.name}: {self.experiment.name} runs its seeds on its grid (--seeds), "
                             "not one run per seed")

    @property
    def folder(self) -> Path:
        return Path(self.config.out)

    def runs(self) -> list:
        """The config of each of the entry's runs."""
        if self.seeds == 1:
            return [self.config]
        return [dataclasses.replace(self.config, seed=s, out=str(self.folder / SEED_FOLDER.format(s)))
                for s in range(self.config.seed, self.config.seed + self.seeds)]

    def check(self) -> None:
        """What can be checked before any work: every run's config and folder, and that a run
        already in a folder can continue with this config (ConfigError, OutputError or
        CheckpointError, naming what is wrong)."""
        once, per_seed = (self.folder / rundir.CHECKPOINT).exists(), seed_folders(self.folder)
        if self.seeds > 1 and once or self.seeds == 1 and per_seed:
            made = f"once per seed ({', '.join(f'seed={s}' for s in per_seed)})" if per_seed else "once"
            raise rundir.OutputError(f"{self.folder} holds this entry run {made}; here it runs "
                                     f"{'once' if self.seeds == 1 else f'once per seed ({self.seeds} seeds)'}: "
                                     "continue it with the protocol that made it, or choose another folder")
        for cfg in self.runs():
            cfg.check()
            folder = Path(cfg.out)
            resume = rundir.holds_run(folder)
            if (folder / rundir.CHECKPOINT).exists():
                path = folder / rundir.CHECKPOINT
                checkpoint.check_resume(self.experiment.name, cfg, checkpoint.load(path), path)
            rundir.check_output(folder, resume=resume)

    def continues(self) -> bool:
        """Whether a run of this entry is already there (finished or cut short)."""
        return any(rundir.holds_run(Path(cfg.out)) for cfg in self.runs())


def run_config(spec: str, config: dict) -> dict:
    """The run of experiment ``spec`` with ``config`` (its folder: ``config["out"]``), continuing
    the run in that folder if there is one; its metrics (:meth:`Experiment.run`)."""
    exp = load(spec)
    cfg = from_saved(exp.Config, config)
    return exp.run(cfg, resume=rundir.holds_run(Path(cfg.out)))


def run_entries(entries: list, *, workers: int | None = None, dask: int | None = None,
                scheduler: str | None = None, quiet: bool = False, retries: int = 2, on_done=None) -> dict:
    """Run every entry's tasks (:func:`minibn.experiment.parallel.run` says where); return
    {entry name: its metrics, with claims and files, or {"error", "traceback"}}, in the entries'
    order. A failing entry is reported and the others go on. ``on_done()``, if given, is called
    after each task is gathered (say, to note the time spent so far)."""
    graph = _Graph(entries, quiet, on_done)
    try:
        tasks = graph.start()
        graph.bar.refresh()
        parallel.run(tasks, graph.done, workers=workers, dask=dask, scheduler=scheduler, retries=retries)
    finally:
        graph.bar.close()
    return {e.name: graph.results[e.name] for e in entries}


class _Graph:
    """The tasks of the entries and what each finished task starts."""

    def __init__(self, entries: list, quiet: bool, on_done=None):
        from ..experiment import progress

        self.entries = {e.name: e for e in entries}
        self.results, self.units, self.out, self.failed, self.seed_metrics = {}, {}, {}, {}, {}
        self.tasks = {}  # task key -> (entry name, what the task is: "job", "finish", "run" or "seed")
        self.bar = progress(None, quiet, total=0, desc="tasks", unit="task")
        self.on_done = on_done or (lambda: None)

    def _task(self, name: str, kind: str, key: str, fn, args) -> parallel.Task:
        self.tasks[key] = (name, kind)
        self.bar.total += 1  # shown at the bar's next update: a refresh per task floods a log
        return parallel.Task(key, fn, args)

    def _run(self, entry: Entry, cfg: Config, kind: str, key: str) -> parallel.Task:
        return self._task(entry.name, kind, key, run_config, (entry.experiment.spec, cfg.to_dict()))

    def start(self) -> list:
        tasks = []
        for entry in self.entries.values():
            if entry.seeds > 1:
                self.seed_metrics[entry.name] = {}
                self.out[entry.name] = entry.seeds
                tasks += [self._run(entry, cfg, "seed", f"{entry.name}/{SEED_FOLDER.format(cfg.seed)}")
                          for cfg in entry.runs()]
            elif entry.experiment.gridded:
                entry.folder.mkdir(parents=True, exist_ok=True)  # its checkpoint is written here, as jobs finish
                units = grid.Units(entry.experiment, entry.config, (entry.folder / rundir.CHECKPOINT).exists())
                jobs = units.jobs()
                self.units[entry.name], self.out[entry.name] = units, len(jobs)
                tasks += [self._task(entry.name, "job", f"{entry.name}/{grid.job_name(job)}", grid.work, (job,))
                          for job in jobs] or [self._run(entry, entry.config, "finish", entry.name)]
            else:
                tasks.append(self._run(entry, entry.config, "run", entry.name))
        return tasks

    def done(self, task: parallel.Task, outcome: parallel.Outcome) -> list:
        try:
            return self._gather(task, outcome)
        finally:
            self.on_done()

    def _gather(self, task: parallel.Task, outcome: parallel.Outcome) -> list:
        name, kind = self.tasks[task.key]
        entry = self.entries[name]
        self.bar.update(1)
        if not outcome.ok:
            self.bar.write(f"{task.key} failed: {outcome.error}")
        if kind in ("run", "finish"):
            self.results[name] = outcome.value if outcome.ok else {"error": outcome.error,
                                                                    "traceback": outcome.traceback}
            return []
        self.out[name] -= 1
        if not outcome.ok:
            self.failed.setdefault(name, (task.key, outcome))
        elif kind == "job":
            self.units[name].add(outcome.value)
        else:
            self.seed_metrics[name][task.key.rsplit("=", 1)[1]] = outcome.value
        if self.out[name]:
            return []
        if name in self.failed:
            key, first = self.failed[name]
            self.results[name] = {"error": f"{key} failed: {first.error}", "traceback": first.traceback}
            return []
        if kind == "job":
            return [self._run(entry, entry.config, "finish", name)]
        try:
            self.results[name] = combine_seeds(entry.experiment, entry.folder, self.seed_metrics[name])
        except Exception as exc:  # a failing combination is the entry's failure, not the graph's end
            self.results[name] = {"error": f"{type(exc).__name__}: {exc}", "traceback": ""}
        return []


# -- an entry of several seeds -----------------------------------------------------------------------


def combine_seeds(exp: Experiment, folder, by_seed: dict) -> dict:
    """The metrics of an entry run once per seed ({seed: that run's metrics}): the first seed's
    numbers, ``seeds``, each seed's verdicts (``per_seed``), the claims decided over the seeds and
    the documents' numbers with every seed's value beside them;
    written to ``folder``/metrics.json with the first seed's figures copied beside it."""
    folder = Path(folder)
    seeds = sorted(by_seed, key=int)
    first = by_seed[seeds[0]]
    runs = {SEED_FOLDER.format(s): by_seed[s]["claims"] for s in seeds}
    metrics = {k: v for k, v in first.items() if k not in ("files", "figure_errors", "previous")}
    metrics.update(seeds=[int(s) for s in seeds],
                   per_seed={run: {c["id"]: c["verdict"] for c in claims} for run, claims in runs.items()},
                   claims=C.over_runs(runs, f"{len(seeds)} seeds ({', '.join(seeds)}), one run each"),
                   document_numbers=C.numbers_over_runs({s: by_seed[s].get("document_numbers", []) for s in seeds}))
    fileio.save_json(folder / rundir.METRICS, metrics)
    written = [folder / rundir.METRICS]
    for png in sorted((folder / SEED_FOLDER.format(seeds[0])).glob("*.png")):
        shutil.copyfile(png, folder / png.name)
        written.append(folder / png.name)
    return {**metrics, "files": [str(p) for p in written], "figure_errors": first.get("figure_errors", {})}


def seed_folders(folder) -> dict:
    """{seed: folder} of the runs of an entry run once per seed (empty for any other run)."""
    found = {p.name.split("=", 1)[1]: p for p in Path(folder).glob(SEED_FOLDER.format("*")) if p.is_dir()}
    return {s: found[s] for s in sorted(found, key=int) if s.isdigit()}


def rejudge_entry(folder) -> dict:
    """Decide an entry's claims again from its saved metrics (:func:`minibn.experiment.rejudge`),
    over its seeds for an entry run once per seed."""
    seeds = seed_folders(folder)
    if not seeds:
        return rejudge(folder)
    by_seed = {s: rejudge(path) for s, path in seeds.items()}
    previous = fileio.load_json(Path(folder) / rundir.METRICS) if (Path(folder) / rundir.METRICS).exists() else {}
    exp = load(by_seed[next(iter(by_seed))]["experiment"])
    return {**combine_seeds(exp, folder, by_seed),
            "previous": {c["id"]: c["verdict"] for c in previous.get("claims", [])}}
