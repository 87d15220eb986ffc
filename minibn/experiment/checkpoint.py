"""One checkpoint = one file: everything a resume needs, written atomically, verified when read.

The file is a header line, ``minibn-checkpoint 1 sha256=<hex> bytes=<n>``, then an n-byte
payload: an uncompressed .npz whose member ``meta`` is the JSON of the whole state (step,
config, record, every object's state) with each array replaced by a reference to another
member. It is written to a temporary name, fsynced, then renamed over the old checkpoint
(:func:`minibn.fileio.write_atomic`), so a kill at any moment leaves the old checkpoint or
the new one, never a mixture; the checksum turns a file damaged later into an error that
names it, instead of a resume from wrong numbers.
"""

from __future__ import annotations

import hashlib
import io
import json
import re
import zipfile
from pathlib import Path

import numpy as np

from .. import devices, fileio, random
from ..nn import Module
from ..tensor import Tensor
from .config import Config, ConfigError, flag, resume_conflicts

MAGIC = "minibn-checkpoint"
VERSION = 1
_HEADER = re.compile(rb"minibn-checkpoint (\d+) sha256=([0-9a-f]{64}) bytes=(\d+)")


class CheckpointError(ValueError):
    """A checkpoint that cannot be used; the message names the file and what is wrong."""


# -- the file ----------------------------------------------------------------------------------


def save(path, state: dict) -> None:
    """Write ``state`` (nested dicts, lists, scalars, strings, arrays, Tensors) to ``path``."""
    arrays: dict = {}
    meta = json.dumps(_pack(state, arrays, path), allow_nan=True).encode()
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.frombuffer(meta, dtype=np.uint8), **arrays)
    payload = buffer.getvalue()
    header = f"{MAGIC} {VERSION} sha256={hashlib.sha256(payload).hexdigest()} bytes={len(payload)}\n"
    fileio.write_atomic(path, header.encode() + payload)


def load(path) -> dict:
    """The state saved in ``path``; :class:`CheckpointError` if it is missing, truncated, corrupt
    or not a checkpoint."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise CheckpointError(f"no checkpoint at {path}") from None
    except OSError as exc:
        raise CheckpointError(f"cannot read checkpoint {path}: {exc.strerror or exc}") from None
    line, _, payload = data.partition(b"\n")
    match = _HEADER.fullmatch(line)
    if match is None:
        shown = line[:40].decode("utf-8", "replace")
        raise CheckpointError(f"{path} is not a minibn checkpoint (it starts with {shown!r}, "
                              f"not {MAGIC!r}); empty or overwritten?")
    version, digest, size = int(match[1]), match[2].decode(), int(match[3])
    if version != VERSION:
        raise CheckpointError(f"{path} is a version {version} checkpoint; this minibn reads version {VERSION}")
    if len(payload) < size:
        raise CheckpointError(f"{path} is truncated: {len(payload)} of its {size} payload bytes are there")
    if len(payload) > size:
        raise CheckpointError(f"{path} is corrupt: {len(payload) - size} bytes follow its {size}-byte payload")
    actual = hashlib.sha256(payload).hexdigest()
    if actual != digest:
        raise CheckpointError(f"{path} is corrupt: its payload's SHA-256 is {actual[:16]}..., the header "
                              f"says {digest[:16]}...")
    try:
        with np.load(io.BytesIO(payload), allow_pickle=False) as members:
            arrays = {k: members[k] for k in members.files}
        meta = json.loads(arrays.pop("meta").tobytes())
    except (ValueError, KeyError, OSError, zipfile.BadZipFile) as exc:  # checksum fine, content not ours
        raise CheckpointError(f"{path} has a valid checksum but unreadable content: {exc}") from None
    return _unpack(meta, arrays)


def _pack(obj, arrays: dict, path):
    if isinstance(obj, Tensor):
        obj = obj.detach()._data
    if devices._is_array(obj):
        key = f"a{len(arrays)}"
        arrays[key] = np.asarray(devices.to_device(obj, "cpu"))
        return {"__array__": key}
    if isinstance(obj, np.generic):
        return obj.item()
    if obj is None or isinstance(obj, (bool, int, float, str)):
        return obj
    if isinstance(obj, tuple):
        return {"__tuple__": [_pack(v, arrays, path) for v in obj]}
    if isinstance(obj, list):
        return [_pack(v, arrays, path) for v in obj]
    if isinstance(obj, dict):
        if all(isinstance(k, str) and not k.startswith("__") for k in obj):
            return {k: _pack(v, arrays, path) for k, v in obj.items()}
        return {"__items__": [[_pack(k, arrays, path), _pack(v, arrays, path)] for k, v in obj.items()]}
    raise CheckpointError(f"cannot store a {type(obj).__name__} in checkpoint {path}")


def _unpack(obj, arrays: dict):
    if isinstance(obj, list):
        return [_unpack(v, arrays) for v in obj]
    if isinstance(obj, dict):
        if "__array__" in obj:
            return arrays[obj["__array__"]]
        if "__tuple__" in obj:
            return tuple(_unpack(v, arrays) for v in obj["__tuple__"])
        if "__items__" in obj:
            return {_unpack(k, arrays): _unpack(v, arrays) for k, v in obj["__items__"]}
        return {k: _unpack(v, arrays) for k, v in obj.items()}
    return obj


def check_resume(name: str, config: Config, saved: dict, where, what: str = "run") -> None:
    """Refuse to continue the checkpoint ``saved`` (read from ``where``) with ``config``: one of
    another experiment, fields that would change the results (all but the ``resumable`` ones and
    the folder), or fewer steps than it has done. ``what`` it holds names it in errors: a "run"
    (named by its folder) or, say, a "job in progress" (named by its file)."""
    if saved.get("experiment") != name:
        raise CheckpointError(f"{where} is a checkpoint of {saved.get('experiment')!r}, not of {name!r}")
    differing = resume_conflicts(type(config), saved["config"], config.to_dict())
    if differing:
        holder = Path(where).parent if what == "run" else where
        raise ConfigError(differing[0], f"conflicts with the {what} in {holder}: " + "; ".join(
            f"{flag(k)} {getattr(config, k)!r} asked, {saved['config'].get(k)!r} in the {what}" for k in differing))
    steps = type(config).STEPS
    if steps and getattr(config, steps) < saved["step"]:
        raise ConfigError(steps, f"{getattr(config, steps)} is below the {saved['step']} steps the run in "
                                 f"{Path(where).parent} has already done")


# -- what a training run saves -----------------------------------------------------------------


class TrainingState:
    """What a checkpoint of a training run holds: the step, the record so far, whether training
    has stopped (``done``, e.g. a learning-rate floor reached), and named stateful objects:
    modules (parameters, buffers and any generator they own, such as noisy batch norm's),
    optimizers and schedules (anything with ``state_dict``/``load_state_dict``) and generators.
    minibn's default generator is always included.
    """

    def __init__(self, objects: dict, record: dict):
        if "default_generator" in objects:
            raise ValueError("TrainingState: the name 'default_generator' is taken (minibn's own generator)")
        self.objects = {"default_generator": random.default_generator, **objects}
        self.record = record
        self.step = 0
        self.done = False
        self.resumed = False

    def snapshot(self) -> dict:
        return {"step": self.step, "done": self.done, "record": self.record,
                "objects": {name: _state_of(obj) for name, obj in self.objects.items()}}

    def restore(self, saved: dict, source) -> None:
        """Load a :meth:`snapshot` read from ``source`` (named in errors) into the objects."""
        objects = saved["objects"]
        missing = sorted(set(self.objects) - set(objects))
        unexpected = sorted(set(objects) - set(self.objects))
        if missing or unexpected:
            raise CheckpointError(f"{source} does not match this run: missing {missing}, unexpected {unexpected}")
        for name, obj in self.objects.items():
            try:
                _load_into(obj, objects[name])
            except (KeyError, ValueError, TypeError, IndexError, RuntimeError) as exc:
                raise CheckpointError(f"{source}: cannot restore {name!r}: {exc}") from None
        self.step, self.done, self.record = int(saved["step"]), bool(saved["done"]), saved["record"]
        self.resumed = True


def _module_generators(module: Module) -> dict:
    return {f"{path}.{attr}" if path else attr: value
            for path, m in module.named_modules() for attr, value in vars(m).items()
            if isinstance(value, random.Generator)}


def _state_of(obj) -> dict:
    if isinstance(obj, random.Generator):
        return {"generator": obj.get_state()}
    if isinstance(obj, Module):
        return {"state_dict": dict(obj.state_dict()),
                "generators": {k: g.get_state() for k, g in _module_generators(obj).items()}}
    if hasattr(obj, "state_dict") and hasattr(obj, "load_state_dict"):
        return {"state_dict": obj.state_dict()}
    raise TypeError(f"cannot checkpoint a {type(obj).__name__}: it has no state_dict()/load_state_dict()")


def _load_into(obj, state: dict) -> None:
    if isinstance(obj, random.Generator):
        obj.set_state(state["generator"])
        return
    obj.load_state_dict(state["state_dict"])
    if isinstance(obj, Module):
        generators = _module_generators(obj)
        if set(generators) != set(state["generators"]):
            raise ValueError(f"generators {sorted(state['generators'])} saved, {sorted(generators)} here")
        for key, g in generators.items():
            g.set_state(state["generators"][key])
