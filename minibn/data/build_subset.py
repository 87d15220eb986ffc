"""Build the embedded MNIST data: ``python -m minibn.data.build_subset --source DIR``.

Draws ``SUBSET_PER_CLASS`` images of each digit from the original training
file with ``SUBSET_SEED`` (see ``mnist.subset_indices``), takes the whole test
set, and writes them (uint8, with the chosen indices) to mnist_subset.npz next
to this file. Prints the SHA-256 to record as ``mnist.SUBSET_SHA256``.
"""

from __future__ import annotations

import argparse
import hashlib

import numpy as np

from ..fileio import save_npz
from . import mnist
from .idx import parse_idx


def build(source) -> str:
    arrays = {}
    for split in ("train", "test"):
        image_name, label_name = mnist.FILES[split]
        images = parse_idx(mnist.fetch(image_name, source, download=False), image_name)
        labels = parse_idx(mnist.fetch(label_name, source, download=False), label_name)
        if split == "train":
            idx = mnist.subset_indices(labels)
            arrays["train_indices"] = idx.astype(np.int32)
            images, labels = images[idx], labels[idx]
        arrays[f"{split}_images"], arrays[f"{split}_labels"] = images, labels
    save_npz(mnist.SUBSET_PATH, arrays)
    return hashlib.sha256(mnist.SUBSET_PATH.read_bytes()).hexdigest()


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", required=True, help="folder with the four original MNIST files")
    digest = build(parser.parse_args().source)
    print(f"wrote {mnist.SUBSET_PATH} ({mnist.SUBSET_PATH.stat().st_size} bytes), SHA-256 {digest}")


if __name__ == "__main__":
    main()
