"""The shape every experiment shares: a config, ``run(config)``, claims, figures.

    minibn.experiment.Config     the common fields (out, quiet, backend, seed, dtype); subclass it
    option, at_least, positive   fields with help, choices and checks -> the command line
    Run                          the run folder, checkpoints, metrics.json, figures
    TrainingState                what a checkpoint holds (modules, optimizers, generators, record)
    claim, compare, VERDICTS     claims whose verdicts come from measured numbers by a stated rule
    main                         an experiment's command line
    load                         an experiment by name or module

See experiments/mnist_depth10.py for one built on it, ``python -m minibn.sweep`` for grids of
runs, and experiments/reproduce.py for the report of every claim.
"""

from . import checkpoint, claims, recording, rundir, training
from .checkpoint import CheckpointError, TrainingState
from .claims import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, VERDICTS, claim, compare
from .cli import main, parse_args
from .config import Config, ConfigError, at_least, at_most, finite, option, positive
from .loader import Experiment, load
from .rundir import OutputError
from .run import Run, progress, use_backend

__all__ = ["CheckpointError", "Config", "ConfigError", "Experiment", "INCONCLUSIVE", "NOT_REPRODUCED",
           "OutputError", "PARTLY", "REPRODUCED", "Run", "TrainingState", "VERDICTS", "at_least", "at_most",
           "checkpoint", "claim", "claims", "compare", "finite", "load", "main", "option", "parse_args",
           "positive", "progress", "recording", "rundir", "training", "use_backend"]
