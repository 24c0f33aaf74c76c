"""model.pt: the one layout every trained net has here, ours or imported (evaluated by
`engine.evaluation.evaluate`).

    {"model": state_dict, "identity": {...}, "parameters": int,
     "normalization": normalization record (absent in files written before it existed)}

Since the per-pixel mean is stored as a tensor in the record, a model file is fed the same
inputs by every study that reads it. Files written before (no record, or a record without its
mean) still load, fed the training mean of the data at hand as then, with a warning naming
the file: their error depends on the study that reads them.

`identity` holds at least model ('resnet56'), arch, depth, shortcut and seed; an imported net
also has `source` (format, file, sha256, name). Every place that feeds a model reads it with
`load_model_file`, so our runs and imported nets are treated alike, with the normalisation
they were trained with.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..results import ResultError
from . import normalization
from .anatomy import count_parameters
from .families import build_model

FOREIGN_HINT = (
    "resnet-repro reads its own model.pt; import akamaster (.th) or wooyeolbaek "
    "(last.pth) checkpoints first with `resnet-repro import`"
)


def payload(
    model: nn.Module, identity: Mapping[str, Any], norm: Mapping[str, Any]
) -> dict[str, Any]:
    """What `results.save_torch` writes as model.pt, for a trained run and an imported net
    alike: the one place its layout is made. ValueError on a malformed normalisation record,
    before anything is written (`normalization.check`)."""
    return {
        "model": model.state_dict(),
        "identity": dict(identity),
        "parameters": count_parameters(model),
        "normalization": normalization.check(norm),
    }


OLD_FILE_WARNING = (
    "model file {path} stores no input mean (it was written before resnet-repro stored one): "
    "it is fed the per-pixel training mean of this study's data, so its error depends on the "
    "study that reads it; train the run again, or import the checkpoint again, to store the mean"
)


def load_model_file(
    path: str | Path, warn: Callable[[str], None] | None = None
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(model on the CPU in eval mode, identity, normalisation record) of a model.pt.

    Loads with weights_only=True (no code runs from the file). A file without a normalisation
    record predates it and was trained by us: the per-pixel mean of the data at hand. Such a
    file, and one whose per-pixel record has no mean, is read with a warning (`warn`, else
    Python's warnings) that names it."""
    path = Path(path)
    if not path.is_file():
        raise ResultError(f"model file {path} does not exist")
    try:
        with warnings.catch_warnings():  # torch's notes on pickle protocols: not ours to show
            warnings.simplefilter("ignore")
            saved = torch.load(path, map_location="cpu", weights_only=True)
        identity = dict(saved["identity"])
        norm = normalization.check(
            saved.get("normalization") or normalization.per_pixel_mean(None, "not recorded")
        )
        model = build_model(
            identity["model"], shortcut=identity.get("shortcut", "A"), width=identity.get("width")
        )
        model.load_state_dict(saved["model"])
    except Exception as e:  # unpickling, missing keys, wrong shapes: all mean "not ours"
        raise ResultError(
            f"model file {path} is not a resnet-repro model.pt ({type(e).__name__}); {FOREIGN_HINT}"
        ) from None
    if normalization.needs_data_mean(norm):
        message = OLD_FILE_WARNING.format(path=path)
        if warn is None:
            warnings.warn(message, stacklevel=2)
        else:
            warn(message)
    return model.eval(), identity, norm
