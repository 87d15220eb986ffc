"""Finding an experiment: a module with a ``Config`` (a subclass of experiment.Config) and
``run(config, resume=False)``, and optionally ``QUICK`` (the --quick preset: field -> value),
``summary(metrics) -> str`` and ``headline(metrics) -> dict`` (the numbers a sweep tabulates)."""

from __future__ import annotations

import dataclasses
import importlib
import sys
import types
from pathlib import Path

from .config import Config

PROJECT_ROOT = Path(__file__).resolve().parents[2]  # holds minibn/ and experiments/ in a checkout


@dataclasses.dataclass(frozen=True)
class Experiment:
    name: str
    module: types.ModuleType

    @property
    def Config(self) -> type:
        return self.module.Config

    @property
    def quick(self) -> dict:
        return dict(getattr(self.module, "QUICK", {}))

    @property
    def description(self) -> str:
        return self.module.__doc__ or self.name

    def run(self, config, resume: bool = False) -> dict:
        return self.module.run(config, resume=resume)

    def summary(self, metrics: dict) -> str:
        summary = getattr(self.module, "summary", None)
        return summary(metrics) if summary else ""

    def headline(self, metrics: dict) -> dict:
        headline = getattr(self.module, "headline", None)
        return headline(metrics) if headline else {}

    def config(self, quick: bool = False, **values) -> Config:
        """A config: the defaults, then the --quick preset if asked, then ``values``."""
        return self.Config(**{**(self.quick if quick else {}), **values})


def load(spec) -> Experiment:
    """The experiment ``spec``: a module, the name of one in experiments/ ("mnist_depth10"), or
    an importable module path ("mypackage.my_experiment")."""
    if isinstance(spec, types.ModuleType):
        module = spec
    elif "." in spec:
        module = importlib.import_module(spec)
    else:
        if not (PROJECT_ROOT / "experiments" / f"{spec}.py").is_file():
            known = sorted(p.stem for p in (PROJECT_ROOT / "experiments").glob("[!_]*.py"))
            raise ValueError(f"no experiment {spec!r} in {PROJECT_ROOT / 'experiments'} (there: {', '.join(known)}); "
                             "or give an importable module path")
        if str(PROJECT_ROOT) not in sys.path:
            sys.path.insert(0, str(PROJECT_ROOT))
        module = importlib.import_module(f"experiments.{spec}")
    for attr in ("Config", "run"):
        if not hasattr(module, attr):
            raise ValueError(f"{module.__name__} is not an experiment: it has no {attr}")
    if not (isinstance(module.Config, type) and issubclass(module.Config, Config)):
        raise ValueError(f"{module.__name__}.Config must subclass minibn.experiment.Config")
    name = module.__name__.rsplit(".", 1)[-1]
    if name == "__main__":
        name = Path(module.__file__).stem
    return Experiment(name, module)
