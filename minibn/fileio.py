"""Writing files so that nothing is lost: a temporary file in the same folder, then a rename."""

from __future__ import annotations

import io
import json
import os
import tempfile

import numpy as np

TEMP_PREFIX = ".tmp-"  # a file of a write that has not been renamed yet


def write_atomic(path, data: bytes) -> None:
    """Write ``data`` to ``path``; a crash leaves the old file or the new one, never half of one.

    The new file keeps the permissions of the one it replaces, or gets the usual ones (0o666
    less the umask), not the private 0o600 of a temporary file.
    """
    path = os.fspath(path)
    folder = os.path.dirname(os.path.abspath(path))
    os.makedirs(folder, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=folder, prefix=TEMP_PREFIX, suffix="-" + os.path.basename(path))
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
            os.chmod(tmp, _mode_for(path))
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    _fsync_folder(folder)


def _fsync_folder(folder: str) -> None:
    """Make the rename itself durable (a power cut after it keeps the new file)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:  # a platform or file system that cannot open folders
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _mode_for(path) -> int:
    try:
        return os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        umask = os.umask(0)
        os.umask(umask)
        return 0o666 & ~umask


def save_npz(path, arrays: dict) -> None:
    """``numpy.savez_compressed``, atomically."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **arrays)
    write_atomic(path, buffer.getvalue())


def save_json(path, obj) -> None:
    """``obj`` as JSON, atomically. NumPy scalars and arrays become numbers and lists; NaN and
    infinities are written as Python's ``json`` writes them (``NaN``, ``Infinity``,
    ``-Infinity``), so that :func:`load_json` gives back exactly the numbers that were saved."""
    write_atomic(path, json.dumps(plain(obj), indent=1).encode())


def load_json(path):
    """What :func:`save_json` wrote (``NaN`` and ``Infinity`` as floats)."""
    with open(path, encoding="utf-8") as f:
        return json.load(f)


def plain(obj):
    """``obj`` with tuples as lists and NumPy scalars and arrays as Python numbers and lists:
    what JSON holds, so that ``json.loads(json.dumps(plain(obj))) == plain(obj)``."""
    if isinstance(obj, dict):
        return {k: plain(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [plain(v) for v in obj]
    if isinstance(obj, np.generic):
        return obj.item()
    if isinstance(obj, np.ndarray):
        return obj.tolist()
    return obj
