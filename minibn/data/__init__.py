"""Data: IDX files, MNIST (full files or the embedded subsample), synthetic sets."""

from . import synthetic
from .idx import IDXError, read_idx, write_idx
from .mnist import MNISTError, load_mnist, load_mnist_subset

__all__ = ["IDXError", "MNISTError", "load_mnist", "load_mnist_subset", "read_idx", "synthetic", "write_idx"]
