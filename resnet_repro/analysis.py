"""Tables: pure functions, DataFrame in, DataFrame out.

The probes of trained nets (layer responses, lesions, paths, branch magnitudes) run torch and
live in the `probes` package (`layer_responses`, `lesions`, `paths`, `branches`).

No file I/O here: `cli.py` reads the result files (`results.read_all_metrics`, ...), calls these
functions and writes what they return.

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
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd

from . import paper
from .config import ALL_ARCHS, parse_model_name
from .results import STATUSES

RUN_KEYS = ["model", "seed"]
MISSING = "missing"


# --------------------------------------------------------------------------------------------
# helpers


def model_sort_key(model: str) -> tuple[int, int, str]:
    """Plain before residual, shallow before deep (the order of the paper's tables); the
    ImageNet-style family after the paper's nets."""
    arch, depth = parse_model_name(model)
    return ALL_ARCHS.index(arch), depth, model


def sort_models(models: Iterable[str]) -> list[str]:
    return sorted(set(models), key=model_sort_key)


def _require(df: pd.DataFrame, columns: Sequence[str], what: str) -> None:
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


def _nullable(value):
    """NaN / None / pd.NA -> None, numpy scalars -> Python scalars."""
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
    Raises ValueError on a status other than those in `results.STATUSES`.
    """
    _require(metrics, ["model", "seed", "epoch", "iteration", "status"], "metrics")
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


RUN_SUMMARY_COLUMNS = [
    "model",
    "arch",
    "depth",
    "seed",
    "status",
    "iterations",
    "final_train_error_pct",
    "final_test_error_pct",
    "best_val_epoch",
    "test_error_at_best_val_pct",
]


def run_summary(
    metrics: pd.DataFrame, expected_runs: Sequence[tuple[str, int]] | None = None
) -> pd.DataFrame:
    """One row per run: every run in `metrics`, plus every run of `expected_runs` that has no
    metrics (status "missing", numbers null), so that no run is silently dropped.

    Columns: RUN_SUMMARY_COLUMNS. `best_val_epoch` / `test_error_at_best_val_pct` are the epoch
    with the lowest val error (ties: the earliest) and the test error of that epoch; null for a
    run without val errors (no validation split) and for missing runs.
    """
    last = final_rows(metrics)
    best = _best_val(metrics).set_index(RUN_KEYS)
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
                "final_train_error_pct": _nullable(r.train_error_pct),
                "final_test_error_pct": _nullable(r.test_error_pct),
                "best_val_epoch": None if b is None else int(b["best_val_epoch"]),
                "test_error_at_best_val_pct": (
                    None if b is None else _nullable(b["test_error_at_best_val_pct"])
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
            {"model": key[0], "arch": arch, "depth": depth, "seed": key[1], "status": MISSING}
        )
    out = pd.DataFrame(rows, columns=RUN_SUMMARY_COLUMNS)
    out = out.astype(
        {
            "model": "object",
            "arch": "object",
            "status": "object",
            "depth": "Int64",
            "seed": "Int64",
            "iterations": "Int64",
            "best_val_epoch": "Int64",
            "final_train_error_pct": "float64",
            "final_test_error_pct": "float64",
            "test_error_at_best_val_pct": "float64",
        }
    )
    return _sort_runs(out)


# --------------------------------------------------------------------------------------------
# per-model tables


def model_status(n_ok: int, n_diverged: int, n_missing: int) -> str:
    """The model status from its run counts (see the module docstring)."""
    if n_ok == 0:
        return "diverged" if n_diverged else MISSING
    return "ok" if n_diverged == 0 and n_missing == 0 else "partial"


def _runs_note(runs: pd.DataFrame) -> str:
    parts = []
    for status in ("diverged", MISSING):
        seeds = sorted(int(s) for s in runs.loc[runs["status"] == status, "seed"])
        if seeds:
            word = "seed" if len(seeds) == 1 else "seeds"
            parts.append(f"{status}: {word} {', '.join(map(str, seeds))}")
    return "; ".join(parts)


def _model_stats(runs: pd.DataFrame) -> dict:
    """Counts, status and final-error statistics over the ok runs of one model."""
    ok = runs[runs["status"] == "ok"]
    n_ok = len(ok)
    n_div = int((runs["status"] == "diverged").sum())
    n_miss = int((runs["status"] == MISSING).sum())
    test = ok["final_test_error_pct"].astype(float)
    train = ok["final_train_error_pct"].astype(float)
    return {
        "runs": len(runs),
        "seeds": n_ok,
        "diverged": n_div,
        "missing": n_miss,
        "status": model_status(n_ok, n_div, n_miss),
        "note": _runs_note(runs),
        "test_mean": test.mean() if n_ok else math.nan,
        "test_std": test.std(ddof=1) if n_ok > 1 else math.nan,
        "test_min": test.min() if n_ok else math.nan,
        "train_mean": train.mean() if n_ok else math.nan,
    }


TABLE6_COLUMNS = [
    "model",
    "arch",
    "depth",
    "params_millions",
    "paper_params_millions",
    "runs",
    "seeds",
    "diverged",
    "missing",
    "test_error_mean_pct",
    "test_error_std_pct",
    "test_error_min_pct",
    "paper_test_error_pct",
    "paper_mean_error_pct",
    "paper_std_error_pct",
    "paper_runs",
    "paper_reference_pct",
    "diff_pct",
    "within_tolerance",
    "status",
    "note",
]


# A narrower selection of TABLE6_COLUMNS for a readable markdown table.
TABLE6_DISPLAY_COLUMNS = [
    "model",
    "params_millions",
    "seeds",
    "runs",
    "test_error_mean_pct",
    "test_error_std_pct",
    "test_error_min_pct",
    "paper_test_error_pct",
    "paper_reference_pct",
    "diff_pct",
    "within_tolerance",
    "status",
    "note",
]


def table6(
    metrics: pd.DataFrame,
    expected_runs: Sequence[tuple[str, int]] | None,
    params: dict[str, int],
    tolerance_pct: float,
) -> pd.DataFrame:
    """Our Table 6: one row per model (plain before resnet, by depth), columns TABLE6_COLUMNS.

    - `params_millions`: `params[model] / 1e6` (the caller counts our model's parameters);
      null for a model absent from `params`. `paper_params_millions`: the paper's count for
      the depth (plain twins have the same count as their ResNet).
    - `runs`: runs of the model (expected runs plus any others found in `metrics`); `seeds`:
      ok runs; `diverged` / `missing`: counts; `note` names their seeds.
    - `test_error_*_pct`: mean, sample std (ddof=1; NaN with fewer than two ok runs) and minimum
      of the final test error over the ok runs only.
    - `paper_test_error_pct`: the Table 6 number (`paper.paper_error`), null for plain nets;
      `paper_mean_error_pct` / `paper_std_error_pct` / `paper_runs` where the paper gives them
      (ResNet-110, whose Table 6 number is the best of 5 runs).
    - `paper_reference_pct`: what our mean is compared with: the paper's mean where it gives
      one (ResNet-110: mean against mean, not against its best run), else the Table 6 number.
      `diff_pct` = our mean - paper_reference_pct (positive: our error is higher).
      `within_tolerance` = |diff_pct| <= tolerance_pct; null without a paper number or
      without an ok run.
    - `status`: the model status (module docstring).
    """
    summary = run_summary(metrics, expected_runs)
    ref = paper.table6().set_index("model")
    rows = []
    for model in sort_models(summary["model"]):
        arch, depth = parse_model_name(model)
        st = _model_stats(summary[summary["model"] == model])
        paper_err = paper.paper_error(model)
        p_mean = p_std = p_runs = None
        if model in ref.index:
            p_mean = _nullable(ref.at[model, "mean_error_pct"])
            p_std = _nullable(ref.at[model, "std_error_pct"])
            p_runs = _nullable(ref.at[model, "runs"])
        reference = p_mean if p_mean is not None else paper_err
        diff = within = None
        if reference is not None and st["seeds"] > 0:
            diff = float(st["test_mean"]) - reference
            within = bool(abs(diff) <= tolerance_pct + 1e-9)
        n_params = params.get(model)
        rows.append(
            {
                "model": model,
                "arch": arch,
                "depth": depth,
                "params_millions": None if n_params is None else n_params / 1e6,
                "paper_params_millions": paper.paper_params_millions(depth),
                "runs": st["runs"],
                "seeds": st["seeds"],
                "diverged": st["diverged"],
                "missing": st["missing"],
                "test_error_mean_pct": st["test_mean"],
                "test_error_std_pct": st["test_std"],
                "test_error_min_pct": st["test_min"],
                "paper_test_error_pct": paper_err,
                "paper_mean_error_pct": p_mean,
                "paper_std_error_pct": p_std,
                "paper_runs": None if p_runs is None else int(p_runs),
                "paper_reference_pct": reference,
                "diff_pct": diff,
                "within_tolerance": within,
                "status": st["status"],
                "note": st["note"],
            }
        )
    out = pd.DataFrame(rows, columns=TABLE6_COLUMNS)
    floats = [
        "params_millions",
        "paper_params_millions",
        "test_error_mean_pct",
        "test_error_std_pct",
        "test_error_min_pct",
        "paper_test_error_pct",
        "paper_mean_error_pct",
        "paper_std_error_pct",
        "paper_reference_pct",
        "diff_pct",
    ]
    ints = ["depth", "runs", "seeds", "diverged", "missing", "paper_runs"]
    return out.astype(
        {
            **{c: "float64" for c in floats},
            **{c: "Int64" for c in ints},
            "within_tolerance": "boolean",
            "model": "object",
            "arch": "object",
            "status": "object",
            "note": "object",
        }
    )


PLAIN_VS_RESIDUAL_COLUMNS = [
    "depth",
    "plain_status",
    "resnet_status",
    "plain_seeds",
    "resnet_seeds",
    "plain_train_error_pct",
    "resnet_train_error_pct",
    "train_gap_pct",
    "plain_test_error_pct",
    "resnet_test_error_pct",
    "test_gap_pct",
]


def plain_vs_residual(
    metrics: pd.DataFrame, expected_runs: Sequence[tuple[str, int]] | None = None
) -> pd.DataFrame:
    """The degradation problem in numbers: one row per depth, columns PLAIN_VS_RESIDUAL_COLUMNS.

    Errors are final errors averaged over the ok runs of each model; gaps are plain - resnet
    (positive: the plain net is worse). A model with runs but none ok has a status and null
    errors; a model that is neither expected nor in `metrics` has null status and seeds.
    """
    summary = run_summary(metrics, expected_runs)
    rows = []
    for depth in sorted(set(int(d) for d in summary["depth"])):
        row: dict = {"depth": depth}
        for arch in ("plain", "resnet"):
            runs = summary[(summary["arch"] == arch) & (summary["depth"] == depth)]
            if runs.empty:
                st = {"status": None, "seeds": None, "train_mean": math.nan, "test_mean": math.nan}
            else:
                st = _model_stats(runs)
            row[f"{arch}_status"] = st["status"]
            row[f"{arch}_seeds"] = st["seeds"]
            row[f"{arch}_train_error_pct"] = st["train_mean"]
            row[f"{arch}_test_error_pct"] = st["test_mean"]
        row["train_gap_pct"] = row["plain_train_error_pct"] - row["resnet_train_error_pct"]
        row["test_gap_pct"] = row["plain_test_error_pct"] - row["resnet_test_error_pct"]
        rows.append(row)
    out = pd.DataFrame(rows, columns=PLAIN_VS_RESIDUAL_COLUMNS)
    return out.astype(
        {
            "depth": "Int64",
            "plain_seeds": "Int64",
            "resnet_seeds": "Int64",
            "plain_status": "object",
            "resnet_status": "object",
            **{c: "float64" for c in PLAIN_VS_RESIDUAL_COLUMNS if c.endswith("_pct")},
        }
    )


# --------------------------------------------------------------------------------------------
# layer responses (Figure 7); the torch probe itself is in probes/layer_responses.py


def sorted_layer_std(layer_std: pd.DataFrame) -> pd.DataFrame:
    """Add `rank` (1 = largest std; ties: network order) within each model (and seed, when a
    `seed` column is present), for Figure 7's bottom panel. Rows come back sorted by model,
    seed, rank."""
    _require(layer_std, ["layer", "std"], "layer_std")
    keys = [c for c in RUN_KEYS if c in layer_std.columns]
    df = layer_std.sort_values(
        keys + ["std", "layer"], ascending=[True] * len(keys) + [False, True], kind="stable"
    )
    if keys:
        df = df.assign(rank=df.groupby(keys, sort=False).cumcount() + 1)
    else:
        df = df.assign(rank=np.arange(1, len(df) + 1))
    return df.reset_index(drop=True)
