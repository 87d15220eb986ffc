"""Sweeps: a grid of independent runs of one experiment, each in its own folder.

    python -m minibn.sweep mnist_depth10 --grid lr=0.01,0.1,1 --grid seed=0,1,2 --set steps=100 \\
        [--workers N | --dask local:N | --scheduler tcp://HOST:PORT] [--out DIR] [--quick] [--quiet]

Each grid point is ``run(config)`` of the experiment with the point's values and the ``--set``
ones, in DIR/points/<name>/. Points run in N local worker processes (each running point after
point), on a local Dask cluster, or on an existing one: the same sweep on one machine or many. A sweep is resumable: a point whose result file (point.json) says it finished is skipped;
a point that was cut short resumes from its checkpoint. A failing point is recorded with its
traceback and the others go on; a point whose process or worker dies is retried. The sweep
writes DIR/results.csv and DIR/results.json (one row per point: config, status, the
experiment's headline numbers) and DIR/results.png.

The Python entry is :func:`run_sweep`.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import re
import threading
import time
import traceback
from dataclasses import dataclass
from pathlib import Path

from .. import fileio
from ..experiment import parallel, rundir
from ..experiment.config import ConfigError, field_names, parse_value
from ..experiment.protocol import load

POINT_RESULT = "point.json"
SPEC = "sweep.json"


class SweepError(ValueError):
    """A sweep that cannot run as asked (the message says why)."""


@dataclass(frozen=True)
class Point:
    name: str       # its folder under DIR/points/
    values: dict    # the config values the point sets (grid and --set)
    folder: str


# -- the grid -----------------------------------------------------------------------------------


def parse_assignments(exp, items, several: bool) -> dict:
    """``["lr=0.01,0.1", "seed=0,1"]`` -> {"lr": [0.01, 0.1], "seed": [0, 1]} (``several``), or
    ``["steps=5"]`` -> {"steps": 5}; values parsed with the field's type."""
    out = {}
    allowed = field_names(exp.Config) - {"out", "quiet"}
    for item in items:
        name, sep, text = item.partition("=")
        name = name.strip().replace("-", "_")
        if not sep or not name:
            raise SweepError(f"{item!r}: expected FIELD=VALUE{',VALUE...' if several else ''}")
        if name not in allowed:
            raise SweepError(f"{item!r}: {exp.name} has no config field {name!r} to set "
                             f"(fields: {', '.join(sorted(allowed))})")
        if name in out:
            raise SweepError(f"{name} is given twice")
        texts = text.split(",") if several else [text]
        if several and (not text or any(t == "" for t in texts)):
            raise SweepError(f"{item!r}: empty value in the list")
        try:
            values = [parse_value(exp.Config, name, t.strip()) for t in texts]
        except ConfigError as exc:
            raise SweepError(f"{item!r}: {exc.message}") from None
        if several and len(set(map(repr, values))) != len(values):
            raise SweepError(f"{item!r}: a value is repeated")
        out[name] = values if several else values[0]
    return out


def point_name(values: dict) -> str:
    """The folder name of a point: "lr=0.1,seed=0" (characters unsafe in file names replaced)."""
    text = ",".join(f"{k}={_text(v)}" for k, v in values.items()) or "default"
    return re.sub(r"[^A-Za-z0-9._=,+-]", "_", text)


def _text(value) -> str:
    return format(value, "g") if isinstance(value, float) else str(value)


def expand(grid: dict, fixed: dict, root: Path) -> list:
    """Every combination of the grid's values (the last field varying fastest) with ``fixed``."""
    points = []
    for combo in itertools.product(*grid.values()):
        values = dict(zip(grid, combo))
        name = point_name(values)
        points.append(Point(name, {**fixed, **values}, str(root / "points" / name)))
    names = [p.name for p in points]
    if len(set(names)) != len(names):
        raise SweepError("two grid points map to the same folder name; use values that differ in their text")
    return points


def default_folder(spec: str, grid: dict, fixed: dict, quick: bool) -> Path:
    """runs/sweeps/<experiment>-<hash of the grid and settings>: the same sweep, the same folder."""
    key = json.dumps({"grid": grid, "set": fixed, "quick": quick}, sort_keys=True, default=str)
    return Path("runs") / "sweeps" / f"{spec.rsplit('.', 1)[-1]}-{hashlib.sha256(key.encode()).hexdigest()[:10]}"


# -- one point ----------------------------------------------------------------------------------

_ONE_AT_A_TIME = threading.Lock()  # runs change process-wide state (kernel set, default generator)


def run_point(spec: str, values: dict, folder: str, quick: bool = False) -> dict:
    """Run one point in this process, resuming from its checkpoint if it has one; write and return
    its result: status "ok" with the headline numbers and verdicts, or "failed" with the traceback."""
    with _ONE_AT_A_TIME:
        started = time.perf_counter()
        exp = load(spec)
        path = Path(folder)
        resume = (path / rundir.CHECKPOINT).exists()
        if not resume and path.exists():
            _clear(path)  # a point that died before its first checkpoint: nothing to resume from
        try:
            config = exp.config(quick=quick, **values, out=folder, quiet=True)
            metrics = exp.run(config, resume=resume)
            result = {"status": "ok", "headline": exp.headline(metrics),
                      "claims": [{"id": c["id"], "verdict": c["verdict"]} for c in metrics.get("claims", [])]}
        except Exception as exc:  # a failing point is a result of the sweep, not its end
            result = {"status": "failed", "error": f"{type(exc).__name__}: {exc}", "traceback": traceback.format_exc()}
        result.update(values=values, seconds=time.perf_counter() - started)
        fileio.save_json(path / POINT_RESULT, result)
        return result


def _clear(path: Path) -> None:
    for p in path.iterdir():
        if p.is_file():
            p.unlink()


def read_result(folder) -> dict | None:
    """The point's result file, or None if it has none (or a damaged one)."""
    try:
        return json.loads((Path(folder) / POINT_RESULT).read_text())
    except (OSError, ValueError):
        return None


def _finished(result, point: Point) -> bool:
    """Whether ``result`` (a point's result file) says the point finished, with its values."""
    return bool(result) and result.get("status") == "ok" and result.get("values") == _jsonable(point.values)


def _jsonable(values: dict) -> dict:
    return json.loads(json.dumps(values))


def failure(values: dict, message: str) -> dict:
    return {"status": "failed", "error": message, "traceback": "", "values": values, "seconds": None}


# -- the whole sweep ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Plan:
    """A checked sweep, ready to run: the experiment, its grid and fixed values, its folder, its points."""
    spec: str
    grid: dict
    fixed: dict
    quick: bool
    root: Path
    points: list


def plan_sweep(spec: str, grid: dict, fixed: dict | None = None, out=None, quick: bool = False) -> Plan:
    """Check a sweep before anything runs: the experiment, every point's config, the folder (new,
    or holding this same sweep). :class:`SweepError` (or ValueError, OutputError) says what is wrong."""
    exp = load(spec)
    fixed = dict(fixed or {})
    unknown = sorted((set(grid) | set(fixed)) - (field_names(exp.Config) - {"out", "quiet"}))
    if unknown:
        raise SweepError(f"{exp.name} has no config field {', '.join(unknown)} a sweep can set "
                         "(out and quiet are the sweep's own)")
    overlap = set(grid) & set(fixed)
    if overlap:
        raise SweepError(f"{', '.join(sorted(overlap))} both in the grid and --set")
    root = (Path(out) if out else default_folder(spec, grid, fixed, quick)).resolve()  # workers may run elsewhere
    points = expand(grid, fixed, root)
    for p in points:
        try:
            exp.config(quick=quick, **p.values, out=p.folder).check()
        except ConfigError as exc:
            raise SweepError(f"point {p.name}: {exc}") from None
    _check_folder(root, _spec(spec, grid, fixed, quick))
    return Plan(spec, grid, fixed, quick, root, points)


def run_sweep(spec: str, grid: dict, fixed: dict | None = None, *, out=None, workers: int | None = None,
              dask: int | None = None, scheduler: str | None = None, quick: bool = False, quiet: bool = False,
              retries: int = 2) -> dict:
    """Run every point of ``grid`` (field -> values) with ``fixed`` (field -> value) for
    experiment ``spec``: in ``workers`` local processes (default: one per core), on a Dask
    LocalCluster of ``dask`` workers, or on the cluster at ``scheduler``. Returns the table
    written to results.json."""
    return execute(plan_sweep(spec, grid, fixed, out, quick), workers=workers, dask=dask, scheduler=scheduler,
                   quiet=quiet, retries=retries)


def execute(plan: Plan, *, workers=None, dask=None, scheduler=None, quiet=False, retries=2) -> dict:
    from . import report

    exp = load(plan.spec)
    plan.root.mkdir(parents=True, exist_ok=True)
    fileio.save_json(plan.root / SPEC, _spec(plan.spec, plan.grid, plan.fixed, plan.quick))
    results = {p.name: r for p in plan.points if _finished(r := read_result(p.folder), p)}
    todo = [p for p in plan.points if p.name not in results]
    bar = _progress(len(plan.points), len(plan.points) - len(todo), quiet, exp.name)
    points = {p.name: p for p in todo}

    def done(task, outcome):
        point = points[task.key]
        result = outcome.value if outcome.ok else {**failure(point.values, outcome.error),
                                                    "traceback": outcome.traceback}
        results[point.name] = result
        bar.update(1)
        if result["status"] != "ok":
            bar.write(f"point {point.name} failed: {result['error']}")

    try:
        parallel.run([parallel.Task(p.name, run_point, (plan.spec, p.values, p.folder, plan.quick)) for p in todo],
                     done, workers=workers, dask=dask, scheduler=scheduler, retries=retries)
    finally:
        bar.close()
    return report.write(plan, exp, results, rerun=len(todo))


def _spec(spec, grid, fixed, quick) -> dict:
    return _jsonable({"experiment": spec, "grid": grid, "set": fixed, "quick": quick})


def _check_folder(root: Path, spec: dict) -> None:
    """The sweep folder must be new (and creatable) or hold this same sweep."""
    existing = root / SPEC
    if existing.exists():
        try:
            saved = json.loads(existing.read_text())
        except ValueError as exc:
            raise SweepError(f"{existing} is damaged ({exc}); remove it, or choose another --out") from None
        if saved != spec:
            differing = [k for k in spec if saved.get(k) != spec[k]]
            raise SweepError(f"{root} holds another sweep: its {', '.join(differing)} differ ({saved}); "
                             "choose another --out")
        return
    rundir.check_output(root)


def _progress(total, initial, quiet, name):
    from ..experiment import progress

    return progress(None, quiet, total=total, initial=initial, desc=f"sweep {name}", unit="point")
