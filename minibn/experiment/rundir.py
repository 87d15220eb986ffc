"""The run's output folder: checked before any work, created, cleaned of a killed write's leftovers,
and removed again if the run fails before its first result."""

from __future__ import annotations

import datetime
import os
import shutil
import tempfile
from pathlib import Path

from .. import fileio

CHECKPOINT = "checkpoint.ckpt"
METRICS = "metrics.json"
RESULTS = (CHECKPOINT, METRICS)  # files whose presence means the folder holds a run


class OutputError(OSError):
    """The output folder cannot be used; the message names it and why."""


def default_path(name: str, root: str = "runs") -> Path:
    """runs/<name>/<timestamp>, with -2, -3, ... if a run started in the same second."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    path = Path(root) / name / stamp
    k = 2
    while path.exists():
        path = Path(root) / name / f"{stamp}-{k}"
        k += 1
    return path


def holds_run(path: Path) -> bool:
    return any((path / f).exists() for f in RESULTS)


def check_output(path, resume: bool = False) -> None:
    """Raise :class:`OutputError` unless ``path`` can receive this run's files: an existing
    writable folder (holding a run only when resuming) or a new folder under a writable one."""
    path = Path(path)
    if path.exists():
        if not path.is_dir():
            raise OutputError(f"output folder {path} exists and is not a folder")
        if not resume and holds_run(path):
            raise OutputError(f"output folder {path} already holds a run ({', '.join(f for f in RESULTS if (path / f).exists())}); "
                              "continue it with --resume, or choose another --out")
        _probe(path, f"output folder {path} is not writable")
        return
    if resume:
        raise OutputError(f"run folder {path} does not exist")
    parent = path.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise OutputError(f"cannot create output folder {path}: {parent} is not a folder")
    _probe(parent, f"cannot create output folder {path}: {parent} is not writable")


def _probe(folder: Path, failure: str) -> None:
    """Write and remove a small file: permissions, read-only file systems and full disks all show."""
    try:
        fd, name = tempfile.mkstemp(dir=folder, prefix=fileio.TEMP_PREFIX + "probe-")
        os.close(fd)
        os.remove(name)
    except OSError as exc:
        raise OutputError(f"{failure} ({exc.strerror or exc})") from None


def create(path) -> Path | None:
    """Create ``path`` (and missing parents); return the topmost folder created, or None."""
    path = Path(path)
    top = None
    for folder in reversed([path, *path.parents]):
        if not folder.exists():
            top = top or folder
    path.mkdir(parents=True, exist_ok=True)
    return top


def create_unique(path) -> tuple:
    """Create ``path``, or ``path-2``, ``path-3``, ... if another process made it first; return
    (the folder, the topmost folder created)."""
    path = Path(path)
    top = create(path.parent)
    k = 1
    while True:
        candidate = path if k == 1 else path.with_name(f"{path.name}-{k}")
        try:
            candidate.mkdir()
        except FileExistsError:
            k += 1
            continue
        return candidate, top or candidate


def remove_created(path: Path, top: Path | None) -> None:
    """Undo :func:`create` for a run that failed before its first result: the run folder goes,
    and the parents created with it if they are empty."""
    if top is None:
        return
    shutil.rmtree(path, ignore_errors=True)
    folder = path
    while folder != top:
        folder = folder.parent
        try:
            folder.rmdir()
        except OSError:  # not empty: something else lives there now
            break


def remove_leftovers(path: Path) -> list:
    """Delete the temporary files of writes killed before their rename; return their names."""
    removed = []
    for p in Path(path).glob(fileio.TEMP_PREFIX + "*"):
        if p.is_file():
            p.unlink()
            removed.append(p.name)
    return removed
