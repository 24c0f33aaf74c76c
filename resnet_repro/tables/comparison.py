"""Model-level tables: Table 6 (our test error per model next to the paper's) and plain vs
residual per depth; each model's status and statistics over its ok runs. Pure functions,
DataFrame in, DataFrame out (vocabulary in `runs`)."""

from __future__ import annotations

import math
from collections.abc import Sequence

import pandas as pd

from ..config import parse_model_name
from . import paper
from .runs import MISSING, _nullable, run_summary, sort_models

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
