"""CIFAR-10 data: read the "python version" batches, download them with a checksum, split
off a validation set, and feed a device-resident training set with the paper's augmentation.

He et al. 2015, section 4.2: "The network inputs are 32x32 images, with the per-pixel mean
subtracted." For training, "4 pixels are padded on each side, and a 32x32 crop is randomly
sampled from the padded image or its horizontal flip. For testing, we only evaluate the single
view of the original 32x32 image." The schedule was set on a 45k/5k train/val split.

The whole set (150 MB as uint8) is moved to the device once; `augment` then transforms each
training batch there with batched tensor ops only, so a GPU never waits on the host.

The modules, one concern each: `arrays` (`DataError`, `CifarArrays`), `cifar10` (the files:
reading and download), `synthetic` (fake CIFAR-shaped data), `load` (split, subsets,
description, fingerprint) and `device` (the data on the device, normalisation, augmentation).
This package re-exports their public names, so `from resnet_repro.data import ...` works as for
one module (all but `arrays.empty_images` / `empty_labels`, which only its modules use). The
download's source (`cifar10.CIFAR10_URL`, `CIFAR10_MD5`) and the default synthetic sizes
(`load.CIFAR10_TRAIN`, `CIFAR10_TEST`) are deliberately not re-exported: they are read at call
time from their own module, so that is where a test must patch them (a patch of a re-exported
copy would change nothing, and a download test could reach the network).
"""

from __future__ import annotations

from .arrays import CIFAR10_CLASSES, IMAGE_SHAPE, IMAGE_SIZE, CifarArrays, DataError
from .cifar10 import (
    BATCH_FILES,
    BATCHES_DIR,
    DOWNLOAD_TIMEOUT_S,
    META_FILE,
    TEST_FILE,
    TRAIN_FILES,
    data_is_present,
    download_cifar10,
    ensure_cifar10,
    read_cifar10,
)
from .device import (
    DeviceData,
    augment,
    border,
    crop_and_flip,
    draw_augmentation,
    epoch_order,
    normalize,
    per_channel_mean_std,
    per_pixel_mean,
    to_device,
)
from .load import (
    describe,
    fingerprint,
    load_arrays,
    prepare,
    source_arrays,
    source_train_mean,
    split_train_val,
)
from .synthetic import synthetic_cifar

__all__ = [
    "BATCHES_DIR",
    "BATCH_FILES",
    "CIFAR10_CLASSES",
    "DOWNLOAD_TIMEOUT_S",
    "IMAGE_SHAPE",
    "IMAGE_SIZE",
    "META_FILE",
    "TEST_FILE",
    "TRAIN_FILES",
    "CifarArrays",
    "DataError",
    "DeviceData",
    "augment",
    "border",
    "crop_and_flip",
    "draw_augmentation",
    "data_is_present",
    "describe",
    "download_cifar10",
    "ensure_cifar10",
    "epoch_order",
    "fingerprint",
    "load_arrays",
    "normalize",
    "per_channel_mean_std",
    "per_pixel_mean",
    "prepare",
    "read_cifar10",
    "source_arrays",
    "source_train_mean",
    "split_train_val",
    "synthetic_cifar",
    "to_device",
]
