"""Atomic writes: the whole new content or the old file, with ordinary permissions."""

import json
import math
import os
import stat

import numpy as np
import pytest

from minibn import fileio


def _mode(path):
    return stat.S_IMODE(os.stat(path).st_mode)


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_new_files_get_the_umask_permissions_not_the_temporary_files(tmp_path):
    old = os.umask(0o022)
    try:
        fileio.write_atomic(tmp_path / "a.bin", b"abc")
        fileio.save_json(tmp_path / "b.json", {"x": 1.0})
    finally:
        os.umask(old)
    assert _mode(tmp_path / "a.bin") == 0o644
    assert _mode(tmp_path / "b.json") == 0o644
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.bin", "b.json"]  # no temporary left


@pytest.mark.skipif(os.name != "posix", reason="POSIX permission bits")
def test_a_replaced_file_keeps_its_permissions(tmp_path):
    path = tmp_path / "keep.bin"
    path.write_bytes(b"old")
    os.chmod(path, 0o640)
    fileio.write_atomic(path, b"new")
    assert path.read_bytes() == b"new"
    assert _mode(path) == 0o640


def test_a_failed_write_leaves_the_old_file_and_no_temporary(tmp_path, monkeypatch):
    path = tmp_path / "m.json"
    fileio.save_json(path, {"step": 1})

    def crash(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(os, "replace", crash)
    with pytest.raises(OSError, match="disk full"):
        fileio.save_json(path, {"step": 2})
    assert json.loads(path.read_text()) == {"step": 1}
    assert [p.name for p in tmp_path.iterdir()] == ["m.json"]


def test_json_gives_back_what_was_saved_non_finite_numbers_too_and_npz_round_trips(tmp_path):
    saved = {"a": [1.0, float("nan")], "b": np.float32(np.inf), "c": (np.int64(3), -np.inf), "d": np.arange(2.0)}
    fileio.save_json(tmp_path / "j.json", saved)
    back = fileio.load_json(tmp_path / "j.json")
    assert json.dumps(back) == json.dumps(fileio.plain(saved))  # (NaN != NaN: compared as text)
    assert back["a"][0] == 1.0 and math.isnan(back["a"][1]) and back["b"] == math.inf
    assert back["c"] == [3, -math.inf] and type(back["c"][0]) is int and back["d"] == [0.0, 1.0]
    assert "NaN" in (tmp_path / "j.json").read_text() and "-Infinity" in (tmp_path / "j.json").read_text()
    fileio.save_npz(tmp_path / "w.npz", {"w": np.arange(6.0).reshape(2, 3)})
    with np.load(tmp_path / "w.npz") as f:
        np.testing.assert_array_equal(f["w"], np.arange(6.0).reshape(2, 3))
