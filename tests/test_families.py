"""tables/families.py: the ImageNet-style family's honest-selection table and both families side by
side, on hand-made metrics."""

from __future__ import annotations

import math

import pandas as pd
import pytest
from test_analysis import make_metrics, make_run

from resnet_repro.tables import families, paper

R18, R50 = "imagenet-resnet18", "imagenet-resnet50"


def test_writeup_numbers_are_data_with_source_and_marked_selected_on_test():
    r18, r34 = paper.writeup_result(R18), paper.writeup_result("imagenet-resnet34")
    assert (r18.test_accuracy_pct, r18.best_epoch) == (95.51, 181)
    assert (r34.test_accuracy_pct, r34.best_epoch) == (96.04, 191)
    assert r18.test_error_pct == pytest.approx(4.49)
    for r in paper.WRITEUP:
        assert r.selection == paper.SELECTED_ON_TEST and r.source
    assert paper.writeup_result("resnet20") is None


def test_imagenet_table_reports_final_and_best_val_never_best_test():
    # Test error is lowest at epoch 2 (on the test set), validation at epoch 3.
    run0 = make_run(R18, 0, test_errors=[20.0, 5.0, 8.0, 9.0], val_errors=[21, 9, 7, 10])
    run1 = make_run(R18, 1, test_errors=[20.0, 6.0, 7.0, 11.0], val_errors=[21, 9, 8, 6])
    paper_net = make_run("resnet20", 0, test_errors=[10.0])
    metrics = make_metrics(run0, run1, paper_net)
    runs = [(R18, 0), (R18, 1), (R50, 0), ("resnet20", 0)]
    t = families.imagenet_style_table(metrics, runs, {R18: 11_173_962}).set_index("model")
    assert list(t.index) == [R18, R50]  # the paper's nets are not in this table
    r = t.loc[R18]
    assert r["final_test_error_pct"] == pytest.approx(10.0)  # mean of 9 and 11
    # Lowest val: epoch 3 of seed 0 (test 8), epoch 4 of seed 1 (test 11); never epoch 2.
    assert r["test_error_at_best_val_pct"] == pytest.approx(9.5)
    assert r["best_val_epochs"] == "3 (seed 0), 4 (seed 1)"
    assert r["final_epoch"] == 4 and r["params_millions"] == pytest.approx(11.173962)
    assert r["writeup_test_error_pct"] == pytest.approx(4.49)
    assert r["writeup_selection"] == paper.SELECTED_ON_TEST
    assert r["our_selection"] == families.OUR_SELECTION
    assert t.loc[R50, "status"] == "missing" and math.isnan(t.loc[R50, "final_test_error_pct"])


def test_imagenet_table_without_val_split_has_no_best_val_number():
    t = families.imagenet_style_table(make_metrics(make_run(R18, 0, [9.0, 8.0])), [(R18, 0)], {})
    assert math.isnan(t.loc[0, "test_error_at_best_val_pct"])
    assert pd.isna(t.loc[0, "best_val_epochs"])


def test_families_table_sets_both_families_side_by_side():
    fast = make_run("resnet20", 0, test_errors=[12.0, 8.0])
    slow = make_run(R18, 0, test_errors=[9.0, 5.0])
    slow["images_per_second"] = [50.0, 100.0]
    metrics = make_metrics(fast, slow)
    info = {
        ("resnet20", 0): {"device": "GPU", "schedule": "step"},
        (R18, 0): {"device": "GPU", "schedule": "cosine"},
    }
    t = families.families_table(
        metrics,
        [(R18, 0), ("resnet56", 0), ("resnet20", 0)],
        {"resnet20": 272_474, R18: 11_173_962},
        info,
    ).set_index("model")
    assert list(t.index) == ["resnet20", "resnet56", R18]
    assert t.loc["resnet20", "family"].startswith("paper")
    assert t.loc[R18, "family"] == "ImageNet-style"
    assert t.loc[R18, "label"] == "ResNet-18 (ImageNet-style)"
    assert t.loc[R18, "images_per_second"] == pytest.approx(75.0)  # median over epochs
    assert t.loc[R18, "final_test_error_pct"] == 5.0
    assert t.loc["resnet20", "schedule"] == "step" and t.loc[R18, "schedule"] == "cosine"
    assert t.loc["resnet56", "status"] == "missing"


def test_schedule_text_names_each_recipe():
    assert families.schedule_text(
        {
            "iterations": 64000,
            "epochs": None,
            "schedule": "step",
            "lr_milestones": [32000, 48000],
            "lr": 0.1,
            "weight_decay": 1e-4,
        }
    ).startswith("step at 32000, 48000, 64000 iterations")
    assert families.schedule_text(
        {
            "iterations": None,
            "epochs": 200,
            "schedule": "cosine",
            "lr_milestones": [],
            "lr": 0.1,
            "weight_decay": 5e-4,
        }
    ).startswith("cosine, 200 epochs")
