"""CIFAR-10 data: read the "python version" batches, download them with a checksum, split
off a validation set, and feed a device-resident training set with the paper's augmentation.

He et al. 2015, section 4.2: "The network inputs are 32x32 images, with the per-pixel mean
subtracted." For training, "4 pixels are padded on each side, and a 32x32 crop is randomly
sampled from the padded image or its horizontal flip. For testing, we only evaluate the single
view of the original 32x32 image." The schedule was set on a 45k/5k train/val split.

The whole set (150 MB as uint8) is moved to the device once; `augment` then transforms each
training batch there with batched tensor ops only, so a GPU never waits on the host.
"""

from __future__ import annotations

import hashlib
import http.client
import logging
import os
import pickle
import shutil
import tarfile
import tempfile
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .config import DataConfig

log = logging.getLogger(__name__)


class DataError(RuntimeError):
    """Data that is missing, unreadable or cannot be fetched; the message says what to do."""


CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_DIR = "cifar-10-batches-py"

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
BATCH_FILES = TRAIN_FILES + (TEST_FILE, META_FILE)

CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
IMAGE_SHAPE = (3, 32, 32)
IMAGE_SIZE = 3 * 32 * 32

# The official archive's sizes; synthetic data uses them too unless subsets are asked for.
CIFAR10_TRAIN = 50000
CIFAR10_TEST = 10000

DOWNLOAD_TIMEOUT_S = 60.0


def _absent(folder: Path) -> str:
    return (
        f"CIFAR-10 folder {folder} does not exist; put the CIFAR-10 'python version' batches "
        f"there (data_batch_1..5, test_batch, batches.meta) or set data.download: true"
    )


def _missing(path: Path) -> str:
    return (
        f"CIFAR-10 file {path} is missing; put the complete 'python version' batches "
        f"(data_batch_1..5, test_batch, batches.meta) in {path.parent}, or delete that "
        f"folder and set data.download: true"
    )


# ----------------------------------------------------------------------------------------
# Arrays on the host
# ----------------------------------------------------------------------------------------


@dataclass(frozen=True, eq=False)  # eq=False: numpy arrays have no single truth value
class CifarArrays:
    """Images as uint8 NCHW [N, 3, 32, 32], labels as int64 [N]; val is empty (N = 0)
    without a split."""

    train_x: np.ndarray
    train_y: np.ndarray
    val_x: np.ndarray
    val_y: np.ndarray
    test_x: np.ndarray
    test_y: np.ndarray
    classes: tuple[str, ...]


def _empty_images() -> np.ndarray:
    return np.zeros((0,) + IMAGE_SHAPE, dtype=np.uint8)


def _empty_labels() -> np.ndarray:
    return np.zeros((0,), dtype=np.int64)


# ----------------------------------------------------------------------------------------
# Reading the "python version" batches
# ----------------------------------------------------------------------------------------


class _BatchUnpickler(pickle.Unpickler):
    """Loads only what a CIFAR batch holds (dicts, lists, numbers, byte strings and numpy
    arrays), so a stray or malicious file in the data folder cannot run code and a wrong
    file is reported as such instead of failing somewhere later."""

    _ALLOWED = {
        ("_codecs", "encode"),  # how Python 3 writes bytes in protocol-2 pickles
        ("numpy", "ndarray"),
        ("numpy", "dtype"),
        ("numpy.core.multiarray", "_reconstruct"),  # numpy 1 pickles (the official files)
        ("numpy._core.multiarray", "_reconstruct"),  # numpy 2 pickles
        ("numpy.core.multiarray", "scalar"),
        ("numpy._core.multiarray", "scalar"),
        ("numpy.core.numeric", "_frombuffer"),  # protocol-5 array pickles
        ("numpy._core.numeric", "_frombuffer"),
    }

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in self._ALLOWED:
            raise pickle.UnpicklingError(f"global {module}.{name} is not allowed in a CIFAR batch")
        if module.startswith("numpy.core.") and hasattr(np, "_core"):
            # numpy 2 renamed numpy.core to numpy._core; the old name only warns.
            module = "numpy._core." + module[len("numpy.core.") :]
        return super().find_class(module, name)


def _get(d: dict, key: str) -> Any:
    """A value by key, whether the pickle's keys load as bytes (Python 2 str, the official
    files) or str (files written from Python 3)."""
    if key in d:
        return d[key]
    return d[key.encode()]


def _has(d: dict, key: str) -> bool:
    return key in d or key.encode() in d


def _load_pickle(path: Path) -> dict:
    if not path.is_file():
        raise DataError(_missing(path))
    try:
        with open(path, "rb") as f:
            # encoding="bytes": the official files are Python 2 pickles whose str keys and
            # array buffers must come back as raw bytes, not be decoded as text.
            obj = _BatchUnpickler(f, encoding="bytes").load()
    except Exception as e:  # truncated, not a pickle, or a pickle of something else
        raise DataError(
            f"CIFAR-10 file {path} is truncated or not a CIFAR pickle "
            f"({type(e).__name__}: {str(e).splitlines()[0] if str(e) else 'no detail'}); "
            f"delete {path.parent} and download or write the batches again"
        ) from None
    if not isinstance(obj, dict):
        raise DataError(
            f"CIFAR-10 file {path} holds a {type(obj).__name__}, not a CIFAR batch dict; "
            f"replace {path.parent} with the 'python version' batches"
        )
    return obj


def _read_batch(path: Path, n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    d = _load_pickle(path)
    if not (_has(d, "data") and _has(d, "labels")):
        raise DataError(
            f"CIFAR-10 file {path} is not a CIFAR batch (it lacks the 'data' and 'labels' keys; "
            f"it has {sorted(map(repr, d))[:6]}); replace {path.parent} with the 'python "
            "version' batches"
        )
    data, labels = _get(d, "data"), _get(d, "labels")
    if (
        not isinstance(data, np.ndarray)
        or data.dtype != np.uint8
        or data.ndim != 2
        or data.shape[1] != IMAGE_SIZE
    ):
        shape = getattr(data, "shape", None)
        dtype = getattr(data, "dtype", type(data).__name__)
        raise DataError(
            f"CIFAR-10 file {path} has 'data' of shape {shape} and type {dtype}, not uint8 "
            f"[N, {IMAGE_SIZE}]; replace {path.parent} with the 'python version' batches"
        )
    try:
        y = np.asarray(labels, dtype=np.int64).reshape(-1)
    except (TypeError, ValueError):
        raise DataError(
            f"CIFAR-10 file {path} has 'labels' that are not integers; "
            f"replace {path.parent} with the 'python version' batches"
        ) from None
    if len(y) != len(data):
        raise DataError(
            f"CIFAR-10 file {path} has {len(data)} images but {len(y)} labels; "
            f"replace {path.parent} with the 'python version' batches"
        )
    if len(y) and (y.min() < 0 or y.max() >= n_classes):
        raise DataError(
            f"CIFAR-10 file {path} has labels outside 0..{n_classes - 1}; "
            f"replace {path.parent} with the 'python version' batches"
        )
    # Rows are channel-planar RGB (1024 R, 1024 G, 1024 B), row-major: a plain reshape
    # gives NCHW.
    return data.reshape((-1,) + IMAGE_SHAPE), y


def _read_meta(path: Path) -> tuple[str, ...]:
    d = _load_pickle(path)
    names = _get(d, "label_names") if _has(d, "label_names") else None
    if not isinstance(names, (list, tuple)) or not names:
        raise DataError(
            f"CIFAR-10 file {path} has no 'label_names' list; "
            f"replace {path.parent} with the 'python version' batches"
        )
    return tuple(n.decode("latin1") if isinstance(n, bytes) else str(n) for n in names)


def read_cifar10(root: str | Path) -> CifarArrays:
    """The 50k training and 10k test images from root/cifar-10-batches-py, in file order.
    No split is made here (val is empty); see `split_train_val`."""
    folder = Path(root) / BATCHES_DIR
    if not folder.is_dir():
        raise DataError(_absent(folder))
    classes = _read_meta(folder / META_FILE)
    parts = [_read_batch(folder / name, len(classes)) for name in TRAIN_FILES]
    test_x, test_y = _read_batch(folder / TEST_FILE, len(classes))
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    return CifarArrays(
        train_x=train_x,
        train_y=train_y,
        val_x=_empty_images(),
        val_y=_empty_labels(),
        test_x=test_x,
        test_y=test_y,
        classes=classes,
    )


# ----------------------------------------------------------------------------------------
# Download
# ----------------------------------------------------------------------------------------


def _cleanup(*paths: Path | None) -> None:
    for p in paths:
        if p is None:
            continue
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _safe_extract(tar: tarfile.TarFile, dest: Path) -> None:
    """Extract refusing absolute paths, paths out of `dest`, links and devices."""
    if hasattr(tarfile, "data_filter"):  # Python >= 3.11.4
        tar.extractall(dest, filter="data")
        return
    base = dest.resolve()
    for m in tar.getmembers():
        if not (m.isfile() or m.isdir()) or not (base / m.name).resolve().is_relative_to(base):
            raise tarfile.TarError(f"unsafe archive member {m.name!r}")
    tar.extractall(dest)


def download_cifar10(root: str | Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Download the official archive, check its md5 and extract root/cifar-10-batches-py.

    The archive goes to a temporary file and is extracted into a temporary folder beside
    the target, which is renamed into place last: an interrupted download leaves no
    half-written batches folder (and no temporary files)."""
    # Read at call time so that tests (and mirrors) can point these elsewhere.
    url, expected_md5 = CIFAR10_URL, CIFAR10_MD5
    root = Path(root)
    target = root / BATCHES_DIR
    try:
        root.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".cifar-10-python.", suffix=".tar.gz.part", dir=root)
    except OSError as e:
        raise DataError(
            f"cannot write to the data folder {root} ({e.strerror or e}); "
            f"choose a writable data.root"
        ) from None
    archive: Path | None = Path(name)
    staging: Path | None = None
    try:
        md5 = hashlib.md5()
        log.info("downloading %s to %s", url, root)
        try:
            with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=timeout) as resp:
                while chunk := resp.read(1 << 20):
                    md5.update(chunk)
                    out.write(chunk)
        except (OSError, http.client.HTTPException, ValueError) as e:
            # URLError and socket timeouts are OSErrors; a malformed URL is a ValueError.
            reason = getattr(e, "reason", None) or e
            raise DataError(
                f"downloading CIFAR-10 from {url} failed ({type(e).__name__}: {reason}); check "
                f"the network, or put the 'python version' batches in {target} yourself"
            ) from None
        if md5.hexdigest() != expected_md5:
            raise DataError(
                f"the CIFAR-10 archive downloaded from {url} has md5 {md5.hexdigest()}, not "
                f"{expected_md5}; it is corrupt or not the official file, so try again or put "
                f"the 'python version' batches in {target} yourself"
            )
        try:
            staging = Path(tempfile.mkdtemp(prefix=".cifar-10-extract.", dir=root))
            with tarfile.open(archive, "r:gz") as tar:
                _safe_extract(tar, staging)
        except (tarfile.TarError, OSError, EOFError) as e:
            raise DataError(
                f"the CIFAR-10 archive from {url} could not be extracted ({type(e).__name__}: "
                f"{e}); try again or put the 'python version' batches in {target} yourself"
            ) from None
        extracted = staging / BATCHES_DIR
        missing = [n for n in BATCH_FILES if not (extracted / n).is_file()]
        if missing:
            raise DataError(
                f"the CIFAR-10 archive from {url} lacks {BATCHES_DIR}/{missing[0]}; it is not the "
                f"'python version' archive, so put the batches in {target} yourself"
            )
        try:
            os.rename(extracted, target)
        except OSError as e:
            # Another process finished the same download first; its folder is as good.
            if not target.is_dir():
                raise DataError(
                    f"cannot move the extracted CIFAR-10 batches to {target} "
                    f"({e.strerror or e}); check that {root} is writable"
                ) from None
        log.info("extracted %s", target)
    finally:
        _cleanup(archive, staging)


def data_is_present(cfg: DataConfig) -> bool:
    """Whether the data can be read without a download."""
    return cfg.source != "cifar10" or (Path(cfg.root) / BATCHES_DIR).exists()


def ensure_cifar10(root: str | Path, download: bool) -> Path:
    """The batches folder root/cifar-10-batches-py, downloaded first if it is absent and
    `download` allows it. An existing folder is never overwritten."""
    folder = Path(root) / BATCHES_DIR
    if not folder.exists():
        if not download:
            raise DataError(_absent(folder))
        download_cifar10(root)
    if not folder.is_dir():
        raise DataError(
            f"CIFAR-10 path {folder} is not a folder; remove it and put the "
            f"'python version' batches there or set data.download: true"
        )
    missing = [n for n in BATCH_FILES if not (folder / n).is_file()]
    if missing:
        raise DataError(_missing(folder / missing[0]))
    return folder


# ----------------------------------------------------------------------------------------
# Synthetic data
# ----------------------------------------------------------------------------------------


def _synthetic_images(
    rng: np.random.Generator,
    labels: np.ndarray,
    colour: np.ndarray,
    stripe: np.ndarray,
    wave: np.ndarray,
) -> np.ndarray:
    """Each image: a class colour plus a class-coloured, class-oriented sine grating with a
    random phase, plus pixel noise. The grating's period (>= 10 px) survives the 4-pixel
    crops and flips of section 4.2, so augmented images keep their class."""
    n = len(labels)
    out = np.empty((n,) + IMAGE_SHAPE, dtype=np.uint8)
    yy, xx = np.mgrid[0:32, 0:32].astype(np.float32)
    chunk = 4096  # bounds the float32 working set (50k images at once would be 600 MB)
    for s in range(0, n, chunk):
        y = labels[s : s + chunk]
        b = len(y)
        phase = rng.uniform(0.0, 2 * np.pi, size=(b, 1, 1)).astype(np.float32)
        arg = wave[y, 0, None, None] * xx + wave[y, 1, None, None] * yy + phase  # [b,32,32]
        # A random colour cast per image, larger than the class colours, so that the mean
        # colour alone does not give the class away and the nets must see the pattern.
        cast = rng.uniform(-30.0, 30.0, size=(b, 3, 1, 1)).astype(np.float32)
        img = (
            128.0
            + colour[y][:, :, None, None]
            + cast
            + stripe[y][:, :, None, None] * np.sin(arg)[:, None]
            + rng.normal(0.0, 32.0, size=(b,) + IMAGE_SHAPE).astype(np.float32)
        )
        out[s : s + b] = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return out


def synthetic_cifar(n_train: int, n_test: int, seed: int) -> CifarArrays:
    """CIFAR-shaped, seeded, learnable fake data for offline demos and tests: ten classes
    with exactly balanced labels (up to one image), each a class-dependent pattern plus
    noise. The test set depends only on `seed` and `n_test`, not on `n_train`."""
    if n_train < 0 or n_test < 0:
        raise DataError(
            f"synthetic data needs non-negative sizes, got n_train={n_train}, "
            f"n_test={n_test}; set data.train_subset/test_subset to positive numbers"
        )
    k = len(CIFAR10_CLASSES)
    templates, train_ss, test_ss = np.random.SeedSequence(seed).spawn(3)
    t = np.random.default_rng(templates)
    colour = t.uniform(-25.0, 25.0, size=(k, 3)).astype(np.float32)
    stripe = t.uniform(-50.0, 50.0, size=(k, 3)).astype(np.float32)
    # Orientations spread over half a turn, 1-3 periods per image: distinct per class.
    angle = (np.arange(k) + t.uniform(0.0, 0.5, size=k)) * np.pi / k
    freq = 2 * np.pi * t.uniform(1.0, 3.0, size=k) / 32.0
    wave = np.stack([np.cos(angle) * freq, np.sin(angle) * freq], axis=1).astype(np.float32)

    def split(n: int, ss: np.random.SeedSequence) -> tuple[np.ndarray, np.ndarray]:
        rng = np.random.default_rng(ss)
        y = rng.permutation(np.arange(n, dtype=np.int64) % k)
        return _synthetic_images(rng, y, colour, stripe, wave), y

    train_x, train_y = split(n_train, train_ss)
    test_x, test_y = split(n_test, test_ss)
    return CifarArrays(
        train_x=train_x,
        train_y=train_y,
        val_x=_empty_images(),
        val_y=_empty_labels(),
        test_x=test_x,
        test_y=test_y,
        classes=CIFAR10_CLASSES,
    )


# ----------------------------------------------------------------------------------------
# Split, subsets, description
# ----------------------------------------------------------------------------------------


def split_train_val(
    x: np.ndarray, y: np.ndarray, val_size: int, seed: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A seeded random hold-out of `val_size` images (section 4.2: 45k/5k, val_size=5000).
    Both parts keep the original order, so val_size=0 returns the input unchanged."""
    n = len(x)
    if val_size < 0 or (val_size > 0 and val_size >= n):
        raise DataError(
            f"data.val_size = {val_size} must be >= 0 and smaller than the "
            f"{n} training images; lower data.val_size"
        )
    if val_size == 0:
        return x, y, x[:0], y[:0]
    held = np.zeros(n, dtype=bool)
    held[np.random.default_rng(seed).permutation(n)[:val_size]] = True
    return x[~held], y[~held], x[held], y[held]


def load_arrays(cfg: DataConfig) -> CifarArrays:
    """The data a run trains and tests on: the source, then the validation split, then the
    subsets (the first N images). For synthetic data, train_subset/test_subset set how many
    images are made (train_subset + val_size for training, so that both sources give the
    same split sizes); without them the sizes are CIFAR-10's 50k/10k."""
    if cfg.source == "cifar10":
        ensure_cifar10(cfg.root, cfg.download)
        arrays = read_cifar10(cfg.root)
    elif cfg.source == "synthetic":
        n_train = cfg.train_subset + cfg.val_size if cfg.train_subset is not None else CIFAR10_TRAIN
        n_test = cfg.test_subset if cfg.test_subset is not None else CIFAR10_TEST
        arrays = synthetic_cifar(n_train, n_test, cfg.seed)
    else:
        raise DataError(f"data.source = {cfg.source!r} is not known; use 'cifar10' or 'synthetic'")
    train_x, train_y, val_x, val_y = split_train_val(
        arrays.train_x, arrays.train_y, cfg.val_size, cfg.seed
    )
    test_x, test_y = arrays.test_x, arrays.test_y
    # A subset larger than the data keeps all of it; describe() reports the real counts.
    if cfg.train_subset is not None:
        train_x, train_y = train_x[: cfg.train_subset], train_y[: cfg.train_subset]
    if cfg.test_subset is not None:
        test_x, test_y = test_x[: cfg.test_subset], test_y[: cfg.test_subset]
    if len(train_x) == 0 or len(test_x) == 0:
        raise DataError(
            f"the data has {len(train_x)} training and {len(test_x)} test images "
            f"after the split and subsets; lower data.val_size or raise the subsets"
        )
    # Copies, so the arrays do not keep the full 50k source alive through views.
    return CifarArrays(
        train_x=np.ascontiguousarray(train_x),
        train_y=np.ascontiguousarray(train_y),
        val_x=np.ascontiguousarray(val_x),
        val_y=np.ascontiguousarray(val_y),
        test_x=np.ascontiguousarray(test_x),
        test_y=np.ascontiguousarray(test_y),
        classes=arrays.classes,
    )


def describe(arrays: CifarArrays) -> dict[str, Any]:
    """Image counts per split and per class, JSON-ready, for run.json and logs."""
    k = len(arrays.classes)

    def per_class(y: np.ndarray) -> list[int]:
        return [int(c) for c in np.bincount(y, minlength=k)[:k]]

    return {
        "n_train": int(len(arrays.train_y)),
        "n_val": int(len(arrays.val_y)),
        "n_test": int(len(arrays.test_y)),
        "classes": list(arrays.classes),
        "train_per_class": per_class(arrays.train_y),
        "val_per_class": per_class(arrays.val_y),
        "test_per_class": per_class(arrays.test_y),
    }


def fingerprint(arrays: CifarArrays) -> str:
    """A hash of the content a run sees: the images and labels of each split (after the
    validation split and the subsets) and the class names. It names the data in a run's
    identity instead of the folder it was read from, so moving the data retrains nothing and
    other content retrains exactly the runs that use it."""
    h = hashlib.sha256()
    h.update(repr(arrays.classes).encode())
    for name in ("train_x", "train_y", "val_x", "val_y", "test_x", "test_y"):
        a = np.ascontiguousarray(getattr(arrays, name))
        h.update(f"|{name}:{a.dtype.str}:{a.shape}|".encode())
        h.update(a.reshape(-1).view(np.uint8).data if a.size else b"")
    return h.hexdigest()[:16]


def prepare(cfg: DataConfig) -> dict[str, Any]:
    """For the workflow's data-preparation rule: fetch the data if needed (one download for
    the whole study, before any training job), check that it reads, and describe it."""
    arrays = load_arrays(cfg)
    return {**describe(arrays), "fingerprint": fingerprint(arrays)}


# ----------------------------------------------------------------------------------------
# On the device
# ----------------------------------------------------------------------------------------


@dataclass(eq=False)
class DeviceData:
    """The whole data set on one device as uint8 (150 MB for CIFAR-10), plus the training
    images' mean on a 0..1 scale: per pixel [3, 32, 32] (the paper), or per channel [3, 1, 1]
    with the per-channel std beside it (data.normalization: per_channel_mean_std)."""

    train_x: torch.Tensor
    train_y: torch.Tensor
    val_x: torch.Tensor
    val_y: torch.Tensor
    test_x: torch.Tensor
    test_y: torch.Tensor
    mean: torch.Tensor
    std: torch.Tensor | None = None


def per_pixel_mean(train_x: torch.Tensor) -> torch.Tensor:
    """float32 [3, 32, 32] on a 0..1 scale (section 4.2: "the per-pixel mean subtracted")."""
    n = train_x.shape[0]
    if n == 0:
        raise DataError(
            "the per-pixel mean needs at least one training image; "
            "lower data.val_size or raise data.train_subset"
        )
    total = torch.zeros(train_x.shape[1:], dtype=torch.int64, device=train_x.device)
    # Exact integer sums in chunks: no float copy of the whole set; 50k * 255 fits float32's
    # exact integer range, so the division below is the only rounding.
    for s in range(0, n, 8192):
        total += train_x[s : s + 8192].sum(0, dtype=torch.int64)
    return total.to(torch.float32) / (255.0 * n)


def per_channel_mean_std(train_x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """float32 [3, 1, 1] mean and std (population, over all training pixels of a channel) on
    a 0..1 scale: the per-channel normalisation of the ImageNet-style recipe, computed from
    the training images actually used (the write-up hard-codes constants for all 50k)."""
    n = train_x.shape[0]
    if n == 0:
        raise DataError(
            "the per-channel mean and std need at least one training image; "
            "lower data.val_size or raise data.train_subset"
        )
    c = train_x.shape[1]
    total = torch.zeros(c, dtype=torch.float64, device=train_x.device)
    squares = torch.zeros(c, dtype=torch.float64, device=train_x.device)
    for s in range(0, n, 8192):
        chunk = train_x[s : s + 8192].to(torch.float64).transpose(0, 1).reshape(c, -1) / 255.0
        total += chunk.sum(1)
        squares += chunk.square().sum(1)
    count = n * train_x.shape[2] * train_x.shape[3]
    mean = total / count
    std = (squares / count - mean.square()).clamp_min(1e-12).sqrt()
    return mean.float().reshape(c, 1, 1), std.float().reshape(c, 1, 1)


def normalize(x: torch.Tensor, mean: torch.Tensor, std: torch.Tensor | None = None) -> torch.Tensor:
    """uint8 batch -> float32 x/255 - mean. Only the mean is subtracted, as in section 4.2
    (no division by a standard deviation), unless `std` is given (per-channel recipe)."""
    out = x.to(torch.float32).div_(255.0).sub_(mean)
    return out if std is None else out.div_(std)


def augment(
    x: torch.Tensor,
    mean: torch.Tensor,
    generator: torch.Generator,
    padding: int = 4,
    flip: bool = True,
    std: torch.Tensor | None = None,
) -> torch.Tensor:
    """The training augmentation of section 4.2 on a uint8 batch, on x's device:
    normalize, pad `padding` zeros on each side, take a random 32x32 crop per image and flip
    it horizontally with probability 0.5 per image.

    The padding is zero after mean subtraction, following the paper's order (mean subtracted
    from the input, then padded). With `std` (the ImageNet-style recipe) the border is a black
    pixel instead, -mean/std after normalising, as torchvision's RandomCrop(padding=4) before
    Normalize gives in the write-up whose recipe that is. No padded copy is built: each output
    pixel gathers its source pixel, and pixels that fall in the border are set to the border
    value. All randomness comes from `generator`, which must live on x's device."""
    if padding < 0:
        raise ValueError(f"padding must be >= 0, got {padding}")
    out = normalize(x, mean, std)
    fill = 0.0 if std is None else (-mean / std).expand(out.shape[1:])
    b, c, h, w = out.shape
    dev = out.device
    if padding > 0:
        # Top-left corner of the crop in padded coordinates: 0..2*padding for each axis.
        offs = torch.randint(0, 2 * padding + 1, (2, b), generator=generator, device=dev)
        rows = torch.arange(h, device=dev) + (offs[0] - padding)[:, None]  # [b, h] source rows
        cols = torch.arange(w, device=dev) + (offs[1] - padding)[:, None]  # [b, w] source cols
    else:
        rows = cols = None
    if flip:
        flipped = torch.rand(b, generator=generator, device=dev) < 0.5
        if cols is None:
            cols = torch.arange(w, device=dev).expand(b, w)
        # Flipping the crop reverses the order of its source columns.
        cols = torch.where(flipped[:, None], cols.flip(1), cols)
    if rows is not None:
        ok_r = (rows >= 0) & (rows < h)
        out = out.gather(2, rows.clamp(0, h - 1)[:, None, :, None].expand(b, c, h, w))
        out = torch.where(ok_r[:, None, :, None], out, fill)
    if cols is not None:
        ok_c = (cols >= 0) & (cols < w)
        out = out.gather(3, cols.clamp(0, w - 1)[:, None, None, :].expand(b, c, h, w))
        out = torch.where(ok_c[:, None, None, :], out, fill)
    return out


def epoch_order(n: int, generator: torch.Generator, device: torch.device | str) -> torch.Tensor:
    """A random permutation of range(n) on `device`; the caller draws a new one each epoch."""
    return torch.randperm(n, generator=generator, device=device)


def to_device(
    arrays: CifarArrays, device: torch.device | str, normalization: str = "per_pixel_mean"
) -> DeviceData:
    """Move every split to `device` once, as uint8, and compute the training statistics of
    `normalization` (config data.normalization) there."""

    def put(a: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.ascontiguousarray(a)).to(device)

    train_x = put(arrays.train_x)
    return DeviceData(
        train_x=train_x,
        train_y=put(arrays.train_y.astype(np.int64)),
        val_x=put(arrays.val_x),
        val_y=put(arrays.val_y.astype(np.int64)),
        test_x=put(arrays.test_x),
        test_y=put(arrays.test_y.astype(np.int64)),
        **_statistics(train_x, normalization),
    )


def _statistics(train_x: torch.Tensor, normalization: str) -> dict[str, torch.Tensor]:
    if normalization == "per_pixel_mean":
        return {"mean": per_pixel_mean(train_x)}
    if normalization == "per_channel_mean_std":
        mean, std = per_channel_mean_std(train_x)
        return {"mean": mean, "std": std}
    raise ValueError(
        f"normalization {normalization!r} is not allowed; allowed values: "
        "['per_pixel_mean', 'per_channel_mean_std']"
    )
