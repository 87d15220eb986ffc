"""One-file checkpoints: exact round trips, complete training state, errors that name the file."""

import math

import numpy as np
import pytest

import minibn as mb
import minibn.functional as F
from minibn import nn
from minibn.experiment import CheckpointError, TrainingState, checkpoint
from minibn.experiment.training import Best


def test_everything_round_trips_exactly(tmp_path):
    state = {
        "floats": [0.1, 1 / 3, math.nan, math.inf, -math.inf, 5e-324],
        "ints": [0, -1, 2 ** 70], "text": "é", "none": None, "flag": True, "pair": (1, (2.5, "x")),
        "by_int": {0: {"buf": np.arange(6, dtype=np.float32).reshape(2, 3)}, 7: "seven"},
        "arrays": [np.array(0.1, dtype=np.float64), np.zeros((0, 4)), np.array([True, False]),
                   np.array([1 + 2j], dtype=np.complex128), np.array([3], dtype=np.int64)],
        "tensor": mb.tensor(np.array([1.5, -2.0], dtype=np.float64)),
        "scalar": np.float32(0.25),
    }
    path = tmp_path / "state.ckpt"
    checkpoint.save(path, state)
    back = checkpoint.load(path)
    assert back["floats"][:2] == [0.1, 1 / 3] and math.isnan(back["floats"][2])
    assert back["floats"][3:] == [math.inf, -math.inf, 5e-324]
    assert back["ints"] == [0, -1, 2 ** 70] and back["text"] == "é" and back["none"] is None and back["flag"] is True
    assert back["pair"] == (1, (2.5, "x"))
    assert set(back["by_int"]) == {0, 7} and back["by_int"][7] == "seven"
    np.testing.assert_array_equal(back["by_int"][0]["buf"], state["by_int"][0]["buf"])
    assert back["by_int"][0]["buf"].dtype == np.float32
    for a, b in zip(back["arrays"], state["arrays"]):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(back["tensor"], [1.5, -2.0])
    assert back["scalar"] == 0.25


def test_unstorable_values_are_refused_by_name(tmp_path):
    with pytest.raises(CheckpointError, match="cannot store a set"):
        checkpoint.save(tmp_path / "x.ckpt", {"s": {1, 2}})
    assert not (tmp_path / "x.ckpt").exists()


@pytest.fixture
def saved(tmp_path):
    path = tmp_path / "run" / "checkpoint.ckpt"
    checkpoint.save(path, {"step": 3, "w": np.arange(100.0)})
    return path


def test_a_truncated_checkpoint_is_named_as_such(saved):
    data = saved.read_bytes()
    for cut in (len(data) - 1, len(data) // 2, 200):
        saved.write_bytes(data[:cut])
        with pytest.raises(CheckpointError, match=f"{saved} is truncated"):
            checkpoint.load(saved)


def test_a_damaged_byte_is_caught_by_the_checksum(saved):
    data = bytearray(saved.read_bytes())
    data[-50] ^= 0x01
    saved.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match=f"{saved} is corrupt: its payload's SHA-256"):
        checkpoint.load(saved)


def test_extra_bytes_are_caught(saved):
    saved.write_bytes(saved.read_bytes() + b"x")
    with pytest.raises(CheckpointError, match="corrupt: 1 bytes follow"):
        checkpoint.load(saved)


@pytest.mark.parametrize("content", [b"", b"PK\x03\x04 an npz", b'{"step": 3}', b"minibn-checkpoint 9 x"])
def test_other_files_are_not_checkpoints(saved, content):
    saved.write_bytes(content)
    with pytest.raises(CheckpointError, match="is not a minibn checkpoint"):
        checkpoint.load(saved)


def test_a_later_format_version_is_refused(saved):
    saved.write_bytes(saved.read_bytes().replace(b"minibn-checkpoint 1 ", b"minibn-checkpoint 2 ", 1))
    with pytest.raises(CheckpointError, match="version 2 checkpoint"):
        checkpoint.load(saved)


def test_a_missing_checkpoint_is_named(tmp_path):
    with pytest.raises(CheckpointError, match=f"no checkpoint at {tmp_path / 'none.ckpt'}"):
        checkpoint.load(tmp_path / "none.ckpt")


def test_a_failed_write_keeps_the_previous_checkpoint(saved, monkeypatch):
    before = saved.read_bytes()

    def refuse(*args):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoint.fileio.os, "replace", refuse)
    with pytest.raises(OSError, match="disk full"):
        checkpoint.save(saved, {"step": 4})
    assert saved.read_bytes() == before
    assert [p.name for p in saved.parent.iterdir()] == [saved.name]  # no temporary file left


# -- training state ------------------------------------------------------------------------------


def _setup(seed=0):
    g = mb.Generator(seed)
    net = nn.Sequential(nn.Linear(4, 6, dtype=mb.float64, generator=g),
                        nn.BatchNorm1d(6, noise=nn.BatchNormNoise(seed=5), dtype=mb.float64),
                        nn.ReLU(), nn.Linear(6, 3, dtype=mb.float64, generator=g),
                        nn.BatchNorm1d(3, dtype=mb.float64))
    opts = {"sgd": mb.optim.SGD(list(net.parameters())[:2], lr=0.1, momentum=0.9, nesterov=True),
            "adam": mb.optim.Adam(list(net.parameters())[2:], lr=0.01)}
    best = Best("min")
    objects = {"net": net, **opts, "best": best}
    return net, opts, best, objects


def _train(net, opts, best, steps, record):
    rng = np.random.default_rng(len(record["loss"]))
    for _ in range(steps):
        x = mb.tensor(rng.standard_normal((16, 4)))
        y = mb.tensor(rng.integers(0, 3, 16))
        for o in opts.values():
            o.zero_grad()
        loss = F.cross_entropy(net(x), y) + mb.randn(1, dtype=mb.float64).sum() * 0  # draws from the default generator
        loss.backward()
        for o in opts.values():
            o.step()
        record["loss"].append(loss.item())
        record["draw"].append(mb.randn(1).item())
        best.update(loss.item(), len(record["loss"]))


def test_a_restored_state_continues_exactly_like_the_uninterrupted_one(tmp_path):
    mb.manual_seed(1)
    net, opts, best, objects = _setup()
    whole = {"loss": [], "draw": []}
    _train(net, opts, best, 3, whole)
    state = TrainingState(objects, {"loss": list(whole["loss"]), "draw": list(whole["draw"])})
    state.step = 3
    checkpoint.save(tmp_path / "c.ckpt", state.snapshot())
    _train(net, opts, best, 4, whole)

    mb.manual_seed(99)  # everything random must come from the checkpoint
    net2, opts2, best2, objects2 = _setup(seed=7)
    resumed = TrainingState(objects2, {})
    resumed.restore(checkpoint.load(tmp_path / "c.ckpt"), "c.ckpt")
    assert resumed.step == 3 and resumed.resumed
    _train(net2, opts2, best2, 4, resumed.record)
    assert resumed.record == whole
    assert (best2.value, best2.at) == (best.value, best.at)
    for (k, a), b in zip(net.state_dict().items(), net2.state_dict().values()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=k)


def test_restoring_into_other_objects_names_the_difference(tmp_path):
    _, _, _, objects = _setup()
    state = TrainingState(objects, {})
    checkpoint.save(tmp_path / "c.ckpt", state.snapshot())
    saved = checkpoint.load(tmp_path / "c.ckpt")
    other = TrainingState({"net": objects["net"]}, {})
    with pytest.raises(CheckpointError, match=r"missing \[\], unexpected \['adam', 'best', 'sgd'\]"):
        other.restore(saved, "c.ckpt")
    wider = TrainingState({**objects, "net": nn.mlp([4, 7, 3])}, {})
    with pytest.raises(CheckpointError, match="c.ckpt: cannot restore 'net'"):
        wider.restore(saved, "c.ckpt")
    with pytest.raises(ValueError, match="taken"):
        TrainingState({"default_generator": mb.Generator(0)}, {})
    with pytest.raises(TypeError, match="cannot checkpoint a object"):
        TrainingState({"thing": object()}, {}).snapshot()
