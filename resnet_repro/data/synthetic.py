"""Synthetic CIFAR-shaped data: seeded, learnable fake images for offline demos and tests."""

from __future__ import annotations

import numpy as np

from .arrays import (
    CIFAR10_CLASSES,
    IMAGE_SHAPE,
    CifarArrays,
    DataError,
    empty_images,
    empty_labels,
)


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
        val_x=empty_images(),
        val_y=empty_labels(),
        test_x=test_x,
        test_y=test_y,
        classes=CIFAR10_CLASSES,
    )
