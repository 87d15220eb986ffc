"""PyTorch's spelling, ``import minibn.nn.functional as F``: the functions of :mod:`minibn.functional`."""

from ..functional import *  # noqa: F401,F403
from ..functional import __all__  # noqa: F401
