"""PyTorch's ``torch.backends`` switches that training scripts set: ``cudnn.deterministic``,
``cudnn.benchmark``, ``mps.is_available()``. minibn runs no cuDNN and no MPS, so they are
settable attributes that change nothing."""

from __future__ import annotations


class _Switches:
    """A backend's settable flags and whether it is available here (never, for minibn)."""

    def __init__(self, name: str, **flags):
        self.__dict__.update(flags)
        self._name = name

    def is_available(self) -> bool:
        return False

    def __repr__(self):
        flags = ", ".join(f"{k}={v!r}" for k, v in self.__dict__.items() if not k.startswith("_"))
        return f"backends.{self._name}({flags})"


cudnn = _Switches("cudnn", enabled=True, deterministic=False, benchmark=False, allow_tf32=True)
mps = _Switches("mps")
