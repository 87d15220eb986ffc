"""The experiments' framework: an experiment module provides its science (config, measurement,
claims, figures; see :mod:`minibn.experiment.protocol`), and this package drives it.

    Config, GridConfig           the common fields; GridConfig adds seeds and workers for a grid
    option, at_least, positive   fields with help, choices and checks -> the command line
    Run                          the run folder, checkpoints, the grid of tasks, metrics.json, figures
    TrainingState                what a checkpoint holds (modules, optimizers, generators, record)
    claims: Claims, claim        claims whose verdicts come from measured numbers by a stated rule
    main                         an experiment's command line
    load, Experiment             an experiment by name or module, with the framework around it
    rejudge                      decide a saved run's claims again (python -m minibn.experiment rejudge)

See experiments/mnist_depth10.py for one without a grid, experiments/landscape.py for one with,
``python -m minibn.sweep`` for grids of runs, and experiments/reproduce.py for the report of
every claim.
"""

from . import checkpoint, claims, recording, rundir, training
from .checkpoint import CheckpointError, TrainingState
from .claims import INCONCLUSIVE, NOT_REPRODUCED, PARTLY, REPRODUCED, VERDICTS, ClaimError, Claims, claim, compare
from .cli import main, parse_args
from .config import (BACKENDS, Config, ConfigError, GridConfig, at_least, at_most, finite, option, positive,
                     use_backend)
from .protocol import Experiment, load, registered
from .rejudge import RejudgeError, rejudge
from .rundir import OutputError
from .run import Run, progress

__all__ = ["BACKENDS", "CheckpointError", "ClaimError", "Claims", "Config", "ConfigError", "Experiment", "GridConfig",
           "INCONCLUSIVE", "NOT_REPRODUCED", "OutputError", "PARTLY", "REPRODUCED", "RejudgeError", "Run",
           "TrainingState", "VERDICTS", "at_least", "at_most", "checkpoint", "claim", "claims", "compare", "finite",
           "load", "main", "option", "parse_args", "positive", "progress", "recording", "registered", "rejudge",
           "rundir", "training", "use_backend"]
