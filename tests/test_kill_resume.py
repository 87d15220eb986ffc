"""A run killed with SIGKILL at any moment, then resumed, ends with the numbers of the run that
was never interrupted: metrics.json compared value for value."""

import json
import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--width", "8", "--depth", "3", "--train-size", "300", "--batch-size", "32", "--steps", "30",
        "--checkpoint-every", "1", "--eval-every", "3", "--lr", "0.5", "--backend", "numpy", "--quiet"]

# Runs the experiment; with KILL_AT_REPLACE=k it SIGKILLs itself during its k-th checkpoint write,
# after the new file is written and fsynced under its temporary name, before the rename.
RUNNER = """
import os, signal, sys
sys.path.insert(0, sys.argv[1])
kill_at = int(os.environ.get("KILL_AT_REPLACE", "0"))
if kill_at:
    real_replace, count = os.replace, [0]
    def replace(src, dst):
        if str(dst).endswith("checkpoint.ckpt"):
            count[0] += 1
            if count[0] == kill_at:
                os.kill(os.getpid(), signal.SIGKILL)
        return real_replace(src, dst)
    os.replace = replace
from minibn import experiment
experiment.main("mnist_depth10", sys.argv[2:])
"""


def _start(out: Path, resume: bool, kill_at: int = 0) -> subprocess.Popen:
    argv = ["--resume", str(out), "--quiet"] if resume else ARGS + ["--out", str(out)]
    env = {**os.environ, "KILL_AT_REPLACE": str(kill_at)}
    return subprocess.Popen([sys.executable, "-c", RUNNER, str(ROOT), *argv], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)


def _continue(out: Path, kill_at: int = 0) -> subprocess.Popen:
    """Resume from the checkpoint if there is one, else start again (killed before its first)."""
    return _start(out, resume=(out / "checkpoint.ckpt").exists(), kill_at=kill_at)


def _numbers(out: Path) -> dict:
    metrics = json.loads((out / "metrics.json").read_text())
    metrics.pop("seconds")  # wall-clock time differs between runs
    metrics["config"].pop("out")
    return metrics


def _finish(out: Path) -> None:
    proc = _continue(out)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()


def _checkpoint_step(out: Path):
    sys.path.insert(0, str(ROOT))
    from minibn.experiment import checkpoint

    path = out / "checkpoint.ckpt"
    return checkpoint.load(path)["step"] if path.exists() else None


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    out = tmp_path_factory.mktemp("whole") / "run"
    proc = _start(out, resume=False)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err.decode()
    return _numbers(out)


@pytest.mark.parametrize("kill_at", [1, 2, 13, 29])
def test_killed_while_writing_a_checkpoint(kill_at, uninterrupted, tmp_path):
    out = tmp_path / "run"
    proc = _start(out, resume=False, kill_at=kill_at)
    proc.communicate(timeout=120)
    assert proc.returncode == -signal.SIGKILL
    assert list(out.glob(".tmp-*checkpoint.ckpt")), "the kill should leave the unrenamed write behind"
    assert _checkpoint_step(out) == (None if kill_at == 1 else kill_at - 1)  # the previous one, intact
    _finish(out)
    assert not list(out.glob(".tmp-*"))
    assert _numbers(out) == uninterrupted


def test_killed_at_random_moments(uninterrupted, tmp_path):
    rng = random.Random(20261201)
    out = tmp_path / "run"
    resumed_from = []
    for _ in range(5):
        step = _checkpoint_step(out)
        if step is not None:
            resumed_from.append(step)
        proc = _continue(out)
        deadline = time.monotonic() + 60
        while not (out / "checkpoint.ckpt").exists() and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)  # kill during training, not while Python starts
        time.sleep(rng.uniform(0.0, 0.4))
        proc.send_signal(signal.SIGKILL)
        proc.communicate(timeout=60)
        if proc.returncode == 0:
            break
    _finish(out)
    assert any(0 < s < 30 for s in resumed_from), f"no kill landed mid-run (resumed from {resumed_from})"
    assert _numbers(out) == uninterrupted
