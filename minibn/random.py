"""Seeded random numbers: ``mb.manual_seed(0)`` or an explicit ``mb.Generator(seed)``.

Numbers are drawn on the host with NumPy's PCG64 and moved to the target
device, so a seed gives the same values on every device.
"""

from __future__ import annotations

import numpy as np


class Generator:
    """A seeded source of random numbers (NumPy's PCG64 underneath)."""

    def __init__(self, seed: int | None = None):
        self.manual_seed(seed)

    def manual_seed(self, seed: int | None) -> "Generator":
        if seed is not None and (not isinstance(seed, (int, np.integer)) or seed < 0):
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.initial_seed = seed
        self.np = np.random.Generator(np.random.PCG64(seed))
        return self

    def get_state(self) -> dict:
        """The generator's state (for checkpoints); restore it with :meth:`set_state`."""
        return self.np.bit_generator.state

    def set_state(self, state: dict) -> None:
        self.np.bit_generator.state = state

    def __repr__(self):
        return f"Generator(seed={self.initial_seed})"


default_generator = Generator()


def manual_seed(seed: int) -> Generator:
    """Seed the default generator, which every random op uses unless given ``generator=``."""
    return default_generator.manual_seed(seed)


def resolve(generator: Generator | None) -> np.random.Generator:
    if generator is None:
        return default_generator.np
    if not isinstance(generator, Generator):
        raise TypeError(f"generator must be a minibn.Generator, got {type(generator).__name__}")
    return generator.np
