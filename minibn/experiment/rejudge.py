"""Decide a finished run's claims again (and set the documents' numbers beside its own again), and
draw its figures again, from its metrics.json alone.

    python -m minibn.experiment rejudge RUN_DIR [RUN_DIR ...]

A rule that changes is then applied to old runs in seconds: nothing trains, and the checkpoint is
neither read nor written. metrics.json is rewritten atomically with the new claims.
"""

from __future__ import annotations

from pathlib import Path

from .. import fileio
from . import rundir
from .claims import ClaimError
from .protocol import load
from .run import draw_figures


class RejudgeError(ValueError):
    """A run folder that cannot be rejudged; the message names it and why."""


def read_metrics(folder) -> dict:
    """The metrics.json of the run in ``folder``."""
    path = Path(folder) / rundir.METRICS
    try:
        return fileio.load_json(path)
    except FileNotFoundError:
        raise RejudgeError(f"{path} does not exist: is {folder} a finished run's folder?") from None
    except (OSError, ValueError) as exc:
        raise RejudgeError(f"cannot read {path}: {exc}") from None


def rejudge(folder, spec=None, figures: bool = True) -> dict:
    """Decide the claims of the run in ``folder`` again by the current rules of its experiment
    (``spec``, else the one its metrics name), rewrite its metrics.json and draw its figures
    (unless ``figures=False``); return the metrics with ``files`` (the files written),
    ``figure_errors`` and ``previous`` ({claim id: the verdict it had})."""
    folder = Path(folder)
    metrics = read_metrics(folder)
    spec = spec or metrics.get("experiment")
    if not spec:
        raise RejudgeError(f"{folder / rundir.METRICS} does not name its experiment; name it (--experiment)")
    try:
        exp = load(spec)
    except (ImportError, ValueError) as exc:
        raise RejudgeError(f"{folder}: cannot load experiment {spec!r}: {exc}") from None
    previous = {c["id"]: c["verdict"] for c in metrics.pop("claims", [])}
    metrics.pop("document_numbers", None)
    try:
        exp.decide(metrics)
    except ClaimError as exc:
        raise RejudgeError(f"{folder}: {exc}") from None
    fileio.save_json(folder / rundir.METRICS, metrics)
    written, errors = draw_figures(exp.figures(metrics, folder), folder, exp.name) if figures else ([], {})
    return {**metrics, "files": [str(folder / rundir.METRICS), *map(str, written)], "figure_errors": errors,
            "previous": previous}


def verdict_lines(metrics: dict) -> list:
    """One line per claim: its verdict (and the one it had, if it changed), its id and its words."""
    previous = metrics.get("previous", {})
    lines = []
    for c in metrics["claims"]:
        before = previous.get(c["id"])
        change = "" if before in (None, c["verdict"]) else f" (was {before})"
        lines.append(f"{c['verdict']:>14}  {c['id']}{change}: {c['claim']}")
    new = sorted(set(previous) - {c["id"] for c in metrics["claims"]})
    lines.extend(f"{'(gone)':>14}  {cid} (was {previous[cid]})" for cid in new)
    return lines

