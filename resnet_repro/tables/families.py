"""Tables of the second study family and of both families side by side (issue 13): pure
functions, DataFrame in, DataFrame out (`cli/analysis.py` reads the files).

The honest-selection rule: our number for a net is the test error of the final epoch, and,
when a validation split is set (data.val_size > 0), the test error at the epoch of the lowest
validation error. Never the best test epoch: choosing an epoch on the test set makes the test
error a training signal. Published numbers that were chosen that way (the write-up's best
epoch, `paper.WRITEUP`) are shown only beside ours, with their selection spelled out.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any

import pandas as pd

from ..nets.families import family_of, model_label
from . import paper
from .columns import FLOAT, INT, TEXT, columns
from .comparison import model_stats
from .runs import run_summary, sort_models

OUR_SELECTION = "final epoch (and best validation epoch when val_size > 0)"


def _mean(values: pd.Series) -> float:
    v = values.dropna().astype(float)
    return float(v.mean()) if len(v) else math.nan


IMAGENET_STYLE = columns(
    ("model", TEXT),
    ("label", TEXT),
    ("params_millions", FLOAT),
    ("runs", INT),
    ("seeds", INT),
    ("diverged", INT),
    ("missing", INT),
    ("final_epoch", INT),
    ("final_test_error_pct", FLOAT),
    ("final_test_error_std_pct", FLOAT),
    ("best_val_epochs", TEXT),
    ("test_error_at_best_val_pct", FLOAT),
    ("our_selection", TEXT),
    ("writeup_test_error_pct", FLOAT),
    ("writeup_best_epoch", INT),
    ("writeup_selection", TEXT),
    ("writeup_source", TEXT),
    ("status", TEXT),
    ("note", TEXT),
)
IMAGENET_STYLE_COLUMNS = IMAGENET_STYLE.names


def imagenet_style_table(
    metrics: pd.DataFrame,
    expected_runs: Sequence[tuple[str, int]] | None,
    params: Mapping[str, int],
) -> pd.DataFrame:
    """One row per ImageNet-style net (other models are left out), IMAGENET_STYLE_COLUMNS.

    `final_test_error_pct` (mean over the ok runs; std with two or more) and, where the runs
    have a validation split, `test_error_at_best_val_pct` (mean over the ok runs) with the
    chosen epochs per seed in `best_val_epochs`. `writeup_*`: the published best-on-test
    number (`paper.writeup_result`) as an error, its epoch and source, marked "selected on
    the test set"; null where none is published.
    """
    keep = [(m, s) for m, s in (expected_runs or ()) if not family_of(m).paper]
    if len(metrics):
        metrics = metrics[[not family_of(m).paper for m in metrics["model"]]]
    summary = run_summary(metrics, keep)
    last_epoch = (
        metrics.groupby(["model", "seed"])["epoch"].max()
        if len(metrics)
        else pd.Series(dtype="int64")
    )
    rows = []
    for model in sort_models(summary["model"]):
        runs = summary[summary["model"] == model]
        st = model_stats(runs)
        ok = runs[runs["status"] == "ok"]
        at_val = ok.dropna(subset=["best_val_epoch"])
        epochs = sorted({int(last_epoch.loc[(model, int(s))]) for s in ok["seed"]})
        w = paper.writeup_result(model)
        n = params.get(model)
        rows.append(
            {
                "model": model,
                "label": model_label(model),
                "params_millions": None if n is None else n / 1e6,
                "runs": st.runs,
                "seeds": st.seeds,
                "diverged": st.diverged,
                "missing": st.missing,
                "final_epoch": epochs[-1] if epochs else None,
                "final_test_error_pct": st.test_mean,
                "final_test_error_std_pct": st.test_std,
                "best_val_epochs": (
                    ", ".join(
                        f"{int(e)} (seed {int(s)})"
                        for s, e in zip(at_val["seed"], at_val["best_val_epoch"])
                    )
                    or None
                ),
                "test_error_at_best_val_pct": _mean(at_val["test_error_at_best_val_pct"]),
                "our_selection": OUR_SELECTION,
                "writeup_test_error_pct": None if w is None else w.test_error_pct,
                "writeup_best_epoch": None if w is None else w.best_epoch,
                "writeup_selection": None if w is None else w.selection,
                "writeup_source": None if w is None else w.source,
                "status": st.status,
                "note": st.note,
            }
        )
    return IMAGENET_STYLE.frame(rows)


# The columns of the markdown version (the CSV keeps all).
IMAGENET_STYLE_DISPLAY_COLUMNS = [
    "label",
    "params_millions",
    "seeds",
    "final_epoch",
    "final_test_error_pct",
    "test_error_at_best_val_pct",
    "best_val_epochs",
    "writeup_test_error_pct",
    "writeup_best_epoch",
    "writeup_selection",
    "status",
]


FAMILIES = columns(
    ("family", TEXT),
    ("model", TEXT),
    ("label", TEXT),
    ("params_millions", FLOAT),
    ("images_per_second", FLOAT),
    ("device", TEXT),
    ("schedule", TEXT),
    ("seeds", INT),
    ("final_test_error_pct", FLOAT),
    ("status", TEXT),
    ("note", TEXT),
)
FAMILIES_COLUMNS = FAMILIES.names


def families_table(
    metrics: pd.DataFrame,
    expected_runs: Sequence[tuple[str, int]] | None,
    params: Mapping[str, int],
    run_info: Mapping[tuple[str, int], Mapping[str, Any]],
) -> pd.DataFrame:
    """Both study families side by side, one row per model, FAMILIES_COLUMNS: parameters, the
    training images per second measured in the runs (median over the epochs of the ok runs,
    which leaves out the first epoch's start-up cost; the metrics' images_per_second), the
    device and schedule the runs report (`run_info[(model, seed)]` from run.json: keys
    "device", "schedule"), and the final test error (mean over ok runs). Each family trains
    with its own recipe; throughput is comparable only between rows with the same device."""
    summary = run_summary(metrics, expected_runs)
    rows = []
    for model in sort_models(summary["model"]):
        runs = summary[summary["model"] == model]
        st = model_stats(runs)
        ok_seeds = set(int(s) for s in runs.loc[runs["status"] == "ok", "seed"])
        m = (
            metrics[(metrics["model"] == model) & metrics["seed"].isin(ok_seeds)]
            if len(metrics)
            else metrics
        )
        ips = m["images_per_second"].dropna().astype(float) if len(m) else pd.Series(dtype=float)
        info = [run_info[(model, s)] for s in sorted(ok_seeds) if (model, s) in run_info]
        n = params.get(model)
        rows.append(
            {
                "family": family_of(model).table_name,
                "model": model,
                "label": model_label(model),
                "params_millions": None if n is None else n / 1e6,
                "images_per_second": float(ips.median()) if len(ips) else math.nan,
                "device": "; ".join(sorted({str(i.get("device")) for i in info})) or None,
                "schedule": "; ".join(sorted({str(i.get("schedule")) for i in info})) or None,
                "seeds": st.seeds,
                "final_test_error_pct": st.test_mean,
                "status": st.status,
                "note": st.note,
            }
        )
    return FAMILIES.frame(rows)


def schedule_text(train: Mapping[str, Any]) -> str:
    """A run's schedule in a few words, from its config's train section (run.json)."""
    length = (
        f"{train['epochs']} epochs"
        if train.get("epochs") is not None
        else f"{train.get('iterations')} iterations"
    )
    kind = train.get("schedule", "step")
    if kind == "step":
        marks = train.get("lr_milestones") or []
        kind = f"step at {', '.join(map(str, marks))}" if marks else "constant"
    return f"{kind}, {length}, lr {train.get('lr')}, wd {train.get('weight_decay')}"


def is_paper_model(model: str) -> bool:
    return family_of(model).paper
