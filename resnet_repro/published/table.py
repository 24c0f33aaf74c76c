"""The published checkpoints' table: the authors' reported test error beside ours on the
study's test set. DataFrame out; the command line writes it."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import pandas as pd

from ..tables.paper import reported_error

TABLE_COLUMNS = [
    "name",
    "format",
    "model",
    "reported_error_pct",
    "our_error_pct",
    "difference_pct",
    "test_images",
    "reported_selection",
    "reported_note",
    "reported_source",
]


def published_table(evals: list[Mapping[str, Any]]) -> pd.DataFrame:
    """One row per evaluated checkpoint: the authors' reported test error (paper.REPORTED,
    their official test set), ours on the study's test set, and ours minus theirs in
    percentage points. `reported_selection` says which epoch the authors' number is: "best
    epoch, selected on the test set" (akamaster: the difference then carries that selection's
    optimism) or "last epoch"; `reported_note` what else to know (akamaster's files store
    another best accuracy than its README). `evals` are the JSON records `resnet-repro
    evaluate` writes."""
    rows = []
    for e in evals:
        fmt = e.get("format")
        reported = reported_error(fmt, e["model"]) if fmt else None
        theirs = reported.test_error_pct if reported else None
        rows.append(
            {
                "name": e["name"],
                "format": fmt or "ours",
                "model": e["model"],
                "reported_error_pct": theirs,
                "our_error_pct": e["test_error_pct"],
                "difference_pct": None if theirs is None else e["test_error_pct"] - theirs,
                "test_images": int(e["test_images"]),
                "reported_selection": reported.selection if reported else None,
                "reported_note": reported.note if reported else None,
                "reported_source": reported.source if reported else None,
            }
        )
    return pd.DataFrame(rows, columns=TABLE_COLUMNS)
