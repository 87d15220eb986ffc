"""Experiment configurations: a dataclass whose fields are the command line.

    @dataclasses.dataclass
    class Config(experiment.Config):
        lr: float = option(1.0, "learning rate", check=positive)
        steps: int = option(300, "training steps", check=at_least(1), resumable=True)

    @dataclasses.dataclass
    class Config(experiment.GridConfig):   # a grid of variants x seeds, in worker processes
        SEEDS = 5                           # the default of --seeds
        lr: float = option(0.01, "Adam learning rate", check=positive)

Each field becomes a flag (``lr`` -> ``--lr``) with its type, default, help
and choices; a ``tuple[int, ...]`` or ``tuple[float, ...]`` field is written as
a comma-separated list (``--sizes 100,200``) of distinct values, and its checks
apply to every element. :meth:`Config.check` tests every value (types, choices, the
field's checks, then the experiment's own ``validate`` for rules that tie
fields together) and raises :class:`ConfigError` naming the flag; the command
line turns that into an argparse error (exit 2) before anything runs.

``--backend`` is what an experiment computes with: a device and a kernel set
(:data:`BACKENDS`, applied by :func:`use_backend`).
"""

from __future__ import annotations

import dataclasses
import math
import types
import typing

from ..kernels import KERNEL_SETS, default_kernels, numba_available, set_kernels
from .parallel import cpu_count


class ConfigError(ValueError):
    """A bad configuration value; ``field`` names the field (``--flag`` on the command line)."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{flag(field)}: {message}")
        self.field, self.message = field, message


def flag(field: str) -> str:
    return "--" + field.replace("_", "-")


def option(default, help: str, *, choices=None, check=None, resumable: bool = False, metavar: str | None = None):
    """A config field: its default, help text, allowed ``choices``, ``check`` (one function or a
    tuple, each ``value -> error message or None``), and whether ``--resume`` may change it."""
    checks = () if check is None else tuple(check) if isinstance(check, (tuple, list)) else (check,)
    metadata = {"help": help, "choices": tuple(choices) if choices is not None else None, "checks": checks,
                "resumable": resumable, "metavar": metavar}
    return dataclasses.field(default=default, metadata=metadata)


# -- checks: value -> message, or None when the value is fine ---------------------------------


def at_least(low):
    def check(value):
        if value is not None and value < low:
            return f"must be at least {low}, got {value}"
    check.__doc__ = f">= {low}"
    return check


def at_most(high):
    def check(value):
        if value is not None and value > high:
            return f"must be at most {high}, got {value}"
    check.__doc__ = f"<= {high}"
    return check


def positive(value):
    """finite and > 0"""
    if value is not None and not (math.isfinite(value) and value > 0):
        return f"must be a finite number > 0, got {value}"


def finite(value):
    """finite"""
    if value is not None and not math.isfinite(value):
        return f"must be a finite number, got {value}"


BACKENDS = {"numpy": "cpu", "numba": "cpu", "cupy": "cuda"}  # backend -> its device; the CPU ones name a kernel set


def use_backend(backend: str) -> str:
    """Apply a ``--backend`` choice and return its device: numpy and numba run on the CPU with
    that kernel set, cupy on the GPU (with CuPy's kernels)."""
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {sorted(BACKENDS)}")
    if backend in KERNEL_SETS:
        set_kernels(backend)
    return BACKENDS[backend]


@dataclasses.dataclass
class Config:
    """The fields every experiment has; an experiment's config subclasses this one."""

    STEPS: typing.ClassVar[str | None] = None  # the field counting training steps, if any (--resume checks it)
    CPU_ONLY: typing.ClassVar[bool] = False    # an experiment that computes on the CPU refuses --backend cupy

    out: str | None = option(None, "output folder (default runs/<experiment>/<timestamp>)", metavar="DIR")
    quiet: bool = option(False, "no progress bar", resumable=True)
    backend: str = option(default_kernels(), "numpy or numba kernels on the CPU, cupy on the GPU",
                          choices=tuple(BACKENDS))
    seed: int = option(0, "random seed (initialization, batch order, data subsampling)", check=at_least(0))
    dtype: str = option("float32", "floating-point type of data and parameters", choices=("float32", "float64"))

    def validate(self) -> None:
        """Rules tying fields together; raise ConfigError(field, message). Override in experiments."""

    def check(self) -> "Config":
        """Check every field, then :meth:`validate`; raise :class:`ConfigError` on the first bad value."""
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            message = _type_error(value, hints[f.name])
            items = value if isinstance(value, tuple) and message is None else (value,)
            if len(items) > 1 and len(set(items)) != len(items):
                message = f"a value is repeated: {','.join(map(str, items))}"
            choices = f.metadata.get("choices")
            for item in items:
                if message is None and choices and item is not None and item not in choices:
                    message = f"must be one of {', '.join(map(str, choices))}; got {item!r}"
                for check in f.metadata.get("checks", ()):
                    message = message or check(item)
            if message:
                raise ConfigError(f.name, message)
        self.validate()
        if self.backend == "numba" and not numba_available():
            raise ConfigError("backend", "numba is not installed (pip install numba), choose numpy")
        if self.backend == "cupy" and self.CPU_ONLY:
            raise ConfigError("backend", "this experiment runs on the CPU; choose numpy or numba")
        if self.backend == "cupy":
            _check_cupy()
        return self

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)


@dataclasses.dataclass
class GridConfig(Config):
    """The config of an experiment measured on a grid of variants x seeds (``task(cfg, variant,
    seed)``), each task in one of ``workers`` processes. ``SEEDS`` sets the default of ``seeds``."""

    SEEDS: typing.ClassVar[int] = 3

    seeds: int = option(3, "seeds: --seed, --seed + 1, ... (every variant runs with each)", check=at_least(1))
    workers: int = option(min(2, cpu_count()), "processes working at once", check=at_least(1), resumable=True)

    def __init_subclass__(cls, **kwargs):
        super().__init_subclass__(**kwargs)
        if "SEEDS" in vars(cls):  # redefine the inherited field with this default (before @dataclass reads it)
            field = GridConfig.__dataclass_fields__["seeds"]
            cls.__annotations__ = {**vars(cls).get("__annotations__", {}), "seeds": int}
            cls.seeds = dataclasses.field(default=cls.SEEDS, metadata=field.metadata)

    def seed_list(self) -> list:
        """The seeds the grid runs: seed, seed + 1, ..., seed + seeds - 1."""
        return list(range(self.seed, self.seed + self.seeds))


def _check_cupy() -> None:
    from .. import devices  # (imported when needed: the config module stays light)

    try:
        devices.module_for("cuda")
    except RuntimeError as exc:
        raise ConfigError("backend", f"cupy needs a GPU: {exc}") from None


# -- types -------------------------------------------------------------------------------------


def _optional(tp):
    """(X, True) for ``X | None``, (tp, False) otherwise."""
    if typing.get_origin(tp) in (typing.Union, types.UnionType):
        args = [a for a in typing.get_args(tp) if a is not type(None)]
        if len(args) == 1 and len(typing.get_args(tp)) == 2:
            return args[0], True
    return tp, False


def _sequence(tp):
    """X for ``tuple[X, ...]``, None otherwise."""
    if typing.get_origin(tp) is tuple:
        args = typing.get_args(tp)
        if len(args) == 2 and args[1] is Ellipsis:
            return args[0]
    return None


_IS = {bool: lambda v: isinstance(v, bool),
       int: lambda v: isinstance(v, int) and not isinstance(v, bool),
       float: lambda v: isinstance(v, (int, float)) and not isinstance(v, bool),
       str: lambda v: isinstance(v, str)}


def _type_error(value, tp) -> str | None:
    base, optional = _optional(tp)
    if value is None:
        return None if optional else "must be given (got None)"
    element = _sequence(base)
    if element is not None:
        if not isinstance(value, tuple) or not value:
            return f"must be a non-empty tuple of {element.__name__}, got {value!r}"
        bad = [v for v in value if not _IS.get(element, lambda v: True)(v)]
        return f"must hold {element.__name__} values, got {bad[0]!r}" if bad else None
    ok = _IS.get(base, lambda v: True)
    return None if ok(value) else f"must be {base.__name__}, got {type(value).__name__} {value!r}"


def parse_value(cls, name: str, text: str):
    """The value of field ``name`` written as ``text`` on a command line (``none`` for None where
    the field allows it); ValueError naming the flag if it does not parse."""
    base, optional = _optional(typing.get_type_hints(cls)[name])
    if optional and text.lower() == "none":
        return None
    element = _sequence(base)
    if element is not None:
        parts = [t.strip() for t in text.split(",")]
        if not all(parts):
            raise ConfigError(name, f"invalid list {text!r}: an empty item")
        return tuple(_parse_one(element, name, t) for t in parts)
    return _parse_one(base, name, text)


def _parse_one(base, name: str, text: str):
    try:
        if base is bool:
            lowered = text.lower()
            if lowered not in ("true", "false", "1", "0", "yes", "no"):
                raise ValueError
            return lowered in ("true", "1", "yes")
        return base(text)
    except ValueError:
        kind = getattr(base, "__name__", str(base))
        raise ConfigError(name, f"invalid {kind} value {text!r}") from None


def field_names(cls) -> set:
    return {f.name for f in dataclasses.fields(cls)}


# -- resuming ----------------------------------------------------------------------------------


def from_saved(cls, saved: dict):
    """The config a run was saved with; fields it lacks (added since) take their defaults."""
    unknown = sorted(set(saved) - field_names(cls))
    if unknown:
        raise ValueError(f"the saved config has fields this version of the experiment does not know: "
                         f"{', '.join(unknown)}")
    return cls(**{k: v for k, v in saved.items()})


def resume_conflicts(cls, saved: dict, given: dict) -> list:
    """The fields of ``given`` whose values differ from the ``saved`` config, other than those
    a resume may change (``resumable``) and the output folder."""
    changeable = {f.name for f in dataclasses.fields(cls) if f.metadata.get("resumable")} | {"out"}
    default = cls()
    return [name for name, value in given.items()
            if name not in changeable and saved.get(name, getattr(default, name)) != value]
