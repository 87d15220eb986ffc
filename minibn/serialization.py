"""``mb.save`` / ``mb.load`` of a state dict (name -> tensor), as ``torch.save(net.state_dict())``
and ``torch.load`` are used: one .npz file, written atomically, read without pickle."""

from __future__ import annotations

import os
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from . import fileio
from .tensor import Tensor


def save(obj, path) -> None:
    """Write a state dict (a mapping of names to Tensors or arrays) to ``path`` (.npz)."""
    if not hasattr(obj, "items"):
        raise TypeError(f"save: minibn saves state dicts (name -> tensor), got {type(obj).__name__}; for a "
                        "module, save(net.state_dict(), path) or net.save(path)")
    arrays = {}
    for name, value in obj.items():
        if not isinstance(name, str):
            raise TypeError(f"save: names must be strings, got {name!r}")
        arrays[name] = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
    fileio.save_npz(path, arrays)


def load(path, map_location=None) -> "OrderedDict[str, Tensor]":
    """Read a state dict written by :func:`save` (or ``Module.save``) as CPU tensors, or on
    ``map_location``; a file that is not one is refused with its name."""
    from .creation import tensor

    try:
        data = np.load(os.fspath(path), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array, not a state dict (.npz)")
        with data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"load: {path} is not a state dict written by minibn.save ({type(exc).__name__}: {exc})") from None
    return OrderedDict((k, tensor(a, device=map_location)) for k, a in arrays.items())
