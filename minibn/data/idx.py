"""The IDX file format of MNIST: read and write, raw or gzip-compressed.

Layout (big-endian): two zero bytes, a type code (0x08 uint8, 0x09 int8,
0x0B int16, 0x0C int32, 0x0D float32, 0x0E float64), the number of
dimensions, one uint32 per dimension, then the data in C order.
"""

from __future__ import annotations

import gzip
import os
import zlib

import numpy as np

from ..fileio import write_atomic

TYPES = {0x08: np.dtype("u1"), 0x09: np.dtype("i1"), 0x0B: np.dtype(">i2"), 0x0C: np.dtype(">i4"),
         0x0D: np.dtype(">f4"), 0x0E: np.dtype(">f8")}
CODES = {dt.newbyteorder("=") if dt.itemsize > 1 else dt: code for code, dt in TYPES.items()}


class IDXError(ValueError):
    """A file that is not a well-formed IDX file (the message names the file and the fault)."""


def decompress(data: bytes, name) -> bytes:
    """``data`` gunzipped if it starts with the gzip magic, else as it is; IDXError when corrupt."""
    if data[:2] != b"\x1f\x8b":
        return data
    try:
        return gzip.decompress(data)
    except (OSError, EOFError, zlib.error) as exc:
        raise IDXError(f"{name}: corrupt or truncated gzip stream ({exc})") from None


def _raw_bytes(path) -> bytes:
    with open(path, "rb") as f:
        return decompress(f.read(), path)


def parse_idx(data: bytes, name: str = "<bytes>") -> np.ndarray:
    """Decode the bytes of an IDX file, checking magic number, dimensions and length."""
    if len(data) < 4:
        raise IDXError(f"{name}: {len(data)} bytes is too short for an IDX header")
    if data[0] != 0 or data[1] != 0 or data[2] not in TYPES:
        raise IDXError(f"{name}: bad magic number {data[:4].hex()} (expected 0000, a type code in "
                       f"{sorted(hex(c) for c in TYPES)}, and the number of dimensions)")
    dtype, ndim = TYPES[data[2]], data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise IDXError(f"{name}: header announces {ndim} dimensions but the file ends after {len(data)} bytes")
    shape = tuple(int(d) for d in np.frombuffer(data, dtype=">u4", count=ndim, offset=4))
    expected = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    found = len(data) - header
    if found != expected:
        problem = "truncated" if found < expected else "has trailing bytes"
        raise IDXError(f"{name}: shape {shape} needs {expected} bytes of data, found {found} ({problem})")
    array = np.frombuffer(data, dtype=dtype, offset=header).reshape(shape)
    return array.astype(dtype.newbyteorder("="), copy=True)


def read_idx(path) -> np.ndarray:
    """Read an IDX file (gzip-compressed or raw, told apart by content, not by name)."""
    path = os.fspath(path)
    return parse_idx(_raw_bytes(path), path)


def idx_bytes(array: np.ndarray) -> bytes:
    """Encode an array as IDX bytes."""
    array = np.asarray(array)
    native = array.dtype.newbyteorder("=") if array.dtype.itemsize > 1 else array.dtype
    if native not in CODES:
        raise TypeError(f"IDX has no type code for dtype {array.dtype}; use one of "
                        f"{sorted(str(d) for d in CODES)}")
    code = CODES[native]
    header = bytes([0, 0, code, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    return header + np.ascontiguousarray(array, dtype=TYPES[code]).tobytes()


def write_idx(path, array: np.ndarray) -> None:
    """Write ``array`` as IDX, gzip-compressed when ``path`` ends in .gz; atomically."""
    data = idx_bytes(array)
    if os.fspath(path).endswith(".gz"):
        data = gzip.compress(data, compresslevel=9, mtime=0)
    write_atomic(path, data)
