"""Resume state of a training run: the checkpoint file, and the record of where each part of
a run was computed.

A checkpoint is written atomically after every epoch and resumed only when it was written
for the same run identity. Resuming under other numeric settings (device, precision, CPU
threads, ...) is allowed, since a run may move to another machine, but it is logged and every
start or resume is recorded, so run.json says which iterations ran where.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from ..results import save_torch
from .devices import Placement

CHECKPOINT_VERSION = 2

# Settings that change a run's numbers in the last bits (kernels, rounding, reduction order)
# without changing its recipe.
NUMERIC_SETTINGS = ("device", "hardware", "precision", "threads", "channels_last", "compile")


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
    saved on a GPU may not exist where the run resumes."""
    chosen = [{k: g.get(k) for k in ("fused", "foreach")} for g in optimizer.param_groups]
    optimizer.load_state_dict(saved)
    for group, flags in zip(optimizer.param_groups, chosen):
        group.update(flags)


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
