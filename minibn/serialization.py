"""``mb.save`` / ``mb.load``, as ``torch.save`` and ``torch.load`` are used in training scripts.

What is saved is a state dict, or any nesting of dicts, lists and tuples of tensors, arrays,
numbers, strings, bools and None (a checkpoint ``{"model": net.state_dict(), "epoch": 3,
"optimizer": opt.state_dict()}``). The file is one .npz: the arrays, and the nesting as JSON
in the array ``__structure__``. It is written atomically to a path, or to an open binary file
(``io.BytesIO`` too), and read without pickle, so ``load`` runs no code from the file whatever
``weights_only`` says.
"""

from __future__ import annotations

import io
import json
import os
import zipfile
import zlib
from collections import OrderedDict

import numpy as np

from . import fileio
from .legacy import Size
from .tensor import Tensor

STRUCTURE = "__structure__"


def _encode(obj, arrays: dict, where: str):
    """The JSON description of ``obj``; its arrays go into ``arrays`` under new names."""
    if isinstance(obj, (Tensor, np.ndarray)):
        name = f"a{len(arrays)}"
        if isinstance(obj, Tensor):
            arrays[name] = obj.detach().cpu().numpy()
            return {"tensor": name, "requires_grad": obj.requires_grad}
        arrays[name] = obj
        return {"ndarray": name}
    if isinstance(obj, dict):
        for k in obj:
            if not isinstance(k, (str, int)) or isinstance(k, bool):
                raise TypeError(f"save: {where} has the key {k!r}; keys must be strings or integers")
        return {"dict": [[k, _encode(v, arrays, f"{where}[{k!r}]")] for k, v in obj.items()],
                "ordered": isinstance(obj, OrderedDict)}
    if isinstance(obj, (list, tuple)):  # a Size stays a Size; another tuple subclass (a namedtuple) a tuple
        kind = "list" if isinstance(obj, list) else "size" if isinstance(obj, Size) else "tuple"
        return {kind: [_encode(v, arrays, f"{where}[{i}]") for i, v in enumerate(obj)]}
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return {"value": obj}
    if isinstance(obj, np.generic):
        return {"value": obj.item()}
    hint = "; save its state_dict()" if hasattr(obj, "state_dict") else ""
    raise TypeError(f"save: cannot store {where}, a {type(obj).__name__} (minibn saves tensors, arrays, numbers, "
                    f"strings and None in dicts, lists and tuples; it never pickles){hint}")


def _decode(node, arrays, map_location):
    from .creation import tensor

    if "tensor" in node:
        return tensor(arrays[node["tensor"]], device=map_location, requires_grad=node["requires_grad"])
    if "ndarray" in node:
        return arrays[node["ndarray"]]
    if "dict" in node:
        items = ((k, _decode(v, arrays, map_location)) for k, v in node["dict"])
        return OrderedDict(items) if node["ordered"] else dict(items)
    if "list" in node:
        return [_decode(v, arrays, map_location) for v in node["list"]]
    if "tuple" in node:
        return tuple(_decode(v, arrays, map_location) for v in node["tuple"])
    if "size" in node:
        return Size(node["size"][i]["value"] for i in range(len(node["size"])))
    return node["value"]


def save(obj, f, pickle_module=None, pickle_protocol=None) -> None:
    """Write ``obj`` (a state dict, or a nesting of dicts, lists and tuples of tensors and plain
    values) to ``f``: a path, written atomically, or a binary file object open for writing.
    ``pickle_module`` must be None and ``pickle_protocol`` is unused: nothing is pickled."""
    if pickle_module is not None:
        raise TypeError("save: minibn never pickles, so it takes no pickle_module")
    if hasattr(obj, "parameters") and hasattr(obj, "state_dict"):
        raise TypeError(f"save: cannot store a {type(obj).__name__} itself; save(net.state_dict(), f) and "
                        "net.load_state_dict(load(f)) (minibn never pickles)")
    arrays = {}
    structure = _encode(obj, arrays, "the object")
    arrays[STRUCTURE] = np.frombuffer(json.dumps(structure).encode(), dtype=np.uint8)
    if hasattr(f, "write"):
        buffer = io.BytesIO()
        np.savez_compressed(buffer, **arrays)
        f.write(buffer.getvalue())
    else:
        fileio.save_npz(f, arrays)


def load(f, map_location=None, pickle_module=None, *, weights_only: bool | None = None, mmap: bool | None = None,
         **pickle_load_args):
    """Read what :func:`save` (or ``Module.save``) wrote, from a path or a binary file object open for
    reading: tensors on the CPU, or on ``map_location`` (a device or its name). ``weights_only`` is
    accepted either way, as the file is never unpickled (``pickle_module`` must be None); ``mmap``
    is unused (the arrays are read into memory). A file that is not one of minibn's is refused with
    its name."""
    if pickle_module is not None:
        raise TypeError("load: minibn never unpickles, so it takes no pickle_module")
    if map_location is not None and not isinstance(map_location, str) and not hasattr(map_location, "type"):
        raise TypeError(f"load: map_location must be a device or its name, got {type(map_location).__name__} "
                        "(minibn takes no function or dict here; move the tensors with .to() after loading)")
    if pickle_load_args:
        raise TypeError(f"load: unexpected keyword arguments {sorted(pickle_load_args)} (minibn never unpickles)")
    name = getattr(f, "name", None) or (f if not hasattr(f, "read") else "the file object")
    try:
        data = np.load(f if hasattr(f, "read") else os.fspath(f), allow_pickle=False)
        if not isinstance(data, np.lib.npyio.NpzFile):
            raise ValueError("it holds one array, not a saved object (.npz)")
        with data:
            arrays = {k: data[k] for k in data.files}
    except FileNotFoundError:
        raise
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error) as exc:
        raise ValueError(f"load: {name} is not a file written by minibn.save ({type(exc).__name__}: {exc})") from None
    if STRUCTURE not in arrays:  # a plain .npz of name -> array: a state dict
        return OrderedDict((k, _decode({"tensor": k, "requires_grad": False}, arrays, map_location)) for k in arrays)
    structure = json.loads(arrays.pop(STRUCTURE).tobytes().decode())
    return _decode(structure, arrays, map_location)
