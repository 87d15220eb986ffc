"""What an experiment provides, and how the framework drives it.

An experiment is a module (see :mod:`minibn.experiment.run` for one written out):

    docstring           its first line is the title; the rest describes it (``--help``)
    Config              a dataclass subclass of ``experiment.Config`` (``experiment.GridConfig`` for a grid)
    QUICK               the ``--quick`` preset, {field: value}: about a minute on 2 cores
    AUTHOR              optional: the ``--protocol author`` preset, the seed author's whole protocol
                        where the author's code gives one (its sources in NOTES)
    NOTES               sentences every run prints and keeps: settings chosen, where the documents differ
    the measurement, either
      variants(cfg)                  the grid's variants (strings), with
      task(cfg, variant, seed)       one unit's result (a dict), in a worker process, or
      ensemble(cfg, variant, seeds)  the results of several seeds trained side by side (either of the
                                     two may take ``checkpoint``: a long job's own, grid.JobCheckpoint); then
      collect(cfg, results)          the metrics' numbers from results[variant][i] (seed i's); or
      measure(cfg, run)              the metrics' numbers, with the Run for checkpoints (no grid)
    claims(metrics)     the claims checked (``claims = C.Claims()`` with one rule function per claim)
    document_numbers(metrics)  optional: each number the documents print (their text, their tables, the
                        values of their figures), beside this run's value of it (``C.number``)
    figures(metrics, folder)   {file name: draw(path)}; ``folder`` holds the run's other files
    summary(metrics)    the printed summary (the framework adds the notes and the verdicts)
    headline(metrics)   optional: the numbers a sweep tabulates

Experiments are found by name through the ``minibn.experiments`` entry points (this project's
``experiments`` package is installed with minibn and registered there), or by module path.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
import importlib.util
import json
import types
from pathlib import Path

from .. import fileio
from .config import Config, GridConfig

ENTRY_POINTS = "minibn.experiments"
PROTOCOLS = ("quick", "default", "author")  # the presets: QUICK, none, AUTHOR
DECIDED = ("claims", "document_numbers")  # what the framework computes from a run's measured numbers


def registered() -> dict:
    """{name: module path} of the experiments installed under the ``minibn.experiments`` entry points."""
    return {ep.name: ep.value for ep in importlib.metadata.entry_points(group=ENTRY_POINTS)}


@dataclasses.dataclass(frozen=True)
class Experiment:
    """An experiment module with the framework's defaults around it."""

    name: str                 # the module's own name: runs go to runs/<name>/
    spec: str                 # what load() takes to find it again (its registered name, or module path)
    module: types.ModuleType

    @property
    def Config(self) -> type:
        return self.module.Config

    @property
    def quick(self) -> dict:
        return self.preset("quick")

    def preset(self, protocol: str) -> dict:
        """The values ``protocol`` (one of :data:`PROTOCOLS`) sets over the defaults."""
        if protocol not in PROTOCOLS:
            raise ValueError(f"{self.name}: protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
        return dict(getattr(self.module, {"quick": "QUICK", "author": "AUTHOR"}.get(protocol, ""), {}))

    @property
    def notes(self) -> list:
        return list(getattr(self.module, "NOTES", ()))

    @property
    def description(self) -> str:
        return (self.module.__doc__ or self.name).strip()

    @property
    def title(self) -> str:
        return self.description.splitlines()[0]

    @property
    def gridded(self) -> bool:
        return not hasattr(self.module, "measure")

    @property
    def ensembled(self) -> bool:
        return hasattr(self.module, "ensemble")

    def config(self, quick: bool = False, protocol: str = "default", **values) -> Config:
        """A config: the defaults, then the preset of ``protocol`` (``quick``: the quick one), then ``values``."""
        if quick and protocol not in ("default", "quick"):
            raise ValueError(f"{self.name}: quick=True is the quick protocol, not {protocol!r}")
        return self.Config(**{**self.preset("quick" if quick else protocol), **values})

    # -- a run -------------------------------------------------------------------------------------

    def run(self, config: Config, resume: bool = False) -> dict:
        """Run the experiment with ``config``: measure, write metrics.json (numbers first), decide
        the claims into it, draw the figures; return the metrics with ``files`` and
        ``figure_errors``. With ``resume``, continue the run in ``config.out``."""
        from .run import Run

        with Run(self, config, resume) as r:
            metrics = self.metrics(config, self.measure(config, r))
            r.save_metrics(metrics)            # the numbers are safe before any rule runs
            self.decide(metrics)
            r.save_metrics(metrics)
            r.draw(self.figures(metrics, r.path))
            return r.result(metrics)

    def measure(self, config: Config, run) -> dict:
        if not self.gridded:
            return self.module.measure(config, run)
        results = run.grid()
        collect = getattr(self.module, "collect", None)
        return collect(config, results) if collect else {"runs": results}

    def metrics(self, config: Config, measured: dict) -> dict:
        """What metrics.json holds before the claims: the experiment, its title, the config, the
        seeds of a grid, the measured numbers and the notes, as JSON gives them back (tuples as
        lists, NumPy numbers as Python's), so that a rejudged run sees what the run saw."""
        head = {"experiment": self.spec, "title": self.title, "config": config.to_dict()}
        if isinstance(config, GridConfig):
            head["seeds"] = config.seed_list()
        clash = sorted(set(measured) & {*head, "notes", *DECIDED, "files", "figure_errors"})
        if clash:
            raise ValueError(f"{self.name}: the measured numbers may not use the framework's keys {clash}")
        return json.loads(json.dumps(fileio.plain({**head, **measured, "notes": self.notes})))

    def claims(self, metrics: dict) -> list:
        return list(self.module.claims(metrics))

    def document_numbers(self, metrics: dict) -> list:
        numbers = getattr(self.module, "document_numbers", None)
        return list(numbers(metrics)) if numbers else []

    def decide(self, metrics: dict) -> dict:
        """Put the claims and the documents' numbers beside this run's (:data:`DECIDED`) into
        ``metrics``, from its measured numbers alone (what ``rejudge`` does again)."""
        metrics["claims"] = self.claims(metrics)
        metrics["document_numbers"] = self.document_numbers(metrics)
        return metrics

    def figures(self, metrics: dict, folder) -> dict:
        figures = getattr(self.module, "figures", None)
        return dict(figures(metrics, Path(folder))) if figures else {}

    def summary(self, metrics: dict) -> str:
        """The experiment's summary, then its notes."""
        summary = getattr(self.module, "summary", None)
        lines = [summary(metrics)] if summary else []
        lines.extend(f"note: {n}" for n in metrics.get("notes", []))
        return "\n".join(line for line in lines if line)

    def headline(self, metrics: dict) -> dict:
        headline = getattr(self.module, "headline", None)
        return headline(metrics) if headline else {}


def load(spec) -> Experiment:
    """The experiment ``spec``: a module, a registered name ("mnist_depth10"; see
    :func:`registered`), or an importable module path ("mypackage.my_experiment"). A script run
    as ``__main__`` that is a registered experiment's file loads as that experiment's module, so
    that worker processes (and Dask workers) import it by name."""
    if isinstance(spec, types.ModuleType):
        module = _registered_twin(spec) if spec.__name__ == "__main__" else spec
    elif not isinstance(spec, str) or not spec:
        raise ValueError(f"an experiment is a module, a registered name or a module path, not {spec!r}")
    elif "." in spec:
        module = importlib.import_module(spec)
    else:
        known = registered()
        if spec not in known:
            raise ValueError(f"no experiment named {spec!r}; registered: {', '.join(sorted(known)) or 'none'} "
                             f"(entry points {ENTRY_POINTS!r}; is minibn installed?), or give a module path")
        module = importlib.import_module(known[spec])
    _check(module)
    name = module.__name__.rsplit(".", 1)[-1]
    if name == "__main__":
        name = Path(module.__file__).stem
    by_module = {path: n for n, path in registered().items()}
    return Experiment(name, by_module.get(module.__name__, module.__name__), module)


def _registered_twin(main: types.ModuleType) -> types.ModuleType:
    """The registered experiment module whose file ``main`` is, else ``main`` itself."""
    where = Path(getattr(main, "__file__", "") or "").resolve()
    for path in registered().values():
        found = importlib.util.find_spec(path)
        if found is not None and found.origin and Path(found.origin).resolve() == where:
            return importlib.import_module(path)
    return main


def _check(module) -> None:
    name = module.__name__
    config = getattr(module, "Config", None)
    if not (isinstance(config, type) and issubclass(config, Config)):
        raise ValueError(f"{name} is not an experiment: it needs a Config subclassing minibn.experiment.Config")
    if not callable(getattr(module, "claims", None)):
        raise ValueError(f"{name} is not an experiment: it has no claims(metrics)")
    if hasattr(module, "measure"):
        return
    if not hasattr(module, "variants") or not (hasattr(module, "task") or hasattr(module, "ensemble")):
        raise ValueError(f"{name} is not an experiment: it needs measure(cfg, run), or variants(cfg) with "
                         "task(cfg, variant, seed) or ensemble(cfg, variant, seeds)")
    if not issubclass(config, GridConfig):
        raise ValueError(f"{name}.Config must subclass minibn.experiment.GridConfig: its measurement is a grid")
