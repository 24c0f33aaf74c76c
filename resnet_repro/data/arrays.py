"""What every part of the data package hands around: the error for bad data, and the images
and labels of a data set on the host as `CifarArrays`."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class DataError(RuntimeError):
    """Data that is missing, unreadable or cannot be fetched; the message says what to do."""


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


def empty_images() -> np.ndarray:
    """No images, [0, 3, 32, 32] uint8: the val set without a split."""
    return np.zeros((0,) + IMAGE_SHAPE, dtype=np.uint8)


def empty_labels() -> np.ndarray:
    """No labels, [0] int64: the val set without a split."""
    return np.zeros((0,), dtype=np.int64)
