"""Runs: one row per (model, seed) run from the metrics, the shared vocabulary of the tables,
and the order models are shown in. Pure functions, DataFrame in, DataFrame out.

The probes of trained nets (layer responses, lesions, paths, branch magnitudes) run torch and
live in the `probes` package (`layer_responses`, `lesions`, `paths`, `branches`).

No file I/O here: the command line (`cli/analysis.py`) reads the result files
(`results.read_all_metrics`, ...), calls these functions and writes what they return.

Vocabulary
----------
run
    one (model, seed) pair: one `metrics.parquet`.
run status
    "ok" when every metrics row of the run says "ok"; "diverged" when any row says "diverged";
    "missing" for an expected run (from the study config) that has no metrics rows at all.
model status (`table6`, `plain_vs_residual`)
    "ok"        every run of the model is ok (and there is at least one);
    "partial"   at least one run is ok, but some other run diverged or is missing: the
                statistics cover the ok runs only (see the `seeds` / `runs` columns and `note`);
    "diverged"  no run is ok and at least one run diverged (the others, if any, are missing);
    "missing"   no run of the model has metrics.
Diverged and missing runs never enter a mean, a std or a minimum; they are only counted.

"Final" errors are those of the row with the largest iteration of a run (the end of training).

run note (`runs` table)
    What a reader should know about an ok run that learned nothing. The status says what the
    recipe did (a plain net stuck near chance is one of the paper's findings, not an error);
    the note says what the numbers mean:
    "at chance"   the final training error is within AT_CHANCE_MARGIN_PCT points of chance
                  (CHANCE_ERROR_PCT: guessing one of 10 classes is wrong 90% of the time);
    "loss rose"   the last epoch's mean training loss is above both the first epoch's and
                  UNIFORM_GUESS_LOSS (ln 10, the loss of a uniform guess over 10 classes):
                  training made the net worse than guessing (a learning rate too high).
    Both, joined by "; ", each with its numbers; empty when neither holds.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from ..config import ALL_ARCHS, parse_model_name
from ..results import STATUSES, epoch_rows
from .columns import FLOAT, INT, TEXT, columns

RUN_KEYS = ["model", "seed"]
MISSING = "missing"

CLASSES = 10  # CIFAR-10
CHANCE_ERROR_PCT = 100.0 * (1 - 1 / CLASSES)  # 90%
AT_CHANCE_MARGIN_PCT = 5.0  # "at chance": final training error >= 85%
UNIFORM_GUESS_LOSS = math.log(CLASSES)  # 2.30: cross-entropy of a uniform guess


# --------------------------------------------------------------------------------------------
# helpers


def model_sort_key(model: str) -> tuple[int, int, str]:
    """Plain before residual, shallow before deep (the order of the paper's tables); the
    ImageNet-style family after the paper's nets."""
    arch, depth = parse_model_name(model)
    return ALL_ARCHS.index(arch), depth, model


def sort_models(models: Iterable[str]) -> list[str]:
    return sorted(set(models), key=model_sort_key)


def require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    """ValueError naming the `columns` that `df` (called `what` in the message) lacks."""
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"{what} lacks the columns {missing}; it has {list(df.columns)}")


def _sort_runs(df: pd.DataFrame) -> pd.DataFrame:
    if df.empty:
        return df.reset_index(drop=True)
    key = df["model"].map(model_sort_key)
    return (
        df.assign(_key=key)
        .sort_values(["_key", "seed"], kind="stable")
        .drop(columns="_key")
        .reset_index(drop=True)
    )


def nullable(value):
    """NaN / None / pd.NA -> None, numpy scalars -> Python scalars: a table cell as a
    Python value, null as None."""
    if value is None or value is pd.NA:
        return None
    if isinstance(value, (float, np.floating)) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return value.item()
    return value


# --------------------------------------------------------------------------------------------
# per-run tables


def final_rows(metrics: pd.DataFrame) -> pd.DataFrame:
    """The last row (largest iteration, then largest epoch) of each (model, seed) run.

    All metrics columns are kept; `status` is the status of the whole run: "diverged" when any
    row of the run says "diverged", else "ok". Sorted plain before resnet, by depth, by seed.
    Raises ValueError on a status other than those in `results.STATUSES`. Training-window
    rows (`kind` "window") are left out: a run ends with its last epoch row.
    """
    require(metrics, ["model", "seed", "epoch", "iteration", "status"], "metrics")
    metrics = epoch_rows(metrics)
    bad = sorted(set(metrics["status"].dropna().astype(str)) - set(STATUSES))
    if bad or metrics["status"].isna().any():
        raise ValueError(
            f"metrics hold the status values {bad or [None]}; allowed: {list(STATUSES)}"
        )
    if metrics.empty:
        return metrics.iloc[0:0].copy().reset_index(drop=True)
    df = metrics.sort_values(RUN_KEYS + ["iteration", "epoch"], kind="stable")
    last = df.groupby(RUN_KEYS, sort=False).tail(1).copy()
    diverged = (metrics["status"] == "diverged").groupby([metrics["model"], metrics["seed"]]).any()
    last["status"] = [
        ("diverged" if diverged.loc[(m, s)] else "ok") for m, s in zip(last["model"], last["seed"])
    ]
    return _sort_runs(last)


def _best_val(metrics: pd.DataFrame) -> pd.DataFrame:
    """Per run with any val error: the epoch of the lowest val error (ties: earliest epoch)
    and the test error at that epoch."""
    cols = RUN_KEYS + ["best_val_epoch", "test_error_at_best_val_pct"]
    if "val_error_pct" not in metrics.columns:
        return pd.DataFrame(columns=cols)
    v = metrics[metrics["val_error_pct"].notna()]
    if v.empty:
        return pd.DataFrame(columns=cols)
    v = v.sort_values(RUN_KEYS + ["epoch"], kind="stable")
    # idxmin returns the first occurrence of the minimum in this (epoch) order: ties -> earliest.
    idx = v.groupby(RUN_KEYS, sort=False)["val_error_pct"].idxmin()
    best = metrics.loc[idx.to_numpy(), RUN_KEYS + ["epoch", "test_error_pct"]]
    return best.rename(
        columns={"epoch": "best_val_epoch", "test_error_pct": "test_error_at_best_val_pct"}
    )


RUN_SUMMARY = columns(
    ("model", TEXT),
    ("arch", TEXT),
    ("depth", INT),
    ("seed", INT),
    ("status", TEXT),
    ("iterations", INT),
    ("final_train_error_pct", FLOAT),
    ("final_test_error_pct", FLOAT),
    ("best_val_epoch", INT),
    ("test_error_at_best_val_pct", FLOAT),
    ("note", TEXT),
)
RUN_SUMMARY_COLUMNS = RUN_SUMMARY.names


def run_note(final_train_error_pct, first_train_loss, final_train_loss) -> str:
    """The `note` of a run (module docstring: run note): "" for a run that learned."""
    notes = []
    if final_train_error_pct is not None and (
        final_train_error_pct >= CHANCE_ERROR_PCT - AT_CHANCE_MARGIN_PCT
    ):
        notes.append(
            f"at chance: final training error {final_train_error_pct:.1f}% "
            f"(chance {CHANCE_ERROR_PCT:.0f}%)"
        )
    if (
        first_train_loss is not None
        and final_train_loss is not None
        and final_train_loss > max(first_train_loss, UNIFORM_GUESS_LOSS)
    ):
        notes.append(
            f"loss rose: training loss {first_train_loss:.3g} in the first epoch, "
            f"{final_train_loss:.3g} in the last (a uniform guess: {UNIFORM_GUESS_LOSS:.2f})"
        )
    return "; ".join(notes)


def run_summary(
    metrics: pd.DataFrame, expected_runs: Sequence[tuple[str, int]] | None = None
) -> pd.DataFrame:
    """One row per run: every run in `metrics`, plus every run of `expected_runs` that has no
    metrics (status "missing", numbers null), so that no run is silently dropped.

    Columns: RUN_SUMMARY_COLUMNS. `best_val_epoch` / `test_error_at_best_val_pct` are the epoch
    with the lowest val error (ties: the earliest) and the test error of that epoch; null for a
    run without val errors (no validation split) and for missing runs. `note` marks a run
    that learned nothing (at chance, or its training loss rose: `run_note`); "" otherwise.
    """
    last = final_rows(metrics)
    best = _best_val(metrics).set_index(RUN_KEYS)
    first_loss = (
        metrics.sort_values(RUN_KEYS + ["iteration", "epoch"], kind="stable")
        .groupby(RUN_KEYS, sort=False)["train_loss"]
        .first()
        if len(metrics) and "train_loss" in metrics.columns
        else pd.Series(dtype="float64")
    )
    rows = []
    seen = set()
    for r in last.itertuples(index=False):
        key = (str(r.model), int(r.seed))
        seen.add(key)
        arch, depth = parse_model_name(key[0])
        b = best.loc[key] if key in best.index else None
        rows.append(
            {
                "model": key[0],
                "arch": arch,
                "depth": depth,
                "seed": key[1],
                "status": r.status,
                "iterations": int(r.iteration),
                "final_train_error_pct": nullable(r.train_error_pct),
                "final_test_error_pct": nullable(r.test_error_pct),
                "best_val_epoch": None if b is None else int(b["best_val_epoch"]),
                "test_error_at_best_val_pct": (
                    None if b is None else nullable(b["test_error_at_best_val_pct"])
                ),
                "note": run_note(
                    nullable(r.train_error_pct),
                    nullable(first_loss.get(key)),
                    nullable(getattr(r, "train_loss", None)),
                ),
            }
        )
    for model, seed in expected_runs or ():
        key = (str(model), int(seed))
        if key in seen:
            continue
        seen.add(key)
        arch, depth = parse_model_name(key[0])
        rows.append(
            {
                "model": key[0],
                "arch": arch,
                "depth": depth,
                "seed": key[1],
                "status": MISSING,
                "note": "",
            }
        )
    return _sort_runs(RUN_SUMMARY.frame(rows))
