"""Tests of resnet_repro.data: reading, download (never from the network), split, synthetic
data, the per-pixel mean and the section 4.2 augmentation."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
import tarfile
import urllib.request
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from resnet_repro import data
from resnet_repro.config import DataConfig
from resnet_repro.data import (
    BATCHES_DIR,
    CifarArrays,
    DataError,
    augment,
    cifar10,
    describe,
    download_cifar10,
    ensure_cifar10,
    epoch_order,
    load_arrays,
    normalize,
    per_pixel_mean,
    prepare,
    read_cifar10,
    split_train_val,
    synthetic_cifar,
    to_device,
)
from resnet_repro.data import load as data_load

SHARED = Path(__file__).resolve().parents[2] / "shared"
FILES = [
    "data_batch_1",
    "data_batch_2",
    "data_batch_3",
    "data_batch_4",
    "data_batch_5",
    "test_batch",
    "batches.meta",
]


def cfg(**kw) -> DataConfig:
    base = dict(
        source="cifar10",
        root="data",
        download=False,
        val_size=0,
        train_subset=None,
        test_subset=None,
        seed=0,
        normalization="per_pixel_mean",
    )
    base.update(kw)
    return DataConfig(**base)


def leftovers(root: Path) -> list[str]:
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


# ----------------------------------------------------------------------------------------
# Reading
# ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("str_keys", [False, True], ids=["bytes-keys", "str-keys"])
def test_read_cifar10_both_key_types(tmp_path, make_cifar_root, str_keys):
    root = make_cifar_root(tmp_path, n_train=53, n_test=17, str_keys=str_keys)
    a = read_cifar10(root)
    assert a.train_x.shape == (53, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert a.test_x.shape == (17, 3, 32, 32) and a.test_x.dtype == np.uint8
    assert a.train_y.dtype == np.int64 and a.train_y.shape == (53,)
    assert a.val_x.shape == (0, 3, 32, 32) and a.val_y.shape == (0,)
    assert a.classes[:2] == ("airplane", "automobile") and len(a.classes) == 10
    # Batches are concatenated in order 1..5, and each row is channel-planar row-major.
    with open(root / BATCHES_DIR / "data_batch_1", "rb") as f:
        first = pickle.load(f, encoding="bytes")
    rows = first["data" if str_keys else b"data"]
    labels = first["labels" if str_keys else b"labels"]
    n1 = len(rows)
    np.testing.assert_array_equal(a.train_y[:n1], labels)
    assert a.train_x[0, 1, 2, 3] == rows[0, 1024 + 2 * 32 + 3]
    assert a.train_x[n1 - 1, 2, 31, 0] == rows[n1 - 1, 2048 + 31 * 32]


def test_read_real_layout_from_jpeg_tool(tmp_path):
    """The shared tool writes Python-2-style pickles exactly like the official release."""
    tool = SHARED / "tools" / "make-cifar10-batches"
    if not (SHARED / "data" / "cifar10-jpeg.tar.gz").is_file() or not tool.is_file():
        pytest.skip(f"{SHARED}/data is absent")
    subprocess.run(
        [
            sys.executable,
            str(tool),
            str(tmp_path),
            "--train-per-class",
            "2",
            "--test-per-class",
            "1",
        ],
        check=True,
        capture_output=True,
        timeout=120,
    )
    a = read_cifar10(tmp_path)
    assert a.classes == data.CIFAR10_CLASSES
    assert a.train_x.shape == (20, 3, 32, 32) and a.test_x.shape == (10, 3, 32, 32)
    assert np.bincount(a.train_y, minlength=10).tolist() == [2] * 10
    assert np.bincount(a.test_y, minlength=10).tolist() == [1] * 10
    # Real photos, not blank arrays: pixels spread over the range.
    assert a.train_x.std() > 30


def test_absent_folder_without_download(tmp_path):
    folder = tmp_path / "nowhere" / BATCHES_DIR
    for call in (
        lambda: ensure_cifar10(tmp_path / "nowhere", download=False),
        lambda: read_cifar10(tmp_path / "nowhere"),
        lambda: load_arrays(cfg(root=str(tmp_path / "nowhere"))),
        lambda: prepare(cfg(root=str(tmp_path / "nowhere"))),
    ):
        with pytest.raises(DataError) as e:
            call()
        msg = str(e.value)
        assert str(folder) in msg and "data.download: true" in msg and "\n" not in msg
    assert not (tmp_path / "nowhere").exists()  # nothing created, nothing downloaded


@pytest.mark.parametrize("name", ["data_batch_3", "test_batch", "batches.meta"])
def test_missing_file(cifar_root, name):
    (cifar_root / BATCHES_DIR / name).unlink()
    for call in (lambda: read_cifar10(cifar_root), lambda: ensure_cifar10(cifar_root, True)):
        with pytest.raises(DataError, match="is missing") as e:
            call()
        assert str(cifar_root / BATCHES_DIR / name) in str(e.value)


def test_truncated_file(cifar_root):
    path = cifar_root / BATCHES_DIR / "data_batch_2"
    blob = path.read_bytes()
    path.write_bytes(blob[: len(blob) // 2])
    with pytest.raises(DataError, match="truncated or not a CIFAR pickle") as e:
        read_cifar10(cifar_root)
    assert str(path) in str(e.value)


def test_not_a_pickle(cifar_root):
    path = cifar_root / BATCHES_DIR / "test_batch"
    path.write_text("<html>404 not found</html>\n")
    with pytest.raises(DataError, match="truncated or not a CIFAR pickle") as e:
        read_cifar10(cifar_root)
    assert str(path) in str(e.value)


def _good(n=4):
    return {b"data": np.zeros((n, 3072), np.uint8), b"labels": [0] * n}


@pytest.mark.parametrize(
    "obj, match",
    [
        ([1, 2, 3], "not a CIFAR batch dict"),
        ({b"images": np.zeros((4, 3072), np.uint8), b"labels": [0] * 4}, "lacks the 'data'"),
        ({**_good(), b"data": np.zeros((4, 3000), np.uint8)}, r"shape \(4, 3000\)"),
        ({**_good(), b"data": np.zeros((4, 3072), np.float32)}, "float32"),
        ({**_good(), b"labels": [0] * 3}, "4 images but 3 labels"),
        ({**_good(), b"labels": [0, 1, 2, 10]}, "labels outside 0..9"),
        ({**_good(), b"labels": ["cat"] * 4}, "not integers"),
    ],
    ids=[
        "list",
        "wrong-keys",
        "wrong-shape",
        "wrong-dtype",
        "label-count",
        "label-range",
        "label-type",
    ],
)
def test_non_cifar_pickle(cifar_root, obj, match):
    path = cifar_root / BATCHES_DIR / "data_batch_4"
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)
    with pytest.raises(DataError, match=match) as e:
        read_cifar10(cifar_root)
    assert str(path) in str(e.value)


class _Evil:
    def __init__(self, target):
        self.target = target

    def __reduce__(self):
        return (os.mkdir, (self.target,))


def test_pickle_cannot_run_code(cifar_root, tmp_path):
    target = tmp_path / "pwned"
    path = cifar_root / BATCHES_DIR / "data_batch_1"
    with open(path, "wb") as f:
        pickle.dump({b"data": _Evil(str(target)), b"labels": []}, f, protocol=2)
    with pytest.raises(DataError, match="not allowed"):
        read_cifar10(cifar_root)
    assert not target.exists()


def test_meta_without_label_names(cifar_root):
    with open(cifar_root / BATCHES_DIR / "batches.meta", "wb") as f:
        pickle.dump({b"num_vis": 3072}, f, protocol=2)
    with pytest.raises(DataError, match="label_names"):
        read_cifar10(cifar_root)


# ----------------------------------------------------------------------------------------
# Download (file:// and unreachable URLs only)
# ----------------------------------------------------------------------------------------


def _archive(tmp_path: Path, make_cifar_root, name="cifar.tar.gz", member=BATCHES_DIR):
    src = make_cifar_root(tmp_path / "src", n_train=20, n_test=10)
    path = tmp_path / name
    with tarfile.open(path, "w:gz") as tar:
        tar.add(src / BATCHES_DIR, arcname=member)
    return path, hashlib.md5(path.read_bytes()).hexdigest()


def test_download_success_extracts_and_loads(tmp_path, make_cifar_root, monkeypatch):
    archive, md5 = _archive(tmp_path, make_cifar_root)
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)
    root = tmp_path / "root"
    folder = ensure_cifar10(root, download=True)
    assert folder == root / BATCHES_DIR
    assert leftovers(root) == [BATCHES_DIR]  # no temporary archive or staging folder
    a = read_cifar10(root)
    assert a.train_x.shape == (20, 3, 32, 32) and a.test_x.shape == (10, 3, 32, 32)
    # Present now: a second call must not download (the URL no longer works).
    monkeypatch.setattr(cifar10, "CIFAR10_URL", "http://127.0.0.1:9/cifar-10-python.tar.gz")
    assert ensure_cifar10(root, download=True) == folder
    info = prepare(cfg(root=str(root), download=True, val_size=5))
    assert (info["n_train"], info["n_val"], info["n_test"]) == (15, 5, 10)


def test_prepare_downloads_when_absent(tmp_path, make_cifar_root, monkeypatch):
    archive, md5 = _archive(tmp_path, make_cifar_root)
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)
    info = prepare(cfg(root=str(tmp_path / "r"), download=True))
    assert info["n_train"] == 20 and info["n_test"] == 10


def test_md5_mismatch(tmp_path, make_cifar_root, monkeypatch):
    archive, md5 = _archive(tmp_path, make_cifar_root)
    assert md5 != cifar10.CIFAR10_MD5
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())
    root = tmp_path / "root"
    with pytest.raises(DataError, match="md5") as e:
        ensure_cifar10(root, download=True)
    assert md5 in str(e.value) and cifar10.CIFAR10_MD5 in str(e.value)
    assert leftovers(root) == []  # the bad archive is removed, no batches folder appears


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1:9/cifar-10-python.tar.gz",
        "file:///nonexistent/cifar-10-python.tar.gz",
        "not a url",
    ],
    ids=["refused", "missing-file", "malformed"],
)
def test_download_failure_no_network(tmp_path, monkeypatch, url):
    monkeypatch.setattr(cifar10, "CIFAR10_URL", url)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="downloading CIFAR-10 from .* failed") as e:
        download_cifar10(root)
    assert "\n" not in str(e.value) and str(root / BATCHES_DIR) in str(e.value)
    assert leftovers(root) == []


def test_download_timeout(tmp_path, monkeypatch):
    def slow(url, timeout=None):
        assert timeout is not None  # a download must never hang forever
        raise TimeoutError("timed out")

    monkeypatch.setattr(urllib.request, "urlopen", slow)
    with pytest.raises(DataError, match="TimeoutError"):
        ensure_cifar10(tmp_path, download=True)
    assert leftovers(tmp_path) == []


def test_interrupted_download_leaves_nothing(tmp_path, monkeypatch):
    class Stream(io.BytesIO):
        def read(self, n=-1):
            if self.tell() > 0:
                raise KeyboardInterrupt
            return super().read(10)

    monkeypatch.setattr(urllib.request, "urlopen", lambda url, timeout=None: Stream(b"x" * 100))
    with pytest.raises(KeyboardInterrupt):
        download_cifar10(tmp_path)
    assert leftovers(tmp_path) == []


def test_bad_archive_with_matching_md5(tmp_path, monkeypatch):
    bad = tmp_path / "bad.tar.gz"
    bad.write_bytes(b"this is not a gzip file" * 10)
    monkeypatch.setattr(cifar10, "CIFAR10_URL", bad.as_uri())
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", hashlib.md5(bad.read_bytes()).hexdigest())
    root = tmp_path / "root"
    with pytest.raises(DataError, match="could not be extracted"):
        download_cifar10(root)
    assert leftovers(root) == []


def test_archive_without_batches_folder(tmp_path, make_cifar_root, monkeypatch):
    archive, md5 = _archive(tmp_path, make_cifar_root, member="something-else")
    monkeypatch.setattr(cifar10, "CIFAR10_URL", archive.as_uri())
    monkeypatch.setattr(cifar10, "CIFAR10_MD5", md5)
    root = tmp_path / "root"
    with pytest.raises(DataError, match="lacks cifar-10-batches-py/data_batch_1"):
        download_cifar10(root)
    assert leftovers(root) == []


# ----------------------------------------------------------------------------------------
# Split, subsets, synthetic data, describe
# ----------------------------------------------------------------------------------------


def test_split_train_val_deterministic_and_disjoint():
    n = 50
    x = np.arange(n, dtype=np.int64)[:, None].repeat(3, 1)  # each row names its image
    y = np.arange(n) % 10
    tx, ty, vx, vy = split_train_val(x, y, 5, seed=3)
    assert len(tx) == 45 and len(vx) == 5  # the paper's 45k/5k, scaled down
    assert set(tx[:, 0]).isdisjoint(vx[:, 0]) and set(tx[:, 0]) | set(vx[:, 0]) == set(range(n))
    np.testing.assert_array_equal(ty, y[tx[:, 0]])  # labels travel with their images
    np.testing.assert_array_equal(vy, y[vx[:, 0]])
    assert np.all(np.diff(tx[:, 0]) > 0)  # original order kept
    again = split_train_val(x, y, 5, seed=3)
    for a, b in zip((tx, ty, vx, vy), again):
        np.testing.assert_array_equal(a, b)
    other = split_train_val(x, y, 5, seed=4)[2]
    assert set(other[:, 0]) != set(vx[:, 0])


def test_split_edge_cases():
    x, y = np.zeros((10, 3, 32, 32), np.uint8), np.arange(10)
    tx, ty, vx, vy = split_train_val(x, y, 0, seed=0)
    assert tx is x and ty is y and vx.shape == (0, 3, 32, 32) and vy.shape == (0,)
    with pytest.raises(DataError, match="val_size"):
        split_train_val(x, y, 10, seed=0)


def test_load_arrays_split_then_subsets(cifar_root):
    full = read_cifar10(cifar_root)
    a = load_arrays(
        cfg(root=str(cifar_root), val_size=50, train_subset=100, test_subset=20, seed=7)
    )
    tx, ty, vx, vy = split_train_val(full.train_x, full.train_y, 50, seed=7)
    np.testing.assert_array_equal(a.train_x, tx[:100])
    np.testing.assert_array_equal(a.train_y, ty[:100])
    np.testing.assert_array_equal(a.val_x, vx)
    np.testing.assert_array_equal(a.test_x, full.test_x[:20])
    np.testing.assert_array_equal(a.test_y, full.test_y[:20])
    whole = load_arrays(cfg(root=str(cifar_root)))
    assert (len(whole.train_x), len(whole.val_x), len(whole.test_x)) == (500, 0, 100)
    # A subset larger than the data keeps all of it.
    big = load_arrays(cfg(root=str(cifar_root), train_subset=10**6))
    assert len(big.train_x) == 500


def test_synthetic_deterministic_balanced():
    a = synthetic_cifar(1000, 200, seed=0)
    b = synthetic_cifar(1000, 200, seed=0)
    c = synthetic_cifar(1000, 200, seed=1)
    assert a.train_x.shape == (1000, 3, 32, 32) and a.train_x.dtype == np.uint8
    assert a.test_x.shape == (200, 3, 32, 32) and a.train_y.dtype == np.int64
    np.testing.assert_array_equal(a.train_x, b.train_x)
    np.testing.assert_array_equal(a.test_y, b.test_y)
    assert not np.array_equal(a.train_x, c.train_x)
    assert np.bincount(a.train_y, minlength=10).tolist() == [100] * 10
    assert np.bincount(a.test_y, minlength=10).tolist() == [20] * 10
    assert len(a.classes) == 10 and a.val_x.shape == (0, 3, 32, 32)
    # The test set does not change when the training set's size does.
    np.testing.assert_array_equal(synthetic_cifar(10, 200, seed=0).test_x, a.test_x)
    # Classes differ on average (the data carries signal), images within a class vary.
    means = np.stack([a.train_x[a.train_y == k].mean(0) for k in range(10)])
    assert np.abs(means[:, None] - means[None]).mean() > 10
    assert a.train_x[a.train_y == 0].std(0).mean() > 10


def test_load_arrays_synthetic_sizes(monkeypatch):
    a = load_arrays(cfg(source="synthetic", val_size=10, train_subset=90, test_subset=30))
    assert (len(a.train_x), len(a.val_x), len(a.test_x)) == (90, 10, 30)
    # Without subsets the sizes are CIFAR-10's (scaled down here to keep the test fast).
    monkeypatch.setattr(data_load, "CIFAR10_TRAIN", 200)
    monkeypatch.setattr(data_load, "CIFAR10_TEST", 50)
    b = load_arrays(cfg(source="synthetic", val_size=20))
    assert (len(b.train_x), len(b.val_x), len(b.test_x)) == (180, 20, 50)
    assert prepare(cfg(source="synthetic", root="/nonexistent"))["n_train"] == 200


def test_describe_counts(cifar_root):
    a = load_arrays(cfg(root=str(cifar_root), val_size=100, test_subset=30))
    d = describe(a)
    json.dumps(d)  # JSON-ready for run.json
    assert (d["n_train"], d["n_val"], d["n_test"]) == (400, 100, 30)
    assert sum(d["train_per_class"]) == 400 and sum(d["val_per_class"]) == 100
    assert d["test_per_class"] == np.bincount(a.test_y, minlength=10).tolist()
    assert d["classes"] == list(a.classes)


# ----------------------------------------------------------------------------------------
# Mean, normalisation, device data
# ----------------------------------------------------------------------------------------


def test_per_pixel_mean_hand_computed():
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    x[0, 0, 0, 0], x[1, 0, 0, 0] = 10, 20
    x[:, 2, 5, 7] = 255
    x[1, 1, 31, 31] = 51
    m = per_pixel_mean(x)
    assert m.dtype == torch.float32 and m.shape == (3, 32, 32)
    expected = torch.zeros(3, 32, 32)
    expected[0, 0, 0] = 15 / 255
    expected[2, 5, 7] = 1.0
    expected[1, 31, 31] = 0.1
    torch.testing.assert_close(m, expected, rtol=0, atol=1e-7)


def test_per_pixel_mean_across_chunks():
    rng = np.random.default_rng(0)
    x = rng.integers(0, 256, size=(9000, 3, 32, 32), dtype=np.uint8)  # more than one chunk
    m = per_pixel_mean(torch.from_numpy(x))
    ref = torch.from_numpy(x.sum(0, dtype=np.int64) / (255.0 * len(x))).float()
    torch.testing.assert_close(m, ref, rtol=0, atol=1e-6)
    with pytest.raises(DataError):
        per_pixel_mean(torch.zeros(0, 3, 32, 32, dtype=torch.uint8))


def test_normalize_values():
    x = torch.tensor([0, 51, 255], dtype=torch.uint8).view(3, 1, 1, 1).expand(3, 3, 32, 32)
    mean = torch.full((3, 32, 32), 0.2)
    mean[1, 4, 4] = 0.0
    y = normalize(x, mean)
    assert y.dtype == torch.float32 and y.shape == (3, 3, 32, 32)
    torch.testing.assert_close(y[:, 0, 0, 0], torch.tensor([-0.2, 0.0, 0.8]))
    torch.testing.assert_close(y[:, 1, 4, 4], torch.tensor([0.0, 0.2, 1.0]))
    assert x.dtype == torch.uint8  # the stored data is untouched


def test_to_device(cifar_root):
    a = load_arrays(cfg(root=str(cifar_root), val_size=100))
    d = to_device(a, torch.device("cpu"))
    assert d.train_x.dtype == torch.uint8 and d.train_x.shape == (400, 3, 32, 32)
    assert d.train_y.dtype == torch.int64 and d.val_y.dtype == torch.int64
    assert d.val_x.shape == (100, 3, 32, 32) and d.test_x.shape == (100, 3, 32, 32)
    np.testing.assert_array_equal(d.test_x.numpy(), a.test_x)
    torch.testing.assert_close(d.mean, per_pixel_mean(torch.from_numpy(a.train_x)))
    # The mean is of the training images only (section 4.2), not val or test.
    assert not torch.allclose(d.mean, per_pixel_mean(torch.from_numpy(a.val_x)), atol=1e-4)


# ----------------------------------------------------------------------------------------
# Augmentation (section 4.2: pad 4, random 32x32 crop, random horizontal flip)
# ----------------------------------------------------------------------------------------


def gen(seed: int) -> torch.Generator:
    return torch.Generator().manual_seed(seed)


def reference_crop(xn: torch.Tensor, padding: int, dy: int, dx: int, flip: bool) -> torch.Tensor:
    """One image by the paper's recipe, written the slow, obvious way."""
    p = F.pad(xn, (padding,) * 4)  # zeros after mean subtraction
    out = p[:, dy : dy + 32, dx : dx + 32]
    return out.flip(-1) if flip else out


def crop_params(out: torch.Tensor, xn: torch.Tensor, padding: int, flip: bool) -> list[tuple]:
    """For each output image, the one (dy, dx, flipped) whose reference crop it equals."""
    options = [
        (dy, dx, f)
        for dy in range(2 * padding + 1)
        for dx in range(2 * padding + 1)
        for f in ((False, True) if flip else (False,))
    ]
    drawn = []
    for i in range(len(out)):
        hits = [o for o in options if torch.equal(out[i], reference_crop(xn[i], padding, *o))]
        assert len(hits) == 1, f"image {i} is not a crop of its padded input"
        drawn.append(hits[0])
    return drawn


@pytest.mark.parametrize("padding, flip", [(4, True), (4, False), (2, True), (0, True)])
def test_augment_outputs_are_crops_of_padded_input(padding, flip):
    rng = np.random.default_rng(1)
    x = torch.from_numpy(rng.integers(0, 256, size=(24, 3, 32, 32), dtype=np.uint8))
    mean = torch.from_numpy(rng.uniform(0.3, 0.7, size=(3, 32, 32)).astype(np.float32))
    out = augment(x, mean, gen(0), padding=padding, flip=flip)
    assert out.shape == x.shape and out.dtype == torch.float32
    drawn = crop_params(out, normalize(x, mean), padding, flip)
    if padding > 0 or flip:
        assert len(set(drawn)) > 1  # a draw per image, not one per batch


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_augment_on_cuda_without_host_sync():
    dev = torch.device("cuda")
    arrays = synthetic_cifar(64, 16, seed=0)
    d = to_device(arrays, dev)
    assert d.train_x.device.type == "cuda" and d.mean.device.type == "cuda"
    g = torch.Generator(device=dev).manual_seed(0)
    order = epoch_order(len(d.train_y), g, dev)
    assert order.device.type == "cuda" and sorted(order.tolist()) == list(range(64))
    batch = d.train_x[order[:16]]
    torch.cuda.set_sync_debug_mode("error")  # any device-to-host sync in augment raises
    try:
        out = augment(batch, d.mean, g)
    finally:
        torch.cuda.set_sync_debug_mode(0)
    assert out.device.type == "cuda" and out.dtype == torch.float32
    xn = normalize(batch, d.mean).cpu()
    crop_params(out.cpu(), xn, 4, True)


def _decode(out: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(dy, dx, flipped) per image from outputs of the position-coded image below."""
    v = torch.round(out * 255 / 7).long() - 1  # source row (channel 0) / column (channel 1)
    dy = v[:, 0, 4, 4]  # output row 4 always lies inside the image for padding 4
    flipped = v[:, 1, 4, 5] < v[:, 1, 4, 4]
    dx = torch.where(flipped, v[:, 1, 4, 4] - 23, v[:, 1, 4, 4])
    return dy, dx, flipped


def test_augment_draws_uniform_offsets_and_fair_flips():
    rows, cols = torch.meshgrid(torch.arange(32), torch.arange(32), indexing="ij")
    coded = torch.stack([(rows + 1) * 7, (cols + 1) * 7, torch.full_like(rows, 200)])
    n = 4000
    x = coded.to(torch.uint8).expand(n, 3, 32, 32)
    zero = torch.zeros(3, 32, 32)
    out = augment(x, zero, gen(5))
    dy, dx, flipped = _decode(out)
    for i in range(0, n, 397):  # the decoded draw reproduces the output exactly
        ref = reference_crop(
            normalize(x[i : i + 1], zero)[0], 4, int(dy[i]), int(dx[i]), bool(flipped[i])
        )
        assert torch.equal(out[i], ref)
    assert 0.46 < flipped.float().mean().item() < 0.54  # p = 0.5, 4000 draws: sd 0.008
    pairs = set(zip(dy.tolist(), dx.tolist()))
    assert pairs == {(a, b) for a in range(9) for b in range(9)}  # all 81 offsets occur
    for d in (dy, dx):
        counts = torch.bincount(d, minlength=9)
        assert counts.min() > 0.75 * n / 9 and counts.max() < 1.25 * n / 9
    # Padded pixels are exactly zero (after mean subtraction), never wrapped content.
    top_pad = dy == 0
    assert torch.all(out[top_pad][:, :, :4] == 0)


def test_augment_deterministic_and_uses_only_its_generator():
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.integers(0, 256, size=(64, 3, 32, 32), dtype=np.uint8))
    mean = per_pixel_mean(x)
    state = torch.random.get_rng_state()
    a = augment(x, mean, gen(11))
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched
    assert torch.equal(a, augment(x, mean, gen(11)))
    assert not torch.equal(a, augment(x, mean, gen(12)))
    g = gen(11)
    assert not torch.equal(augment(x, mean, g), augment(x, mean, g))  # the stream advances


def test_augment_identity_without_padding_and_flip():
    rng = np.random.default_rng(3)
    x = torch.from_numpy(rng.integers(0, 256, size=(8, 3, 32, 32), dtype=np.uint8))
    mean = per_pixel_mean(x)
    assert torch.equal(augment(x, mean, gen(0), padding=0, flip=False), normalize(x, mean))


def test_augment_flip_only_probability():
    rng = np.random.default_rng(4)
    x = torch.from_numpy(rng.integers(0, 256, size=(2000, 3, 32, 32), dtype=np.uint8))
    mean = torch.zeros(3, 32, 32)
    out = augment(x, mean, gen(0), padding=0, flip=True)
    xn = normalize(x, mean)
    same = (out == xn).flatten(1).all(1)
    mirrored = (out == xn.flip(-1)).flatten(1).all(1)
    assert torch.all(same ^ mirrored)
    assert 0.45 < mirrored.float().mean().item() < 0.55


def test_augment_rejects_negative_padding():
    x = torch.zeros(2, 3, 32, 32, dtype=torch.uint8)
    with pytest.raises(ValueError):
        augment(x, torch.zeros(3, 32, 32), gen(0), padding=-1)


def test_epoch_order():
    p = epoch_order(100, gen(0), "cpu")
    assert p.dtype == torch.int64 and p.device.type == "cpu"
    assert sorted(p.tolist()) == list(range(100))
    assert torch.equal(p, epoch_order(100, gen(0), "cpu"))
    g = gen(0)
    assert not torch.equal(epoch_order(100, g, "cpu"), epoch_order(100, g, "cpu"))


# ----------------------------------------------------------------------------------------
# Learnability: the fake data must teach a net something, with the paper's augmentation
# ----------------------------------------------------------------------------------------


def _tiny_cnn_test_error(arrays: CifarArrays, steps: int = 100, batch: int = 32) -> float:
    """Test error (%) of a two-conv net after `steps` SGD steps on augmented batches."""
    d = to_device(arrays, torch.device("cpu"))
    with torch.random.fork_rng():  # seeded init without touching the global RNG afterwards
        torch.manual_seed(0)
        net = torch.nn.Sequential(
            torch.nn.Conv2d(3, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.Conv2d(16, 16, 3, stride=2, padding=1),
            torch.nn.ReLU(),
            torch.nn.AdaptiveAvgPool2d(1),
            torch.nn.Flatten(),
            torch.nn.Linear(16, 10),
        )
    opt = torch.optim.SGD(net.parameters(), lr=0.05, momentum=0.9)
    g = gen(0)
    order, pos = epoch_order(len(d.train_y), g, "cpu"), 0
    for _ in range(steps):
        if pos + batch > len(order):  # a new permutation each epoch
            order, pos = epoch_order(len(d.train_y), g, "cpu"), 0
        idx = order[pos : pos + batch]
        pos += batch
        loss = F.cross_entropy(net(augment(d.train_x[idx], d.mean, g)), d.train_y[idx])
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        pred = net(normalize(d.test_x, d.mean)).argmax(1)
    return (pred != d.test_y).float().mean().item() * 100


@pytest.mark.parametrize("source", ["synthetic", "fixture"])
def test_data_is_learnable(source, cifar_root):
    arrays = (
        synthetic_cifar(1000, 300, seed=0) if source == "synthetic" else read_cifar10(cifar_root)
    )
    # One thread, restored after: a net this small gains nothing from more, and on a busy
    # 2-core box the thread pool's waiting made this test 50x slower.
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    # The synthetic images hide their class in a pattern under a random colour cast (the
    # class colour alone does not give it away), so the two-conv net needs more steps there.
    steps, bound = (300, 65) if source == "synthetic" else (100, 40)
    try:
        err = _tiny_cnn_test_error(arrays, steps=steps)
    finally:
        torch.set_num_threads(threads)
    assert err < bound, f"test error {err:.1f}% after {steps} steps (chance: 90%)"
