"""The data a run sees: the source (CIFAR-10's files or synthetic), the validation split of
section 4.2 and the subsets, with its description and content fingerprint."""

from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

from ..config import DataConfig
from .arrays import CifarArrays, DataError
from .cifar10 import ensure_cifar10, read_cifar10
from .synthetic import synthetic_cifar

# The official archive's sizes; synthetic data uses them too unless subsets are asked for.
CIFAR10_TRAIN = 50000
CIFAR10_TEST = 10000


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


def source_arrays(cfg: DataConfig) -> CifarArrays:
    """Every image of the source, before the validation split and the subsets: CIFAR-10's
    files, or the synthetic images made for this config (train_subset + val_size training
    images, so that both sources give the same split sizes; CIFAR-10's 50k/10k without
    subsets)."""
    if cfg.source == "cifar10":
        ensure_cifar10(cfg.root, cfg.download)
        return read_cifar10(cfg.root)
    if cfg.source == "synthetic":
        n_train = cfg.train_subset + cfg.val_size if cfg.train_subset is not None else CIFAR10_TRAIN
        n_test = cfg.test_subset if cfg.test_subset is not None else CIFAR10_TEST
        return synthetic_cifar(n_train, n_test, cfg.seed)
    raise DataError(f"data.source = {cfg.source!r} is not known; use 'cifar10' or 'synthetic'")


def source_train_mean(cfg: DataConfig):
    """The per-pixel mean (float32 torch tensor [3, 32, 32], 0..1 scale) of every training
    image of the source (`source_arrays`: never a split or a subset), and how many images it
    averages. What an imported net that was trained on all of a data set's training images
    is fed, whatever subsets the study that imports it uses."""
    import torch

    from .device import per_pixel_mean

    train_x = source_arrays(cfg).train_x
    return per_pixel_mean(torch.from_numpy(np.ascontiguousarray(train_x))), len(train_x)


def load_arrays(cfg: DataConfig) -> CifarArrays:
    """The data a run trains and tests on: the source (`source_arrays`), then the validation
    split, then the subsets (the first N images)."""
    arrays = source_arrays(cfg)
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
