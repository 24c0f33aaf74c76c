"""Run identity: what makes two runs the same run. A checkpoint is resumed, and Snakemake
keeps a finished run, only while its identity is unchanged."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from dataclasses import asdict
from typing import Any

from ..nets.families import family_of
from .study import Study, parse_model_name

# Config keys that do not change a run's numbers: where the data lives and whether it may be
# fetched (the data's content is in the fingerprint instead), the keys that select that content
# (also covered by the fingerprint, so that an equivalent selection is not a new run), and the
# evaluation batch size (evaluation is in fp32 and per image), and the length of the training
# windows (it groups the logged training loss and error; the training itself is the same).
_DATA_KEYS_NOT_IN_IDENTITY = (
    "root",
    "download",
    "source",
    "val_size",
    "train_subset",
    "test_subset",
    "seed",
)
_TRAIN_KEYS_NOT_IN_IDENTITY = ("eval_batch_size", "window_iterations")


def run_identity(study: Study, model: str, seed: int, data_fingerprint: str) -> dict[str, Any]:
    """Everything that determines a run's numbers: the model, the seed, the recipe and the
    content of the data (`data.fingerprint` of the images and labels after split and subsets),
    not where the data lives nor the device knobs. A checkpoint is resumed only when this
    matches, and Snakemake retrains a run exactly when it changes."""
    arch, depth = parse_model_name(model)
    data = {k: v for k, v in asdict(study.data).items() if k not in _DATA_KEYS_NOT_IN_IDENTITY}
    train = {k: v for k, v in asdict(study.train).items() if k not in _TRAIN_KEYS_NOT_IN_IDENTITY}
    # A family may fix its shortcut option (the ImageNet-style nets always project where the
    # shape changes, option B) and take study.width (null: their real 64); the paper's nets
    # take study.shortcut and have no width key.
    takes_width = family_of(model).takes_width
    return {
        "model": model,
        "arch": arch,
        "depth": depth,
        "shortcut": study.model_shortcut(model),
        **({"width": study.study.width} if takes_width else {}),
        "seed": seed,
        "data": {**data, "fingerprint": data_fingerprint},
        "train": train,
    }


def data_selection(study: Study) -> dict[str, Any]:
    """The data keys of the config that choose the content (source, split, subsets, seed,
    normalisation), without where it lives or whether it may be downloaded: what
    results/data/prepared.json records beside the content's fingerprint, and what a run's
    progress.json records, so that a change of data can be seen without reading the data."""
    return {k: v for k, v in asdict(study.data).items() if k not in ("root", "download")}


def identity_hash(identity: Mapping[str, Any]) -> str:
    blob = json.dumps(identity, sort_keys=True, default=str).encode()
    return hashlib.sha256(blob).hexdigest()[:16]
