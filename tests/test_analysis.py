"""runs.py: run and model tables on hand-made metrics, and the sorted layer-std table."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from resnet_repro.config import parse_model_name
from resnet_repro.figures import paper_figures
from resnet_repro.results import METRICS_SCHEMA, read_metrics, write_metrics
from resnet_repro.tables import columns, comparison, families, paper, runs
from resnet_repro.tables import text as table_text

ITERS_PER_EPOCH = 100


def make_run(
    model: str,
    seed: int,
    test_errors,
    train_errors=None,
    val_errors=None,
    diverged_from_epoch: int | None = None,
) -> pd.DataFrame:
    """Synthetic metrics of one run with every METRICS_SCHEMA column: one row per epoch,
    epoch e (1-based) at iteration e * ITERS_PER_EPOCH; rows from `diverged_from_epoch` on have
    status "diverged"."""
    arch, depth = parse_model_name(model)
    n = len(test_errors)
    train_errors = (
        list(train_errors) if train_errors is not None else [e - 2.0 for e in test_errors]
    )
    val_errors = list(val_errors) if val_errors is not None else [None] * n
    rows = []
    for i in range(n):
        epoch = i + 1
        diverged = diverged_from_epoch is not None and epoch >= diverged_from_epoch
        rows.append(
            {
                "model": model,
                "arch": arch,
                "depth": depth,
                "shortcut": "A",
                "seed": seed,
                "epoch": epoch,
                "iteration": epoch * ITERS_PER_EPOCH,
                "lr": 0.1,
                "train_loss": 1.0 / epoch,
                "train_error_pct": train_errors[i],
                "val_loss": None if val_errors[i] is None else 0.5,
                "val_error_pct": val_errors[i],
                "test_loss": 0.6,
                "test_error_pct": test_errors[i],
                "epoch_seconds": 1.5,
                "images_per_second": 1000.0,
                "status": "diverged" if diverged else "ok",
            }
        )
    return pd.DataFrame(rows, columns=METRICS_SCHEMA.names)


def make_metrics(*runs: pd.DataFrame) -> pd.DataFrame:
    df = pd.concat(runs, ignore_index=True)
    return df.astype({"val_loss": "float64", "val_error_pct": "float64"})


def perr(model: str) -> float:
    value = paper.paper_error(model)
    assert value is not None
    return value


def row(df: pd.DataFrame, **where) -> pd.Series:
    mask = np.ones(len(df), dtype=bool)
    for k, v in where.items():
        mask &= (df[k] == v).to_numpy()
    sub = df[mask]
    assert len(sub) == 1, f"{where}: {len(sub)} rows"
    return sub.iloc[0]


# --------------------------------------------------------------------------------------------
# helper contract


def test_synthetic_metrics_match_the_schema_and_survive_parquet(tmp_path):
    m = make_metrics(
        make_run("plain20", 0, [30.0, 20.0], val_errors=[31.0, 21.0]),
        make_run("resnet20", 0, [25.0, 15.0]),
    )
    assert list(m.columns) == METRICS_SCHEMA.names
    write_metrics(m, tmp_path / "m.parquet")
    back = read_metrics(tmp_path / "m.parquet")
    summary = runs.run_summary(back)
    assert list(summary["model"]) == ["plain20", "resnet20"]
    assert list(summary["final_test_error_pct"]) == [20.0, 15.0]


# --------------------------------------------------------------------------------------------
# final_rows / run_summary


def test_final_rows_takes_the_row_with_the_largest_iteration_whatever_the_row_order():
    m = make_metrics(
        make_run("resnet20", 1, [50.0, 30.0, 12.0]),
        make_run("resnet20", 0, [40.0, 20.0, 10.0, 9.0]),
    )
    shuffled = m.sample(frac=1.0, random_state=3).reset_index(drop=True)
    last = runs.final_rows(shuffled)
    assert list(zip(last["model"], last["seed"])) == [("resnet20", 0), ("resnet20", 1)]
    assert list(last["iteration"]) == [4 * ITERS_PER_EPOCH, 3 * ITERS_PER_EPOCH]
    assert list(last["test_error_pct"]) == [9.0, 12.0]
    assert list(last["status"]) == ["ok", "ok"]


def test_final_rows_marks_a_run_diverged_when_any_row_diverged():
    # the last row says "ok" (say, a resumed run) but an earlier one diverged
    run = make_run("plain56", 0, [50.0, 90.0, 90.0])
    run.loc[1, "status"] = "diverged"
    last = runs.final_rows(run)
    assert last["status"].tolist() == ["diverged"]


def test_final_rows_rejects_an_unknown_status():
    run = make_run("plain20", 0, [50.0])
    run["status"] = "exploded"
    with pytest.raises(ValueError, match="exploded"):
        runs.final_rows(run)


def test_run_summary_reports_final_errors_iterations_and_a_missing_expected_run():
    m = make_metrics(make_run("resnet56", 0, [40.0, 8.0], train_errors=[35.0, 1.5]))
    s = runs.run_summary(m, expected_runs=[("resnet56", 0), ("resnet56", 1)])
    assert list(s.columns) == runs.RUN_SUMMARY_COLUMNS
    assert len(s) == 2
    ok = row(s, seed=0)
    assert ok["status"] == "ok"
    assert ok["iterations"] == 2 * ITERS_PER_EPOCH
    assert ok["final_train_error_pct"] == 1.5
    assert ok["final_test_error_pct"] == 8.0
    assert (ok["arch"], ok["depth"]) == ("resnet", 56)
    missing = row(s, seed=1)
    assert missing["status"] == "missing"
    assert (missing["arch"], missing["depth"]) == ("resnet", 56)
    assert pd.isna(missing["final_test_error_pct"]) and pd.isna(missing["iterations"])


def test_run_summary_keeps_runs_that_were_not_expected():
    m = make_metrics(make_run("plain20", 7, [20.0]))
    s = runs.run_summary(m, expected_runs=[("plain20", 0)])
    assert sorted(zip(s["seed"], s["status"])) == [(0, "missing"), (7, "ok")]


def test_runs_that_learned_nothing_keep_their_status_and_get_a_note():
    """lr 10 on a plain net: the loss climbs from 4.9 to 66 and the net ends at chance. The
    status still says what the recipe did (ok: no loss was non-finite); the note says that
    the numbers mean nothing was learned."""
    blew_up = make_run("plain20", 0, [90.0, 90.0, 90.0], train_errors=[89.0, 90.5, 90.1])
    blew_up["train_loss"] = [4.9, 30.0, 66.0]
    stuck = make_run("plain56", 0, [88.0, 87.0], train_errors=[89.0, 86.0])  # loss falls
    learned = make_run("resnet20", 0, [40.0, 10.0], train_errors=[45.0, 8.0])
    s = runs.run_summary(make_metrics(blew_up, stuck, learned), [("resnet56", 0)])
    assert set(s["status"]) == {"ok", "missing"}
    note = row(s, model="plain20")["note"]
    assert note.startswith("at chance: final training error 90.1%")
    assert "loss rose: training loss 4.9 in the first epoch, 66 in the last" in note
    assert row(s, model="plain56")["note"] == "at chance: final training error 86.0% (chance 90%)"
    assert row(s, model="resnet20")["note"] == "" and row(s, model="resnet56")["note"] == ""
    # A loss that rose but stays below a uniform guess's (ln 10) is no alarm, nor is one
    # that rose from a high start to below it.
    assert runs.run_note(20.0, 0.5, 0.9) == ""
    assert runs.run_note(20.0, 3.0, 2.0) == ""
    assert runs.run_note(20.0, 2.0, 2.5).startswith("loss rose")


def test_best_val_epoch_is_the_lowest_val_error_and_ties_go_to_the_earliest_epoch():
    m = make_metrics(
        make_run(
            "resnet20", 0, test_errors=[30.0, 11.0, 12.0, 10.0], val_errors=[31.0, 9.5, 9.5, 9.8]
        )
    )
    s = runs.run_summary(m)
    r = row(s, seed=0)
    assert r["best_val_epoch"] == 2
    assert r["test_error_at_best_val_pct"] == 11.0
    assert r["final_test_error_pct"] == 10.0


def test_best_val_fields_are_null_without_a_validation_split():
    m = make_metrics(make_run("resnet20", 0, [30.0, 10.0]))
    r = row(runs.run_summary(m), seed=0)
    assert pd.isna(r["best_val_epoch"]) and pd.isna(r["test_error_at_best_val_pct"])


# --------------------------------------------------------------------------------------------
# table6


def _t6(metrics, expected, tolerance=1.0, params=None, test_images=None):
    return comparison.table6(metrics, expected, params or {}, tolerance, test_images)


def test_table6_mean_sample_std_and_min_over_seeds():
    m = make_metrics(
        make_run("plain20", 0, [30.0, 10.0]),
        make_run("plain20", 1, [30.0, 12.0]),
        make_run("plain20", 2, [30.0, 14.0]),
    )
    t = _t6(m, [("plain20", s) for s in range(3)])
    assert list(t.columns) == comparison.TABLE6_COLUMNS
    r = row(t, model="plain20")
    assert r["test_error_mean_pct"] == pytest.approx(12.0)
    assert r["test_error_std_pct"] == pytest.approx(2.0)  # sample std (ddof=1) of 10, 12, 14
    assert r["test_error_min_pct"] == pytest.approx(10.0)
    assert (r["seeds"], r["runs"], r["diverged"], r["missing"]) == (3, 3, 0, 0)
    assert r["status"] == "ok"


@pytest.mark.parametrize("with_rows", [True, False])
def test_table6_columns_and_dtypes_are_its_declaration(with_rows):
    m = make_metrics(make_run("plain20", 0, [30.0, 10.0]), make_run("resnet20", 0, [9.0]))
    t = _t6(m if with_rows else m.iloc[0:0], [("resnet32", 0)] if with_rows else [])
    assert len(t) == (3 if with_rows else 0)
    assert list(t.columns) == comparison.TABLE6.names == comparison.TABLE6_COLUMNS
    assert {c: str(t[c].dtype) for c in t.columns} == comparison.TABLE6.dtypes


def test_every_table_is_built_from_its_declared_columns():
    m = make_metrics(make_run("plain20", 0, [30.0, 10.0]), make_run("resnet20", 0, [9.0]))
    built = {
        comparison.PLAIN_VS_RESIDUAL: comparison.plain_vs_residual(m, [("plain32", 0)]),
        runs.RUN_SUMMARY: runs.run_summary(m, [("plain32", 0)]),
        families.IMAGENET_STYLE: families.imagenet_style_table(m, [("imagenet-resnet18", 0)], {}),
        families.FAMILIES: families.families_table(m, [("plain32", 0)], {}, {}),
    }
    for declared, t in built.items():
        assert len(t) and {c: str(t[c].dtype) for c in t.columns} == declared.dtypes
        assert list(t.columns) == declared.names


def test_declared_columns_refuse_an_undeclared_key_and_a_second_declaration():
    cols = columns.columns(("model", columns.TEXT), ("depth", columns.INT))
    t = cols.frame([{"model": "resnet20"}])  # a column a row leaves out is null
    assert t["depth"].isna().all() and str(t["depth"].dtype) == "Int64"
    with pytest.raises(ValueError, match="undeclared columns \\['dpeth'\\]"):
        cols.frame([{"model": "resnet20", "dpeth": 20}])
    with pytest.raises(ValueError, match="declared twice"):
        columns.columns(("model", columns.TEXT), ("model", columns.TEXT))


def test_table6_confidence_interval_over_seeds_and_whether_the_paper_lies_in_it():
    # 10, 12, 14: mean 12, sd 2; t(0.975, 2 df) = 4.302653 -> 12 +- 4.302653 * 2 / sqrt(3)
    m = make_metrics(*(make_run("resnet20", s, [e]) for s, e in enumerate([10.0, 12.0, 14.0])))
    t = _t6(m, [("resnet20", s) for s in range(3)], test_images={"resnet20": 10_000})
    r = row(t, model="resnet20")
    half = 4.302652729911275 * 2.0 / math.sqrt(3)
    assert (r["ci95_low_pct"], r["ci95_high_pct"]) == pytest.approx((12 - half, 12 + half))
    assert r["ci95_method"] == comparison.CI_T
    assert r["paper_in_ci95"]  # 8.75
    # tight seeds far from the paper: the paper's number is outside
    m = make_metrics(*(make_run("resnet20", s, [e]) for s, e in enumerate([8.0, 8.1, 8.2])))
    r = row(_t6(m, [("resnet20", s) for s in range(3)]), model="resnet20")
    assert r["ci95_high_pct"] < 8.75 and not r["paper_in_ci95"]


def test_table6_one_seed_gets_the_binomial_noise_of_its_test_set():
    m = make_metrics(make_run("resnet20", 0, [8.0]))
    r = row(_t6(m, [("resnet20", 0)], test_images={"resnet20": 10_000}), model="resnet20")
    assert r["test_images"] == 10_000
    assert r["binomial_se_pct"] == pytest.approx(100 * math.sqrt(0.08 * 0.92 / 10_000))  # 0.27
    assert r["binomial_se_pct"] == pytest.approx(0.2713, abs=1e-4)
    # Wilson interval of 800 wrong out of 10,000
    z, n, p = 1.959963984540054, 10_000, 0.08
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    assert (r["ci95_low_pct"], r["ci95_high_pct"]) == pytest.approx(
        (100 * (centre - half), 100 * (centre + half))
    )
    assert r["ci95_method"] == comparison.CI_BINOMIAL
    assert not r["paper_in_ci95"]  # 8.75 is outside 7.48-8.55
    assert pd.isna(r["test_error_std_pct"])
    # without the test set's size: no binomial numbers, never a made-up one
    r = row(_t6(m, [("resnet20", 0)]), model="resnet20")
    assert pd.isna(r["binomial_se_pct"]) and pd.isna(r["ci95_low_pct"])
    assert pd.isna(r["paper_in_ci95"])


def test_table6_plain_rows_have_no_paper_number_and_null_tolerance():
    m = make_metrics(make_run("plain20", 0, [12.0]))
    r = row(_t6(m, [("plain20", 0)]), model="plain20")
    assert pd.isna(r["paper_test_error_pct"]) and pd.isna(r["paper_reference_pct"])
    assert pd.isna(r["diff_pct"]) and pd.isna(r["within_tolerance"])


def test_table6_std_is_null_with_one_seed():
    m = make_metrics(make_run("resnet32", 0, [perr("resnet32")]))
    r = row(_t6(m, [("resnet32", 0)]), model="resnet32")
    assert r["seeds"] == 1 and pd.isna(r["test_error_std_pct"])
    assert r["test_error_mean_pct"] == pytest.approx(perr("resnet32"))


def test_table6_excludes_a_diverged_run_from_the_mean_but_reports_it():
    p = perr("resnet20")
    m = make_metrics(
        make_run("resnet20", 0, [50.0, p + 0.2]),
        make_run("resnet20", 1, [50.0, p + 0.4]),
        make_run("resnet20", 2, [50.0, 90.0], diverged_from_epoch=2),
    )
    r = row(_t6(m, [("resnet20", s) for s in range(3)], tolerance=0.5), model="resnet20")
    assert r["test_error_mean_pct"] == pytest.approx(p + 0.3)
    assert r["test_error_min_pct"] == pytest.approx(p + 0.2)
    assert (r["seeds"], r["runs"], r["diverged"], r["missing"]) == (2, 3, 1, 0)
    assert r["status"] == "partial"
    assert "diverged: seed 2" in r["note"]


def test_table6_paper_number_diff_sign_and_tolerance():
    p = perr("resnet56")
    above = make_metrics(make_run("resnet56", 0, [p + 0.3]))
    below = make_metrics(make_run("resnet56", 0, [p - 0.3]))
    r = row(_t6(above, [("resnet56", 0)], tolerance=0.5), model="resnet56")
    assert r["paper_test_error_pct"] == p
    assert r["paper_reference_pct"] == p
    assert r["diff_pct"] == pytest.approx(0.3)  # ours - paper: positive when we are worse
    assert bool(r["within_tolerance"]) is True
    r = row(_t6(below, [("resnet56", 0)], tolerance=0.5), model="resnet56")
    assert r["diff_pct"] == pytest.approx(-0.3)
    assert bool(r["within_tolerance"])
    r = row(_t6(above, [("resnet56", 0)], tolerance=0.1), model="resnet56")
    assert not bool(r["within_tolerance"])


def test_table6_resnet110_has_the_paper_mean_and_std_and_is_compared_mean_to_mean():
    ref = paper.table6().set_index("model").loc["resnet110"]
    m = make_metrics(
        make_run("resnet110", 0, [ref["mean_error_pct"] + 0.1]),
        make_run("resnet110", 1, [ref["mean_error_pct"] + 0.3]),
    )
    r = row(_t6(m, [("resnet110", 0), ("resnet110", 1)]), model="resnet110")
    assert r["paper_test_error_pct"] == perr("resnet110")
    assert r["paper_mean_error_pct"] == ref["mean_error_pct"]
    assert r["paper_std_error_pct"] == ref["std_error_pct"]
    assert r["paper_runs"] == ref["runs"]
    assert r["paper_reference_pct"] == ref["mean_error_pct"]
    assert r["diff_pct"] == pytest.approx(0.2)


def test_table6_every_resnet_row_carries_the_paper_number():
    runs = [make_run(f"resnet{d}", 0, [10.0]) for d in (20, 32, 44, 56, 110, 1202)]
    t = _t6(make_metrics(*runs), None)
    for r in t.itertuples():
        assert r.paper_test_error_pct == perr(r.model)
        assert r.paper_params_millions == paper.paper_params_millions(r.depth)


def test_table6_missing_partial_and_all_diverged_statuses():
    m = make_metrics(
        make_run("resnet20", 0, [10.0]),
        make_run("plain110", 0, [90.0], diverged_from_epoch=1),
        make_run("plain110", 1, [90.0], diverged_from_epoch=1),
    )
    expected = (
        [("resnet20", 0), ("resnet20", 1)]
        + [("plain110", s) for s in range(3)]
        + [("resnet56", 0), ("resnet56", 1)]
    )
    t = _t6(m, expected)
    r = row(t, model="resnet20")
    assert (r["status"], r["seeds"], r["runs"], r["missing"]) == ("partial", 1, 2, 1)
    assert r["test_error_mean_pct"] == pytest.approx(10.0)
    assert "missing: seed 1" in r["note"]
    r = row(t, model="plain110")
    assert (r["status"], r["seeds"], r["diverged"], r["missing"]) == ("diverged", 0, 2, 1)
    assert pd.isna(r["test_error_mean_pct"])
    r = row(t, model="resnet56")
    assert (r["status"], r["seeds"], r["runs"]) == ("missing", 0, 2)
    assert pd.isna(r["test_error_mean_pct"]) and pd.isna(r["within_tolerance"])
    assert r["paper_test_error_pct"] == perr("resnet56")


def test_table6_orders_plain_before_resnet_by_depth_and_uses_our_parameter_counts():
    runs = [
        make_run(m, 0, [10.0]) for m in ("resnet110", "plain56", "resnet20", "plain110", "plain20")
    ]
    t = _t6(make_metrics(*runs), None, params={"resnet20": 272_474, "plain20": 270_000})
    assert list(t["model"]) == ["plain20", "plain56", "plain110", "resnet20", "resnet110"]
    assert row(t, model="resnet20")["params_millions"] == pytest.approx(0.272474)
    assert row(t, model="plain20")["params_millions"] == pytest.approx(0.27)
    assert pd.isna(row(t, model="resnet110")["params_millions"])


def test_model_status_rules():
    assert comparison.model_status(3, 0, 0) == "ok"
    assert comparison.model_status(2, 1, 0) == "partial"
    assert comparison.model_status(2, 0, 1) == "partial"
    assert comparison.model_status(0, 1, 2) == "diverged"
    assert comparison.model_status(0, 0, 2) == "missing"


# --------------------------------------------------------------------------------------------
# plain_vs_residual


def test_plain_vs_residual_means_and_gaps_per_depth():
    m = make_metrics(
        make_run("plain20", 0, [9.0], train_errors=[5.0]),
        make_run("plain20", 1, [11.0], train_errors=[7.0]),
        make_run("resnet20", 0, [8.0], train_errors=[3.0]),
        make_run("plain56", 0, [14.0], train_errors=[10.0]),
        make_run("resnet56", 0, [7.0], train_errors=[1.0]),
        make_run("resnet56", 1, [60.0], train_errors=[60.0], diverged_from_epoch=1),
    )
    t = comparison.plain_vs_residual(
        m,
        [
            ("plain20", 0),
            ("plain20", 1),
            ("resnet20", 0),
            ("plain56", 0),
            ("resnet56", 0),
            ("resnet56", 1),
            ("plain110", 0),
        ],
    )
    assert list(t.columns) == comparison.PLAIN_VS_RESIDUAL_COLUMNS
    assert list(t["depth"]) == [20, 56, 110]
    r = row(t, depth=20)
    assert r["plain_test_error_pct"] == pytest.approx(10.0)
    assert r["plain_train_error_pct"] == pytest.approx(6.0)
    assert r["test_gap_pct"] == pytest.approx(2.0)
    assert r["train_gap_pct"] == pytest.approx(3.0)
    assert (r["plain_seeds"], r["resnet_seeds"]) == (2, 1)
    r = row(t, depth=56)
    assert r["resnet_status"] == "partial"  # the diverged seed is left out of the mean
    assert r["resnet_test_error_pct"] == pytest.approx(7.0)
    assert r["test_gap_pct"] == pytest.approx(7.0)
    assert r["train_gap_pct"] == pytest.approx(9.0)
    r = row(t, depth=110)
    assert r["plain_status"] == "missing" and pd.isna(r["resnet_status"])
    assert pd.isna(r["test_gap_pct"])
    # one seed on a side: no interval of the gap
    assert t[[c for c in t.columns if "ci95" in c]].isna().all().all()


def test_plain_vs_residual_welch_interval_of_the_gap():
    m = make_metrics(
        make_run("plain20", 0, [9.0], train_errors=[5.0]),
        make_run("plain20", 1, [11.0], train_errors=[7.0]),
        make_run("resnet20", 0, [7.0], train_errors=[3.0]),
        make_run("resnet20", 1, [8.0], train_errors=[3.0]),
    )
    r = row(comparison.plain_vs_residual(m), depth=20)
    # Welch: gap 2.5, se^2 = 2/2 + 0.5/2, Welch-Satterthwaite degrees of freedom
    v1, v2 = 2.0 / 2, 0.5 / 2
    df = (v1 + v2) ** 2 / (v1**2 + v2**2)
    half = stats.t.ppf(0.975, df) * math.sqrt(v1 + v2)
    assert r["test_gap_pct"] == pytest.approx(2.5)
    assert (r["test_gap_ci95_low_pct"], r["test_gap_ci95_high_pct"]) == pytest.approx(
        (2.5 - half, 2.5 + half)
    )
    # the residual train errors do not vary: Welch with one side's variance zero
    half = stats.t.ppf(0.975, 1) * math.sqrt(2.0 / 2)
    assert (r["train_gap_ci95_low_pct"], r["train_gap_ci95_high_pct"]) == pytest.approx(
        (3.0 - half, 3.0 + half)
    )


# --------------------------------------------------------------------------------------------
# markdown


def test_markdown_contains_the_models_formats_floats_and_shows_nulls():
    m = make_metrics(make_run("plain20", 0, [12.345]), make_run("resnet20", 0, [8.0]))
    text = table_text.to_markdown(_t6(m, [("plain20", 0), ("resnet20", 0), ("resnet56", 0)]))
    for model in ("plain20", "resnet20", "resnet56"):
        assert model in text
    assert "12.35" in text and "12.345" not in text
    assert table_text.NULL_TEXT in text
    assert "nan" not in text.lower() and "<NA>" not in text
    assert text.splitlines()[1].startswith("|")  # pipe table: header separator line


# --------------------------------------------------------------------------------------------
# layer responses (the probe itself: tests/test_layer_responses.py)


def test_sorted_layer_std_ranks_descending_per_model_and_seed():
    df = pd.DataFrame(
        {
            "model": ["plain20"] * 4 + ["resnet20"] * 3,
            "seed": [0] * 4 + [0] * 3,
            "layer": [1, 2, 3, 4, 1, 2, 3],
            "std": [1.0, 3.0, 2.0, 3.0, 0.5, 0.7, 0.6],
        }
    )
    s = paper_figures.sorted_layer_std(df)
    p = s[s["model"] == "plain20"]
    assert list(p["rank"]) == [1, 2, 3, 4]
    assert list(p["layer"]) == [2, 4, 3, 1]  # tie (3.0) in network order
    r = s[s["model"] == "resnet20"]
    assert dict(zip(r["layer"], r["rank"])) == {2: 1, 3: 2, 1: 3}
    assert math.isclose(float(r["std"].iloc[0]), 0.7)
