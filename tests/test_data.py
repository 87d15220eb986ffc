"""IDX files, MNIST lookup and download (against a local server), the embedded subset, synthetic data."""

import functools
import gzip
import hashlib
import http.server
import os
import threading

import numpy as np
import pytest

from minibn.data import idx, mnist, synthetic

SHARED_MNIST = os.environ.get("MINIBN_DATA")
needs_mnist = pytest.mark.skipif(
    not (SHARED_MNIST and os.path.isfile(os.path.join(SHARED_MNIST, "train-labels-idx1-ubyte.gz"))),
    reason="set MINIBN_DATA to a folder with the original MNIST files (CI uses ../shared/data/mnist)")


@pytest.mark.parametrize("dtype", ["u1", "i1", ">i2", "<i4", "f4", "f8"])
@pytest.mark.parametrize("suffix", ["", ".gz"])
def test_idx_round_trip(dtype, suffix, tmp_path, rng):
    a = (rng.standard_normal((3, 4, 2)) * 50).astype(dtype)
    path = tmp_path / ("a.idx" + suffix)
    idx.write_idx(path, a)
    b = idx.read_idx(path)
    assert b.shape == a.shape and b.dtype == a.dtype.newbyteorder("=")
    np.testing.assert_array_equal(a, b)


def test_idx_faults_are_named(tmp_path):
    good = idx.idx_bytes(np.arange(12, dtype=np.uint8).reshape(3, 4))
    cases = {
        "truncated": (good[:-3], r"needs 12 bytes of data, found 9 \(truncated\)"),
        "trailing": (good + b"xx", "has trailing bytes"),
        "magic": (b"\x01\x00" + good[2:], "bad magic number"),
        "dtype": (good[:2] + b"\x07" + good[3:], "bad magic number"),
        "header": (good[:6], "header announces 2 dimensions"),
        "gzip": (gzip.compress(good)[:-10], "corrupt or truncated gzip stream"),
    }
    for name, (data, message) in cases.items():
        path = tmp_path / name
        path.write_bytes(data)
        with pytest.raises(idx.IDXError, match=f"{name}: .*{message}" if name != "gzip" else message):
            idx.read_idx(path)


def _fake_mnist(folder, n=20, seed=0):
    """Small IDX files under the MNIST names, and their SHA-256 digests."""
    rng = np.random.default_rng(seed)
    digests = {}
    for split, count in (("train", n), ("test", n // 2)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = (np.arange(count) % 10).astype(np.uint8)
        for name, array in zip(mnist.FILES[split], (images, labels)):
            raw = idx.idx_bytes(array)
            digests[name] = hashlib.sha256(raw).hexdigest()
            (folder / (name + ".gz")).write_bytes(gzip.compress(raw))
    return digests


@pytest.fixture
def server(tmp_path):
    served = tmp_path / "served"
    served.mkdir()
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(served))
    handler.log_message = lambda *a, **k: None
    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield served, f"http://127.0.0.1:{httpd.server_address[1]}/"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def isolated(tmp_path, monkeypatch):
    """No MINIBN_DATA and a private cache, so that nothing outside the test is found."""
    monkeypatch.delenv("MINIBN_DATA", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


def test_download_verifies_and_stores_atomically(server, tmp_path, isolated):
    served, url = server
    digests = _fake_mnist(served)
    root = tmp_path / "root"
    name = "train-labels-idx1-ubyte"
    raw = mnist.fetch(name, root, mirrors=["http://127.0.0.1:1/", url], digests=digests, timeout=5)
    assert hashlib.sha256(raw).hexdigest() == digests[name]
    assert (root / (name + ".gz")).is_file()
    assert not [p for p in root.iterdir() if p.name.startswith(".tmp-")]
    # now found locally: no server needed
    (served / (name + ".gz")).unlink()
    assert mnist.fetch(name, root, mirrors=[url], digests=digests) == raw


def test_download_goes_to_the_cache_without_root(server, tmp_path, isolated):
    served, url = server
    digests = _fake_mnist(served)
    mnist.fetch("t10k-labels-idx1-ubyte", mirrors=[url], digests=digests)
    assert (tmp_path / "cache" / "minibn" / "t10k-labels-idx1-ubyte.gz").is_file()


def test_checksum_mismatch_is_a_clear_error(server, tmp_path, isolated):
    served, url = server
    digests = _fake_mnist(served)
    wrong = dict(digests, **{"train-labels-idx1-ubyte": "0" * 64})
    with pytest.raises(mnist.MNISTError, match=r"(?s)not found.*does not match.*supply the files by hand"):
        mnist.fetch("train-labels-idx1-ubyte", tmp_path / "root", mirrors=[url], digests=wrong)
    assert not (tmp_path / "root" / "train-labels-idx1-ubyte.gz").exists()
    local = tmp_path / "local"
    local.mkdir()
    (local / "train-labels-idx1-ubyte.gz").write_bytes(gzip.compress(b"\x00\x00\x08\x01\x00\x00\x00\x01\x07"))
    with pytest.raises(mnist.MNISTError, match="SHA-256 .* does not match"):
        mnist.fetch("train-labels-idx1-ubyte", local, download=False, digests=digests)


def test_a_truncated_download_falls_through_to_the_next_mirror(server, tmp_path, isolated):
    served, url = server
    digests = _fake_mnist(served)
    name = "train-labels-idx1-ubyte"
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / (name + ".gz")).write_bytes((served / (name + ".gz")).read_bytes()[:20])
    (served / "broken").symlink_to(broken)  # a mirror on the same server that serves a truncated file
    raw = mnist.fetch(name, tmp_path / "root", mirrors=[url + "broken/", url], digests=digests, timeout=5)
    assert hashlib.sha256(raw).hexdigest() == digests[name]


def test_not_found_names_every_place_searched(tmp_path, isolated, monkeypatch):
    monkeypatch.setenv("MINIBN_DATA", str(tmp_path / "env"))
    with pytest.raises(mnist.MNISTError) as info:
        mnist.fetch("t10k-images-idx3-ubyte", tmp_path / "root", download=False)
    text = str(info.value)
    for place in (tmp_path / "root", tmp_path / "env", tmp_path / "cache" / "minibn"):
        assert str(place) in text
    assert "downloading was switched off" in text and "MINIBN_DATA" in text


def test_load_mnist_from_a_local_folder(tmp_path, isolated, monkeypatch):
    digests = _fake_mnist(tmp_path)
    for name, digest in digests.items():
        monkeypatch.setitem(mnist.SHA256, name, digest)
    x, y = mnist.load_mnist("train", root=tmp_path, download=False, normalize=False)
    assert x.shape == (20, 784) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    assert y.dtype == np.int64 and list(y[:3]) == [0, 1, 2]


def test_embedded_subset_integrity():
    data = mnist.SUBSET_PATH.read_bytes()
    assert hashlib.sha256(data).hexdigest() == mnist.SUBSET_SHA256
    x, y = mnist.load_mnist_subset("train")
    assert x.shape == (10000, 784) and x.dtype == np.float32
    assert np.bincount(y).tolist() == [1000] * 10
    xt, yt = mnist.load_mnist_subset("test", normalize=False)
    assert xt.shape == (10000, 784) and np.bincount(yt).tolist() == [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009]
    assert 0 <= xt.min() and xt.max() <= 1


def test_damaged_subset_is_refused(tmp_path, monkeypatch):
    bad = tmp_path / "mnist_subset.npz"
    data = bytearray(mnist.SUBSET_PATH.read_bytes())
    data[len(data) // 2] ^= 0xFF
    bad.write_bytes(bytes(data))
    monkeypatch.setattr(mnist, "SUBSET_PATH", bad)
    with pytest.raises(mnist.MNISTError, match="package data is damaged"):
        mnist.load_mnist_subset()


@needs_mnist
def test_embedded_subset_is_drawn_from_the_original_files():
    with np.load(mnist.SUBSET_PATH) as arrays:
        indices, images = arrays["train_indices"], arrays["train_images"]
        test_images = arrays["test_images"]
    x, y = mnist.load_mnist("train", root=SHARED_MNIST, download=False, normalize=False)
    np.testing.assert_array_equal(indices, mnist.subset_indices(y))
    np.testing.assert_array_equal(images.reshape(10000, -1), (x[indices] * 255).round().astype(np.uint8))
    xt, _ = mnist.load_mnist("test", root=SHARED_MNIST, download=False, normalize=False)
    np.testing.assert_array_equal(test_images.reshape(10000, -1), (xt * 255).round().astype(np.uint8))
    assert abs(x.mean() - mnist.MEAN) < 1e-4 and abs(x.std() - mnist.STD) < 1e-4


def test_synthetic_ols_has_the_condition_number():
    x, y, H, w = synthetic.ols(20000, 3, kappa=100, seed=0)
    eig = np.linalg.eigvalsh(H)
    assert eig.max() / eig.min() == pytest.approx(100)
    np.testing.assert_allclose(np.cov(x.T, bias=True), H, atol=0.05 * 100)
    np.testing.assert_allclose(y, x @ w, rtol=1e-12)


def test_synthetic_noisy_features_are_linearly_separable_on_the_signal_only():
    x, labels = synthetic.noisy_features(200, d=50, d1=10, k=4, seed=1)
    assert x.shape == (800, 50) and np.bincount(labels).tolist() == [200] * 4
    # a linear score of the signal coordinates orders the samples by class ...
    signal = np.c_[x[:, :10], np.ones(800)]
    best = np.linalg.lstsq(signal, labels.astype(float), rcond=None)[0]
    t = signal @ best
    order = np.argsort(t)
    assert (np.diff(labels[order]) >= 0).all()
    # ... while the noise coordinates carry nothing: classes share their mean there
    means = np.array([x[labels == c, 10:].mean(0) for c in range(4)])
    assert np.abs(means).max() < 0.35


def test_synthetic_deep_linear_regression():
    x, y, A = synthetic.deep_linear_regression(100, 5, 3, seed=2)
    np.testing.assert_allclose(y, x @ A, rtol=1e-5, atol=1e-6)
    x2, _, _ = synthetic.deep_linear_regression(100, 5, 3, seed=2)
    np.testing.assert_array_equal(x, x2)
