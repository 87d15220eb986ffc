"""Utilities in PyTorch's places (``minibn.utils.data``)."""

from . import data  # noqa: F401
