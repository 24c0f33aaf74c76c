"""Resume state of a training run: the checkpoint file, the record of where each part of a
run was computed, and the finished run's outputs kept beside it.

A checkpoint is written atomically after every epoch and resumed only when it was written
for the same run identity. Resuming under other numeric settings (device, precision, CPU
threads, ...) is allowed, since a run may move to another machine, but it is logged and every
start or resume is recorded, so run.json says which iterations ran where.

Once a run is complete its checkpoint goes, and hard links to its outputs (metrics.parquet,
model.pt, run.json) stay in checkpoint/finished/ (`keep_finished`: no second copy on disk).
When Snakemake itself is killed while a training job runs, the job trains to the end on its
own, but Snakemake never learns that it finished: it calls the outputs incomplete and
`--rerun-incomplete` deletes them and runs the job again. The job then puts the finished
run's outputs back as they were (`restore_finished`, same run identity), instead of training
it again from iteration 0.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..results import save_torch, write_failure
from .devices import Placement

CHECKPOINT_VERSION = 2

# Settings that change a run's numbers in the last bits (kernels, rounding, reduction order)
# without changing its recipe.
NUMERIC_SETTINGS = (
    "device",
    "hardware",
    "precision",
    "threads",
    "channels_last",
    "compile",
    "deterministic",
)


def session_record(placement: Placement, iteration: int) -> dict[str, Any]:
    """Where the iterations from `iteration` on are computed, JSON-ready for run.json."""
    return {
        "from_iteration": iteration,
        "device": placement.device.type,
        # The device name without its GPU index and slot: another GPU of the same model
        # computes the same numbers.
        "hardware": placement.name.split(" (GPU ")[0],
        "precision": placement.precision,
        "threads": torch.get_num_threads() if placement.device.type == "cpu" else None,
        "channels_last": placement.channels_last,
        "compile": placement.compile,
        "fused_optimizer": placement.fused_optimizer,
        "deterministic": placement.deterministic,
    }


def numeric_changes(before: dict[str, Any], now: dict[str, Any]) -> list[str]:
    """The numeric settings that differ between two session records, as 'key a -> b'."""
    return [
        f"{k} {before.get(k)} -> {now.get(k)}"
        for k in NUMERIC_SETTINGS
        if before.get(k) != now.get(k)
    ]


def restore_optimizer(
    optimizer: torch.optim.Optimizer, saved: dict[str, Any], placement: Placement
) -> None:
    """Load the optimizer's state but keep the implementation chosen for this placement:
    `load_state_dict` would bring back the saved fused/foreach flags, and a fused CUDA step
    saved on a GPU may not exist where the run resumes.

    Each state tensor is put in its parameter's memory layout: a run started on the CPU (or
    without channels_last) saved contiguous momentum buffers, and CUDA's fused SGD refuses
    buffers whose strides differ from the parameters' (the device knobs are not part of the
    run identity, so they may change at a resume)."""
    chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, flags in zip(optimizer.param_groups, chosen):
        group.update(flags)
        for p in group["params"]:
            state = optimizer.state.get(p, {})
            for key, value in state.items():
                if (
                    isinstance(value, torch.Tensor)
                    and value.shape == p.shape
                    and value.stride() != p.stride()
                ):
                    state[key] = torch.empty_like(p, dtype=value.dtype).copy_(value)


def load_checkpoint(
    path: Path, expected_hash: str, warn: Callable[[str], None]
) -> dict[str, Any] | None:
    """The saved state when it is readable and from the same run identity; else None, with a
    warning that says why the run starts afresh."""
    if not path.exists():
        return None
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
        if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION:
            raise ValueError("unknown checkpoint layout")
    except Exception as e:  # truncated, corrupt or foreign file: never fatal, never trusted
        warn(f"checkpoint {path} is unreadable ({type(e).__name__}); starting afresh")
        return None
    if state.get("identity_hash") != expected_hash:
        warn(f"checkpoint {path} was written for a different run config; starting afresh")
        return None
    return state


def save_checkpoint(
    path: Path,
    *,
    identity: dict[str, Any],
    identity_hash: str,
    model: torch.nn.Module,
    optimizer: torch.optim.Optimizer,
    iteration: int,
    epoch: int,
    rows: list[dict[str, Any]],
    warmup: dict[str, Any],
    sessions: list[dict[str, Any]],
    window: dict[str, Any] | None = None,
) -> None:
    save_torch(
        {
            "version": CHECKPOINT_VERSION,
            "identity_hash": identity_hash,
            "identity": identity,
            "model": model.state_dict(),
            "optimizer": optimizer.state_dict(),
            "iteration": iteration,
            "epoch": epoch,
            "rows": rows,
            "warmup": warmup,
            "sessions": sessions,
            "window": window,  # the open training window (engine/windows.py)
        },
        path,
    )


# ---------------------------------------------------------------- a finished run's outputs

OUTPUTS = ("metrics.parquet", "model.pt", "run.json")
FINISHED = "finished"
IDENTITY_FILE = "identity_hash"


def finished_dir(checkpoint_path: Path) -> Path:
    """Where a finished run's outputs are kept: checkpoint/finished/ beside state.pt."""
    return checkpoint_path.parent / FINISHED


def _link_or_copy(src: Path, dst: Path) -> None:
    try:
        os.link(src, dst)
    except OSError:  # a file system without hard links
        shutil.copy2(src, dst)


def keep_finished(run_dir: Path, checkpoint_path: Path, identity_hash: str) -> None:
    """Keep the complete run's outputs (hard links, else copies) and its identity in
    checkpoint/finished/, replacing what was kept before; then drop the resume state."""
    kept = finished_dir(checkpoint_path)
    kept.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{FINISHED}.", dir=kept.parent))
    try:
        for name in OUTPUTS:
            _link_or_copy(run_dir / name, tmp / name)
        (tmp / IDENTITY_FILE).write_text(identity_hash + "\n")
        shutil.rmtree(kept, ignore_errors=True)
        os.replace(tmp, kept)
    except OSError as e:
        raise write_failure(kept, e) from None
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    # The outputs are complete and kept: the resume state has served its purpose.
    with contextlib.suppress(FileNotFoundError):
        checkpoint_path.unlink()


def restore_finished(run_dir: Path, checkpoint_path: Path, identity_hash: str) -> bool:
    """Put back the outputs of a run that finished with this identity (`keep_finished`) and
    return True; False, touching nothing, when none was kept or it was another run's. The
    outputs are new files (fresh modification times: Snakemake sees them written now) with
    the finished run's content."""
    kept = finished_dir(checkpoint_path)
    try:
        if (kept / IDENTITY_FILE).read_text().strip() != identity_hash:
            return False
    except OSError:
        return False
    if not all((kept / name).is_file() for name in OUTPUTS):
        return False
    for name in OUTPUTS:
        target = run_dir / name
        tmp = run_dir / f".{name}.restoring"
        try:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
            shutil.copy2(kept / name, tmp)  # a copy, so that the kept file is never touched
            os.utime(tmp)
            os.replace(tmp, target)
        except OSError as e:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise write_failure(target, e) from None
    return True
