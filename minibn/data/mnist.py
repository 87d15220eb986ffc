"""MNIST: the original IDX files (found locally or downloaded and verified) and the embedded
10 000-image training subsample that lets the experiments run offline.
"""

from __future__ import annotations

import gzip
import hashlib
import os
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np

from ..fileio import write_atomic
from .idx import IDXError, decompress, parse_idx

MEAN, STD = 0.1307, 0.3081  # of the training pixels / 255

FILES = {
    "train": ("train-images-idx3-ubyte", "train-labels-idx1-ubyte"),
    "test": ("t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"),
}
# SHA-256 of the decompressed original files: any mirror's copy must decompress to these.
SHA256 = {
    "train-images-idx3-ubyte": "ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db",
    "train-labels-idx1-ubyte": "65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5",
    "t10k-images-idx3-ubyte": "0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7",
    "t10k-labels-idx1-ubyte": "ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2",
}
MIRRORS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "https://storage.googleapis.com/cvdf-datasets/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)

SUBSET_PATH = Path(__file__).with_name("mnist_subset.npz")
SUBSET_SHA256 = "d3a8551d6319f26fb9967a3e66b3872ae5bc0e2e239c0cc0baa93fdfcf25767a"
SUBSET_SEED = 20200701  # the seed build_subset.py draws the 1 000 images per class with
SUBSET_PER_CLASS = 1000


class MNISTError(RuntimeError):
    """MNIST could not be found, downloaded or verified (the message says where it looked)."""


def cache_dir() -> Path:
    """``$XDG_CACHE_HOME/minibn``, or ``~/.cache/minibn``."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "minibn"


def search_path(root=None) -> list:
    """The folders searched, in order: ``root``, ``$MINIBN_DATA``, the user cache."""
    places = [Path(root)] if root is not None else []
    if os.environ.get("MINIBN_DATA"):
        places.append(Path(os.environ["MINIBN_DATA"]))
    places.append(cache_dir())
    return places


def _verified(name: str, data: bytes, source: str, digests: dict) -> bytes:
    """The decompressed content of ``data`` if its SHA-256 is the expected one."""
    try:
        raw = decompress(data, source)
    except IDXError as exc:
        raise MNISTError(str(exc)) from None
    digest = hashlib.sha256(raw).hexdigest()
    if digest != digests[name]:
        raise MNISTError(f"{source}: SHA-256 {digest} does not match the original {name} "
                         f"({digests[name]}); the file is corrupt or not MNIST")
    return raw


def _find(name: str, places: list, digests: dict):
    for folder in places:
        for candidate in (folder / name, folder / (name + ".gz")):
            if candidate.is_file():
                return _verified(name, candidate.read_bytes(), str(candidate), digests)
    return None


def fetch(name: str, root=None, download: bool = True, mirrors=MIRRORS, digests=SHA256,
          timeout: float = 30.0) -> bytes:
    """The verified, decompressed bytes of one MNIST file: found locally, else downloaded.

    A download is verified before it is stored, gzip-compressed, in ``root``
    (or the user cache), through a temporary file and a rename.
    """
    places = search_path(root)
    found = _find(name, places, digests)
    if found is not None:
        return found
    failures = []
    if download:
        target = (Path(root) if root is not None else cache_dir()) / (name + ".gz")
        for mirror in mirrors:
            url = mirror + name + ".gz"
            try:
                with urllib.request.urlopen(url, timeout=timeout) as response:
                    data = response.read()
                raw = _verified(name, data, url, digests)
            except (urllib.error.URLError, OSError, ValueError, MNISTError) as exc:
                failures.append(f"{url}: {exc}")
                continue
            write_atomic(target, data if data[:2] == b"\x1f\x8b" else gzip.compress(raw, mtime=0))
            return raw
    searched = "\n  ".join(str(p) for p in places)
    tried = ("\n  ".join(failures)) if failures else "(downloading was switched off)"
    raise MNISTError(
        f"MNIST file {name} not found. Searched:\n  {searched}\nDownloads tried:\n  {tried}\n"
        f"To supply the files by hand, put the four original files ({', '.join(SHA256)}, raw or .gz) "
        "in one folder and pass it as root= (or --data-dir), or set MINIBN_DATA to it."
    )


def normalize_images(images: np.ndarray, normalize: bool = True, dtype=np.float32) -> np.ndarray:
    """uint8 images (N, 28, 28) as float rows (N, 784): pixels / 255, standardized if ``normalize``."""
    dtype = np.dtype(dtype)
    x = images.reshape(len(images), -1).astype(dtype) / dtype.type(255)
    if normalize:
        x = (x - dtype.type(MEAN)) / dtype.type(STD)
    return x


def load_mnist(split: str = "train", root=None, download: bool = True, normalize: bool = True,
               dtype=np.float32):
    """The full MNIST ``split`` ("train": 60 000 images, "test": 10 000) as (images, labels).

    Images are float rows (N, 784), standardized with mean 0.1307 and std
    0.3081 when ``normalize``; labels are int64. Files are looked for in
    ``root``, ``$MINIBN_DATA`` and the user cache, then downloaded.
    """
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    image_name, label_name = FILES[split]
    images = parse_idx(fetch(image_name, root, download), image_name)
    labels = parse_idx(fetch(label_name, root, download), label_name)
    if images.shape[0] != labels.shape[0] or images.shape[1:] != (28, 28):
        raise MNISTError(f"{split}: {images.shape} images do not match {labels.shape} labels")
    return normalize_images(images, normalize, dtype), labels.astype(np.int64)


def subset_indices(labels: np.ndarray, per_class: int = SUBSET_PER_CLASS, seed: int = SUBSET_SEED) -> np.ndarray:
    """``per_class`` training indices of each digit, drawn without replacement, in sorted order."""
    rng = np.random.default_rng(seed)
    chosen = [rng.choice(np.flatnonzero(labels == c), per_class, replace=False) for c in range(10)]
    return np.sort(np.concatenate(chosen))


def load_mnist_subset(split: str = "train", normalize: bool = True, dtype=np.float32):
    """The embedded data: ``train`` is the 10 000-image training subsample (1 000 per class,
    ``subset_indices`` of the original training file), ``test`` the whole 10 000-image test set."""
    if split not in FILES:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    data = SUBSET_PATH.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != SUBSET_SHA256:
        raise MNISTError(f"{SUBSET_PATH}: SHA-256 {digest} differs from the recorded {SUBSET_SHA256}; "
                         "the package data is damaged: reinstall minibn")
    with np.load(SUBSET_PATH) as arrays:
        images, labels = arrays[f"{split}_images"], arrays[f"{split}_labels"]
    return normalize_images(images, normalize, dtype), labels.astype(np.int64)
