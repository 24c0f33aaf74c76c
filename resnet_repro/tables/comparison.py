"""Model-level tables: Table 6 (our test error per model next to the paper's) and plain vs
residual per depth; each model's status and statistics over its ok runs. Pure functions,
DataFrame in, DataFrame out (vocabulary in `runs`).

Seed statistics, so that a reader can tell whether a number can be trusted (the
distributions come from scipy.stats):

- two or more seeds: the 95% confidence interval of the mean test error over the seeds
  (Student's t with seeds - 1 degrees of freedom), and whether the paper's number lies in
  it; per depth, the 95% interval of the plain - residual gap (Welch's t, unequal variances);
- one seed: the binomial standard error of a test error measured on N test images,
  sqrt(p (1 - p) / N) (0.27 points at 8% on 10,000 images), and the binomial (Wilson) 95%
  interval of that one run's error. It covers the sampling of the test images only, not the
  spread between seeds (which is larger: one public ResNet-56 reproduction's six runs
  spanned 6.89-8.42%), so it is the least a single-run difference must exceed.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
from scipy import stats

from ..nets.families import PAPER_ARCHS, parse_model_name
from . import paper
from .columns import BOOL, FLOAT, INT, TEXT, columns
from .runs import MISSING, nullable, run_summary, sort_models

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


@dataclass(frozen=True)
class ModelStats:
    """One model's runs: counts, the model status (module docstring of `runs`), the note
    naming the seeds of its diverged and missing runs, and its final errors over the ok runs
    only (NaN without an ok run; `test_std` NaN with fewer than two)."""

    runs: int
    seeds: int  # ok runs
    diverged: int
    missing: int
    status: str
    note: str
    test_mean: float
    test_std: float
    test_min: float
    train_mean: float
    test_values: tuple[float, ...]  # final test error of each ok run
    train_values: tuple[float, ...]


def model_stats(runs: pd.DataFrame) -> ModelStats:
    """`ModelStats` of one model from its rows of `runs.run_summary`."""
    ok = runs[runs["status"] == "ok"]
    n_ok = len(ok)
    n_div = int((runs["status"] == "diverged").sum())
    n_miss = int((runs["status"] == MISSING).sum())
    test = ok["final_test_error_pct"].astype(float)
    train = ok["final_train_error_pct"].astype(float)
    return ModelStats(
        runs=len(runs),
        seeds=n_ok,
        diverged=n_div,
        missing=n_miss,
        status=model_status(n_ok, n_div, n_miss),
        note=_runs_note(runs),
        test_mean=test.mean() if n_ok else math.nan,
        test_std=test.std(ddof=1) if n_ok > 1 else math.nan,
        test_min=test.min() if n_ok else math.nan,
        train_mean=train.mean() if n_ok else math.nan,
        test_values=tuple(test.tolist()),
        train_values=tuple(train.tolist()),
    )


CONFIDENCE = 0.95


def t_interval(values: Sequence[float], confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The confidence interval of the mean of `values` (Student's t, n - 1 degrees of
    freedom); (nan, nan) with fewer than two values."""
    v = np.asarray(values, dtype=float)
    if len(v) < 2:
        return math.nan, math.nan
    sem = stats.sem(v)
    if sem == 0:
        return float(v.mean()), float(v.mean())
    low, high = stats.t.interval(confidence, len(v) - 1, loc=v.mean(), scale=sem)
    return float(low), float(high)


def binomial_se_pct(error_pct: float, images: int | None) -> float:
    """Standard error (percentage points) of a test error of `error_pct` measured on `images`
    test images, each right or wrong: the binomial sqrt(p (1 - p) / N)."""
    if images is None or images <= 0 or not math.isfinite(error_pct):
        return math.nan
    p = min(max(error_pct / 100.0, 0.0), 1.0)
    return 100.0 * float(stats.binom.std(images, p)) / images


def binomial_interval(
    error_pct: float, images: int | None, confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The binomial (Wilson score) confidence interval, in %, of one run's test error of
    `error_pct` on `images` test images."""
    if images is None or images <= 0 or not math.isfinite(error_pct):
        return math.nan, math.nan
    wrong = int(round(error_pct / 100.0 * images))
    ci = stats.binomtest(wrong, images).proportion_ci(confidence, method="wilson")
    return 100.0 * float(ci.low), 100.0 * float(ci.high)


def welch_interval(
    a: Sequence[float], b: Sequence[float], confidence: float = CONFIDENCE
) -> tuple[float, float]:
    """The confidence interval of mean(a) - mean(b) by Welch's t (unequal variances); (nan,
    nan) unless both sides have at least two values."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if len(a) < 2 or len(b) < 2:
        return math.nan, math.nan
    if a.std() == 0 and b.std() == 0:  # no spread at all: the interval is the gap itself
        gap = float(a.mean() - b.mean())
        return gap, gap
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)
        ci = stats.ttest_ind(a, b, equal_var=False).confidence_interval(confidence)
    return float(ci.low), float(ci.high)


# Table 6's columns and their dtypes (`table6` says what each holds).
TABLE6 = columns(
    ("model", TEXT),
    ("arch", TEXT),
    ("depth", INT),
    ("params_millions", FLOAT),
    ("paper_params_millions", FLOAT),
    ("runs", INT),
    ("seeds", INT),
    ("diverged", INT),
    ("missing", INT),
    ("test_images", INT),
    ("test_error_mean_pct", FLOAT),
    ("test_error_std_pct", FLOAT),
    ("test_error_min_pct", FLOAT),
    ("ci95_low_pct", FLOAT),
    ("ci95_high_pct", FLOAT),
    ("ci95_method", TEXT),
    ("binomial_se_pct", FLOAT),
    ("paper_test_error_pct", FLOAT),
    ("paper_mean_error_pct", FLOAT),
    ("paper_std_error_pct", FLOAT),
    ("paper_runs", INT),
    ("paper_reference_pct", FLOAT),
    ("diff_pct", FLOAT),
    ("paper_in_ci95", BOOL),
    ("within_tolerance", BOOL),
    ("status", TEXT),
    ("note", TEXT),
)
TABLE6_COLUMNS = TABLE6.names


# A narrower selection of TABLE6_COLUMNS for a readable markdown table.
TABLE6_DISPLAY_COLUMNS = [
    "model",
    "params_millions",
    "seeds",
    "runs",
    "test_error_mean_pct",
    "test_error_std_pct",
    "ci95_low_pct",
    "ci95_high_pct",
    "ci95_method",
    "binomial_se_pct",
    "paper_reference_pct",
    "diff_pct",
    "paper_in_ci95",
    "within_tolerance",
    "status",
    "note",
]

CI_T = "t, seeds"  # Student's t interval of the mean over the seeds
CI_BINOMIAL = "binomial, 1 run"  # test-image sampling of one run only


def table6(
    metrics: pd.DataFrame,
    expected_runs: Sequence[tuple[str, int]] | None,
    params: dict[str, int],
    tolerance_pct: float,
    test_images: Mapping[str, int] | None = None,
) -> pd.DataFrame:
    """Our Table 6: one row per model (plain before resnet, by depth), columns TABLE6_COLUMNS.

    - `params_millions`: `params[model] / 1e6` (the caller counts our model's parameters);
      null for a model absent from `params`. `paper_params_millions`: the paper's count for
      the depth (plain twins have the same count as their ResNet).
    - `runs`: runs of the model (expected runs plus any others found in `metrics`); `seeds`:
      ok runs; `diverged` / `missing`: counts; `note` names their seeds.
    - `test_error_*_pct`: mean, sample std (ddof=1; NaN with fewer than two ok runs) and minimum
      of the final test error over the ok runs only.
    - `test_images`: the size of the test set the model's runs were tested on
      (`test_images[model]`, from the runs' run.json), null where unknown.
    - `ci95_low_pct` / `ci95_high_pct`, `ci95_method`: with two or more ok runs, the 95%
      confidence interval of the mean over the seeds (Student's t, "t, seeds"); with one,
      the binomial (Wilson) 95% interval of that run's error on `test_images` images
      ("binomial, 1 run": test-image sampling only, narrower than the spread between seeds).
    - `binomial_se_pct`: the binomial standard error of a test error of our mean on
      `test_images` images, the noise of any single run's number.
    - `paper_test_error_pct`: the Table 6 number (`paper.paper_error`), null for plain nets;
      `paper_mean_error_pct` / `paper_std_error_pct` / `paper_runs` where the paper gives them
      (ResNet-110, whose Table 6 number is the best of 5 runs).
    - `paper_reference_pct`: what our mean is compared with: the paper's mean where it gives
      one (ResNet-110: mean against mean, not against its best run), else the Table 6 number.
      `diff_pct` = our mean - paper_reference_pct (positive: our error is higher).
      `within_tolerance` = |diff_pct| <= tolerance_pct; `paper_in_ci95` whether the reference
      lies in [ci95_low_pct, ci95_high_pct]; both null without a paper number or without an
      ok run.
    - `status`: the model status (module docstring).
    """
    summary = run_summary(metrics, expected_runs)
    ref = paper.table6().set_index("model")
    rows = []
    for model in sort_models(summary["model"]):
        arch, depth = parse_model_name(model)
        st = model_stats(summary[summary["model"] == model])
        paper_err = paper.paper_error(model)
        p_mean = p_std = p_runs = None
        if model in ref.index:
            p_mean = nullable(ref.at[model, "mean_error_pct"])
            p_std = nullable(ref.at[model, "std_error_pct"])
            p_runs = nullable(ref.at[model, "runs"])
        reference = p_mean if p_mean is not None else paper_err
        n_test = (test_images or {}).get(model)
        if st.seeds >= 2:
            low, high = t_interval(st.test_values)
            method = CI_T
        elif st.seeds == 1:
            low, high = binomial_interval(float(st.test_mean), n_test)
            method = CI_BINOMIAL if math.isfinite(low) else None
        else:
            low = high = math.nan
            method = None
        diff = within = inside = None
        if reference is not None and st.seeds > 0:
            diff = float(st.test_mean) - reference
            within = bool(abs(diff) <= tolerance_pct + 1e-9)
            if math.isfinite(low):
                inside = bool(low - 1e-9 <= reference <= high + 1e-9)
        n_params = params.get(model)
        rows.append(
            {
                "model": model,
                "arch": arch,
                "depth": depth,
                "params_millions": None if n_params is None else n_params / 1e6,
                "paper_params_millions": paper.paper_params_millions(depth),
                "runs": st.runs,
                "seeds": st.seeds,
                "diverged": st.diverged,
                "missing": st.missing,
                "test_images": n_test,
                "test_error_mean_pct": st.test_mean,
                "test_error_std_pct": st.test_std,
                "test_error_min_pct": st.test_min,
                "ci95_low_pct": low,
                "ci95_high_pct": high,
                "ci95_method": method,
                "binomial_se_pct": binomial_se_pct(float(st.test_mean), n_test),
                "paper_test_error_pct": paper_err,
                "paper_mean_error_pct": p_mean,
                "paper_std_error_pct": p_std,
                "paper_runs": None if p_runs is None else int(p_runs),
                "paper_reference_pct": reference,
                "diff_pct": diff,
                "paper_in_ci95": inside,
                "within_tolerance": within,
                "status": st.status,
                "note": st.note,
            }
        )
    return TABLE6.frame(rows)


PLAIN_VS_RESIDUAL = columns(
    ("depth", INT),
    ("plain_status", TEXT),
    ("resnet_status", TEXT),
    ("plain_seeds", INT),
    ("resnet_seeds", INT),
    ("plain_train_error_pct", FLOAT),
    ("resnet_train_error_pct", FLOAT),
    ("train_gap_pct", FLOAT),
    ("train_gap_ci95_low_pct", FLOAT),
    ("train_gap_ci95_high_pct", FLOAT),
    ("plain_test_error_pct", FLOAT),
    ("resnet_test_error_pct", FLOAT),
    ("test_gap_pct", FLOAT),
    ("test_gap_ci95_low_pct", FLOAT),
    ("test_gap_ci95_high_pct", FLOAT),
)
PLAIN_VS_RESIDUAL_COLUMNS = PLAIN_VS_RESIDUAL.names


def plain_vs_residual(
    metrics: pd.DataFrame, expected_runs: Sequence[tuple[str, int]] | None = None
) -> pd.DataFrame:
    """The degradation problem in numbers: one row per depth, columns PLAIN_VS_RESIDUAL_COLUMNS.

    Errors are final errors averaged over the ok runs of each model; gaps are plain - resnet
    (positive: the plain net is worse). `*_gap_ci95_*`: the 95% confidence interval of the gap
    by Welch's t (unequal variances), where both nets have at least two ok runs; null
    otherwise. A model with runs but none ok has a status and null errors; a model that is
    neither expected nor in `metrics` has null status and seeds.
    """
    summary = run_summary(metrics, expected_runs)
    rows = []
    for depth in sorted(set(int(d) for d in summary["depth"])):
        row: dict = {"depth": depth}
        values: dict[str, ModelStats | None] = {}
        for arch in PAPER_ARCHS:  # the paper's twins: plain, then residual
            runs = summary[(summary["arch"] == arch) & (summary["depth"] == depth)]
            # no run of this net, expected or found: null status and seeds, NaN errors
            st = None if runs.empty else model_stats(runs)
            values[arch] = st
            row[f"{arch}_status"] = None if st is None else st.status
            row[f"{arch}_seeds"] = None if st is None else st.seeds
            row[f"{arch}_train_error_pct"] = math.nan if st is None else st.train_mean
            row[f"{arch}_test_error_pct"] = math.nan if st is None else st.test_mean
        row["train_gap_pct"] = row["plain_train_error_pct"] - row["resnet_train_error_pct"]
        row["test_gap_pct"] = row["plain_test_error_pct"] - row["resnet_test_error_pct"]
        plain, resnet = (values[arch] for arch in PAPER_ARCHS)
        for what in ("train", "test"):
            low, high = welch_interval(
                () if plain is None else getattr(plain, f"{what}_values"),
                () if resnet is None else getattr(resnet, f"{what}_values"),
            )
            row[f"{what}_gap_ci95_low_pct"], row[f"{what}_gap_ci95_high_pct"] = low, high
        rows.append(row)
    return PLAIN_VS_RESIDUAL.frame(rows)


# --------------------------------------------------------------------------------------------
