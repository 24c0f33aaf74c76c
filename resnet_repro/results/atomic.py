"""Atomic writes: the data lands in a temporary file beside the target and is renamed over it,
so a killed job never leaves a half-written result. A write that fails (a full disk, a quota,
a folder that cannot be written) ends in a ResultError of one line naming the file, the free
space of its folder and what to do; the temporary file is removed and the file it would have
replaced is left as it was."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any


class ResultError(ValueError):
    """A result file that is missing, unreadable or not of the expected layout."""


# What torch.save raises when the bytes do not reach the file (a full disk, among others):
# "[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598", "PytorchStreamWriter
# failed writing file data/0: file write failed". It says nothing about space.
_TORCH_WRITE_ERRORS = ("inline_container", "PytorchStreamWriter", "unexpected pos", "write failed")
_NO_SPACE = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)


def _free_space(folder: Path) -> str:
    try:
        free = float(shutil.disk_usage(folder).free)
    except OSError:
        return "free space unknown"
    for unit in ("bytes", "KB", "MB", "GB", "TB"):
        if free < 1024 or unit == "TB":
            break
        free /= 1024
    return f"{free:.0f} bytes free" if unit == "bytes" else f"{free:.1f} {unit} free"


def write_failure(path: Path, error: BaseException) -> ResultError:
    """One line for a result file that could not be written: which file, why, the free space
    of its folder, and what to do."""
    folder = path.parent
    if isinstance(error, OSError) and error.errno not in (None, *_NO_SPACE):
        reason = error.strerror or str(error)
        advice = "make that folder writable, or write the results elsewhere, and run again"
    else:
        if isinstance(error, OSError) and error.errno is not None:
            reason = os.strerror(error.errno).lower()
        else:
            reason = "the file could not be written in full (a full disk?)"
        advice = (
            "free some space there (or move the results to a larger disk) and run the same "
            "command again"
        )
    return ResultError(
        f"cannot write {path}: {reason}; {_free_space(folder)} in {folder}; {advice}: nothing "
        "written before is lost (a run resumes from its last checkpoint)"
    )


def _is_write_error(error: BaseException) -> bool:
    if isinstance(error, OSError):
        return True
    return isinstance(error, RuntimeError) and any(t in str(error) for t in _TORCH_WRITE_ERRORS)


@contextlib.contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path beside `path`; on success rename it over `path`. A failed write
    (OSError, or torch's write errors) becomes a ResultError of one line (`write_failure`);
    the temporary file is removed either way."""
    path = Path(path)
    tmp_path: Path | None = None
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
        os.close(fd)
        tmp_path = Path(tmp)
        # mkstemp makes the file private (0600); results are ordinary files, so use the umask.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp_path, 0o666 & ~umask)
        yield tmp_path
        os.replace(tmp_path, path)
    except Exception as e:
        if _is_write_error(e):
            raise write_failure(path, e) from None
        raise
    finally:
        if tmp_path is not None:
            with contextlib.suppress(OSError):
                tmp_path.unlink(missing_ok=True)


def write_json(obj: Any, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        with open(tmp, "w") as f:
            json.dump(obj, f, indent=2, sort_keys=True, default=str)
            f.write("\n")


def write_text(text: str, path: str | Path) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def save_torch(obj: Any, path: str | Path) -> None:
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)
