"""model.pt: the one layout every trained net has here, ours or imported (evaluated by
`engine.evaluation.evaluate`).

    {"model": state_dict, "identity": {...}, "parameters": int,
     "normalization": normalization record (absent in files written before it existed)}

`identity` holds at least model ('resnet56'), arch, depth, shortcut and seed; an imported net
also has `source` (format, file, sha256, name). Every place that feeds a model reads it with
`load_model_file`, so our runs and imported nets are treated alike, with the normalisation
they were trained with.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..results import ResultError
from . import normalization
from .cifar_nets import build_model, count_parameters

FOREIGN_HINT = (
    "resnet-repro reads its own model.pt; import akamaster (.th) or wooyeolbaek "
    "(last.pth) checkpoints first with `resnet-repro import`"
)


def payload(
    model: nn.Module, identity: Mapping[str, Any], norm: Mapping[str, Any]
) -> dict[str, Any]:
    """What `results.save_torch` writes as model.pt."""
    return {
        "model": model.state_dict(),
        "identity": dict(identity),
        "parameters": count_parameters(model),
        "normalization": normalization.check(norm),
    }


def load_model_file(path: str | Path) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(model on the CPU in eval mode, identity, normalisation record) of a model.pt.

    Loads with weights_only=True (no code runs from the file). A file without a normalisation
    record predates it and was trained by us: the per-pixel mean of the data at hand."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"model file {path} does not exist")
    try:
        saved = torch.load(path, map_location="cpu", weights_only=True)
        identity = dict(saved["identity"])
        norm = normalization.check(saved.get("normalization") or normalization.per_pixel_mean())
        model = build_model(
            identity["model"], shortcut=identity.get("shortcut", "A"), width=identity.get("width")
        )
        model.load_state_dict(saved["model"])
    except Exception as e:  # unpickling, missing keys, wrong shapes: all mean "not ours"
        raise ResultError(
            f"model file {path} is not a resnet-repro model.pt ({type(e).__name__}); {FOREIGN_HINT}"
        ) from None
    return model.eval(), identity, norm
