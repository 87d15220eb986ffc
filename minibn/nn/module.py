"""Module and Parameter: the base of every layer and container (Sequential and the others are in
``containers.py``)."""

from __future__ import annotations

import contextlib
from collections import OrderedDict, namedtuple

import numpy as np

from .. import devices, serialization
from ..grad_mode import no_grad
from ..tensor import Tensor, _wrap


IncompatibleKeys = namedtuple("IncompatibleKeys", ["missing_keys", "unexpected_keys"])
IncompatibleKeys.__doc__ = "What ``load_state_dict`` returns: the module's keys the state lacked, and the state's extra keys."


class Parameter(Tensor):
    """A Tensor that a Module registers as learnable (requires grad unless told otherwise)."""

    __slots__ = ()

    def __init__(self, data=None, requires_grad: bool = True):
        if data is None:
            data = Tensor()
        super().__init__(data if isinstance(data, Tensor) else _wrap(devices.as_array(data)), requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


class Module:
    """Base class of layers and networks.

    Assigning a Parameter or a Module to an attribute registers it; buffers
    (running statistics) are registered with :meth:`register_buffer`. Call a
    module to run its ``forward``.
    """

    def __init__(self):
        object.__setattr__(self, "_parameters", OrderedDict())
        object.__setattr__(self, "_buffers", OrderedDict())
        object.__setattr__(self, "_modules", OrderedDict())
        object.__setattr__(self, "_forward_hooks", OrderedDict())
        object.__setattr__(self, "training", True)

    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}.__init__ must call super().__init__() first")
        if isinstance(value, Parameter):
            self._modules.pop(name, None)
            self._buffers.pop(name, None)
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._parameters.pop(name, None)
            self._buffers.pop(name, None)
            self._modules[name] = value
        elif name in self._buffers:
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(value).__name__}")
            self._buffers[name] = value
        elif name in self._parameters:
            if value is not None:
                raise TypeError(f"parameter {name!r} takes a Parameter or None, got {type(value).__name__}")
            self._parameters[name] = None
        else:
            self._modules.pop(name, None)
        object.__setattr__(self, name, value)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    def register_buffer(self, name: str, tensor: Tensor | None) -> None:
        """Register state that is saved and moved with the module but not learned."""
        if tensor is not None and not isinstance(tensor, Tensor):
            raise TypeError(f"buffer {name!r} must be a Tensor or None, got {type(tensor).__name__}")
        self._buffers[name] = tensor
        object.__setattr__(self, name, tensor)

    def add_module(self, name: str, module: "Module") -> None:
        """Register ``module`` as the child ``name`` (``self.name = module``, for names that are not
        identifiers or are chosen at run time)."""
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"add_module: a module name must be a non-empty string without '.', got {name!r}")
        if not isinstance(module, Module):
            raise TypeError(f"add_module: {name!r} is a {type(module).__name__}, not a Module")
        if hasattr(self, name) and name not in self._modules:
            raise KeyError(f"add_module: attribute {name!r} already exists")
        setattr(self, name, module)

    register_module = add_module

    def register_parameter(self, name: str, param: Parameter | None) -> None:
        if param is None:
            self._parameters[name] = None
            object.__setattr__(self, name, None)
        else:
            setattr(self, name, param)

    def forward(self, *args, **kwargs):
        raise NotImplementedError(f"{type(self).__name__} has no forward()")

    def __call__(self, *args, **kwargs):
        out = self.forward(*args, **kwargs)
        for hook in list(self.__dict__.get("_forward_hooks", {}).values()):
            result = hook(self, args, out)
            if result is not None:
                out = result
        return out

    def register_forward_hook(self, hook):
        """Call ``hook(module, inputs, output)`` after every forward (PyTorch's signature); a hook
        that returns a value replaces the output. Returns a handle whose ``remove()`` unregisters it."""
        key = object()
        self._forward_hooks[key] = hook
        return _RemovableHandle(self._forward_hooks, key)

    # -- traversal ---------------------------------------------------------------

    def named_modules(self, prefix: str = ""):
        yield prefix, self
        for name, child in self._modules.items():
            yield from child.named_modules(f"{prefix}.{name}" if prefix else name)

    def modules(self):
        return (m for _, m in self.named_modules())

    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def _named(self, registry: str, prefix: str, recurse: bool):
        modules = self.named_modules(prefix) if recurse else [(prefix, self)]
        seen = set()
        for mod_prefix, module in modules:
            for name, t in getattr(module, registry).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{mod_prefix}.{name}" if mod_prefix else name), t

    def named_parameters(self, prefix: str = "", recurse: bool = True):
        return self._named("_parameters", prefix, recurse)

    def parameters(self, recurse: bool = True):
        return (p for _, p in self.named_parameters(recurse=recurse))

    def named_buffers(self, prefix: str = "", recurse: bool = True):
        return self._named("_buffers", prefix, recurse)

    def buffers(self, recurse: bool = True):
        return (b for _, b in self.named_buffers(recurse=recurse))

    # -- modes and gradients ---------------------------------------------------

    def train(self, mode: bool = True) -> "Module":
        for m in self.modules():
            object.__setattr__(m, "training", bool(mode))
        return self

    def eval(self) -> "Module":
        return self.train(False)

    def zero_grad(self, set_to_none: bool = True) -> None:
        for p in self.parameters():
            if set_to_none or p.grad is None:
                p.grad = None
            else:
                with no_grad():
                    p.grad.zero_()

    def requires_grad_(self, requires_grad: bool = True) -> "Module":
        for p in self.parameters():
            p.requires_grad = requires_grad
        return self

    def apply(self, fn) -> "Module":
        """Call ``fn(module)`` on every submodule (children first) and on self."""
        for child in self.children():
            child.apply(fn)
        fn(self)
        return self

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    # -- state -------------------------------------------------------------------

    def state_dict(self) -> "OrderedDict[str, Tensor]":
        """Parameters and buffers by dotted name (detached, sharing memory)."""
        state = OrderedDict()
        for prefix, module in self.named_modules():
            for registry in (module._parameters, module._buffers):
                for name, t in registry.items():
                    if t is not None:
                        state[f"{prefix}.{name}" if prefix else name] = t.detach()
        return state

    def load_state_dict(self, state_dict, strict: bool = True, assign: bool = False) -> "IncompatibleKeys":
        """Copy values from ``state_dict`` (name -> Tensor or array) into this module's tensors.

        Returns ``(missing_keys, unexpected_keys)``, as PyTorch does; with ``strict`` (the default)
        either list non-empty is a RuntimeError, and so is a shape that differs: then every
        problem is listed and nothing is loaded. ``assign=True`` (PyTorch: put the given tensors in
        place of the module's) is refused: minibn always copies into the tensors it has."""
        if assign:
            raise NotImplementedError("load_state_dict(assign=True): minibn copies the values into the module's own "
                                      "tensors; load with assign=False")
        own = self.state_dict()
        keys = IncompatibleKeys([k for k in own if k not in state_dict], [k for k in state_dict if k not in own])
        problems = []
        if strict and keys.unexpected_keys:
            problems.append("Unexpected key(s) in state_dict: " + ", ".join(f'"{k}"' for k in keys.unexpected_keys))
        if strict and keys.missing_keys:
            problems.append("Missing key(s) in state_dict: " + ", ".join(f'"{k}"' for k in keys.missing_keys))
        hosts = {}
        for key, target in own.items():  # every value is checked before any is copied
            if key not in state_dict:
                continue
            value = state_dict[key]
            host = value.detach().cpu().numpy() if isinstance(value, Tensor) else np.asarray(value)
            if host.shape != tuple(target.shape):
                problems.append(f"size mismatch for {key}: copying a param with shape {host.shape} from checkpoint, "
                                f"the shape in current model is {tuple(target.shape)}.")
            hosts[key] = host
        if problems:
            raise RuntimeError(f"Error(s) in loading state_dict for {type(self).__name__}:\n\t"
                               + "\n\t".join(problems) + "\n(nothing was loaded)")
        for key, host in hosts.items():
            target = own[key]
            target._data[...] = devices.to_device(host.astype(target.dtype, copy=False), target.device)
            target._version[0] += 1
        return keys

    def save(self, path) -> None:
        """Write the state dict to ``path`` (.npz), atomically: ``minibn.save(self.state_dict(), path)``."""
        serialization.save(self.state_dict(), path)

    def load(self, path, strict: bool = True) -> "Module":
        """Load a state dict written by :meth:`save` (or ``minibn.save``); a file that is not one
        is refused with its name, and nothing is loaded."""
        self.load_state_dict(serialization.load(path), strict=strict)
        return self

    def to(self, *args, dtype=None, device=None) -> "Module":
        """Move or cast every parameter and buffer in place: ``net.to("cuda")``, ``net.to(mb.float64)``.

        Integer buffers (counters) keep their dtype. Gradients are dropped.
        """
        for a in args:
            if isinstance(a, (str, devices.Device)):
                device = a
            else:
                dtype = a
        dtype = None if dtype is None else devices.as_dtype(dtype)
        for module in self.modules():
            for registry in (module._parameters, module._buffers):
                for t in registry.values():
                    if t is None:
                        continue
                    data = t._data
                    if dtype is not None and data.dtype.kind in "fc":
                        data = data.astype(dtype, copy=False)
                    if device is not None:
                        data = devices.to_device(data, device)
                    if data is not t._data:
                        t._data = data
                        t._version[0] += 1
                        t.grad = None
        return self

    def float(self) -> "Module":
        return self.to(devices.float32)

    def double(self) -> "Module":
        return self.to(devices.float64)

    # -- printing ------------------------------------------------------------------

    def extra_repr(self) -> str:
        return ""

    def __repr__(self):
        lines = [f"({name}): " + repr(child).replace("\n", "\n  ") for name, child in self._modules.items()]
        head = f"{type(self).__name__}({self.extra_repr()}"
        if not lines:
            return head + ")"
        return head + "\n  " + "\n  ".join(lines) + "\n)"


class _RemovableHandle:
    def __init__(self, registry, key):
        self.registry, self.key = registry, key

    def remove(self) -> None:
        self.registry.pop(self.key, None)


@contextlib.contextmanager
def running_stats_kept(net: "Module"):
    """Training-mode forwards inside the block leave ``net``'s buffers (running statistics) as
    they were: probes and Hessians on batch statistics that are not training steps."""
    saved = [(b, b._data.copy()) for b in net.buffers()]
    try:
        yield net
    finally:
        for b, values in saved:
            b._data[...] = values
