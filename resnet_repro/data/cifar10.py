"""CIFAR-10's files: read the "python version" batches safely, and download the official
archive with its md5 checksum, extracting it so that an interrupted download leaves nothing
half-written."""

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
from pathlib import Path
from typing import Any

import numpy as np

from ..config import DataConfig
from .arrays import IMAGE_SHAPE, IMAGE_SIZE, CifarArrays, DataError, empty_images, empty_labels

log = logging.getLogger(__name__)

CIFAR10_URL = "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz"
CIFAR10_MD5 = "c58f30108f718f92721af3b95e74349a"
BATCHES_DIR = "cifar-10-batches-py"

TRAIN_FILES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_FILE = "test_batch"
META_FILE = "batches.meta"
BATCH_FILES = TRAIN_FILES + (TEST_FILE, META_FILE)

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
        val_x=empty_images(),
        val_y=empty_labels(),
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
