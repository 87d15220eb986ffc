"""Containers (PyTorch's ``nn.Sequential``, ``nn.ModuleList``, ``nn.ModuleDict``,
``nn.ParameterList``): modules or parameters held in order, in a list or in a dict and
registered, so that ``parameters()``, ``state_dict()``, ``to()`` and ``train()`` see them.
``Sequential`` runs its modules through the fusion pass of :mod:`minibn.nn.fusion`."""

from __future__ import annotations

from collections import OrderedDict

from . import fusion
from .module import Module, Parameter


def _module(value, where: str) -> Module:
    if not isinstance(value, Module):
        raise TypeError(f"{where}: expected a Module, got {type(value).__name__}")
    return value


class ModuleList(Module):
    """A list of modules: ``ModuleList([Linear(4, 4) for _ in range(3)])``; index, iterate, append."""

    def __init__(self, modules=None):
        super().__init__()
        for m in modules or ():
            self.append(m)

    def append(self, module: Module) -> "ModuleList":
        setattr(self, str(len(self)), _module(module, "ModuleList.append"))
        return self

    def extend(self, modules) -> "ModuleList":
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, index):
        items = list(self._modules.values())
        return ModuleList(items[index]) if isinstance(index, slice) else items[index]

    def __setitem__(self, index, module):
        key = list(self._modules)[index]
        setattr(self, key, _module(module, "ModuleList"))

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())


class ModuleDict(Module):
    """A dict of modules by name: ``ModuleDict({"enc": Linear(4, 2), "dec": Linear(2, 4)})``."""

    def __init__(self, modules=None):
        super().__init__()
        for name, m in dict(modules or {}).items():
            self[name] = m

    def __getitem__(self, name: str) -> Module:
        return self._modules[name]

    def __setitem__(self, name: str, module: Module) -> None:
        if not isinstance(name, str) or not name or "." in name:
            raise KeyError(f"ModuleDict: a name must be a non-empty string without '.', got {name!r}")
        setattr(self, name, _module(module, f"ModuleDict[{name!r}]"))

    def __delitem__(self, name: str) -> None:
        delattr(self, name)

    def __contains__(self, name) -> bool:
        return name in self._modules

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules)

    def keys(self):
        return self._modules.keys()

    def values(self):
        return self._modules.values()

    def items(self):
        return self._modules.items()


class ParameterList(Module):
    """A list of parameters: ``ParameterList([Parameter(mb.ones(3)) for _ in range(2)])``."""

    def __init__(self, parameters=None):
        super().__init__()
        for p in parameters or ():
            self.append(p)

    def append(self, parameter) -> "ParameterList":
        if not isinstance(parameter, Parameter):
            parameter = Parameter(parameter)  # PyTorch wraps a plain tensor too
        setattr(self, str(len(self)), parameter)
        return self

    def __getitem__(self, index):
        return list(self._parameters.values())[index]

    def __len__(self):
        return len(self._parameters)

    def __iter__(self):
        return iter(self._parameters.values())


class Sequential(Module):
    """Modules applied in order: ``Sequential(Linear(784, 100), ReLU(), Linear(100, 10))``, or named
    by an ``OrderedDict([("fc1", Linear(784, 100)), ...])`` given alone."""

    def __init__(self, *modules: Module):
        super().__init__()
        named = modules[0].items() if len(modules) == 1 and isinstance(modules[0], OrderedDict) else \
            ((str(i), m) for i, m in enumerate(modules))
        for name, m in named:
            if not isinstance(m, Module):
                raise TypeError(f"Sequential: item {name} is a {type(m).__name__}, not a Module")
            self.add_module(name, m)

    fuse = True  # run Linear -> BatchNorm1d -> ReLU as fused nodes on batch statistics (nn/fusion.py)

    def forward(self, x):
        for _, x in self.stages(x):
            pass
        return x

    def stages(self, x):
        """Run the modules in order, yielding (index of the stage's last module, its output)
        after each stage: one module, or a fused run (``fuse``; ``net.fuse = False`` runs
        every module as its own node)."""
        layers = list(self._modules.values())
        i = 0
        while i < len(layers):
            n = fusion.fused_length(layers, i, x) if self.fuse else 1
            x = layers[i](x) if n == 1 else fusion.run_fused(layers[i:i + n], x)
            i += n
            yield i - 1, x

    def __getitem__(self, index):
        layers = list(self._modules.values())
        if isinstance(index, slice):
            part = Sequential(*layers[index])
            part.fuse = self.fuse
            return part
        return layers[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
