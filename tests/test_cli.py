"""The analysis subcommands of `resnet-repro`, called as the workflow calls them."""

import subprocess
import sys

import pandas as pd
import pytest
import yaml

from resnet_repro.results import read_layer_std

TINY = {
    "data": {"source": "synthetic", "train_subset": 64, "test_subset": 40},
    "study": {"archs": ["plain", "resnet"], "depths": [8]},
    "train": {"batch_size": 32, "iterations": 4, "lr_milestones": [2], "eval_batch_size": 16},
    "device": {"device": "cpu"},
    "analysis": {"figure7_models": ["plain8", "resnet8"]},
}


def cli(*args, env=None):
    return subprocess.run(
        [sys.executable, "-m", "resnet_repro", *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
    )


def one_line_error(r):
    assert r.returncode == 2
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-repro: error:"), r.stderr
    return lines[0]


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """The tiny study's resnet8 trained once; plain8 is left untrained (a missing run)."""
    d = tmp_path_factory.mktemp("cli")
    cfg = d / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    r = cli("train", "--config", cfg, "--model", "resnet8", "--seed", 0, "--out", d / "resnet8")
    assert r.returncode == 0, r.stderr
    return d, cfg


def test_tables_report_a_missing_run_as_missing(trained):
    d, cfg = trained
    r = cli(
        "tables",
        "--config",
        cfg,
        "--metrics",
        d / "resnet8/metrics.parquet",
        d / "plain8/metrics.parquet",
        "--out-dir",
        d / "tables",
    )
    assert r.returncode == 0, r.stderr
    assert "plain8/metrics.parquet does not exist" in r.stderr
    runs = pd.read_csv(d / "tables/runs.csv").set_index("model")
    assert runs.loc["plain8", "status"] == "missing"
    assert runs.loc["resnet8", "status"] == "ok"
    table6 = pd.read_csv(d / "tables/table6.csv").set_index("model")
    from resnet_repro.nets.anatomy import count_parameters
    from resnet_repro.nets.families import build_model

    assert table6.loc["resnet8", "params_millions"] == pytest.approx(
        count_parameters(build_model("resnet8")) / 1e6
    )
    assert "plain8" in (d / "tables/table6.md").read_text()


def test_layer_std_writes_one_row_per_3x3_layer(trained):
    d, cfg = trained
    out = d / "resnet8_std.parquet"
    r = cli(
        "layer-std",
        "--config",
        cfg,
        "--model-file",
        d / "resnet8/model.pt",
        "--images",
        24,
        "--out",
        out,
    )
    assert r.returncode == 0, r.stderr
    df = read_layer_std(out)
    assert df.layer.tolist() == list(range(1, 8))  # 6n+1 = 7 layers for depth 8
    assert (df.images == 24).all() and (df["std"] > 0).all()
    assert df.model.unique().tolist() == ["resnet8"]


def test_layer_std_rejects_a_damaged_model_file(trained, tmp_path):
    _, cfg = trained
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    out = tmp_path / "std.parquet"
    msg = one_line_error(cli("layer-std", "--config", cfg, "--model-file", bad, "--out", out))
    assert "model.pt" in msg
    assert not out.exists() and list(tmp_path.iterdir()) == [bad]


def test_figures_from_the_run_files(trained):
    d, _ = trained
    r = cli("figure6", "--metrics", d / "resnet8/metrics.parquet", "--out", d / "f6.png")
    assert r.returncode == 0, r.stderr
    assert (d / "f6.png").stat().st_size > 0 and (d / "f6.pdf").stat().st_size > 0


def test_bad_config_is_one_line_error(tmp_path):
    cfg = tmp_path / "bad.yaml"
    cfg.write_text("train: {momentum: 1.5}\n")
    msg = one_line_error(cli("check-config", "--config", cfg))
    assert "train.momentum" in msg and "< 1" in msg


def test_no_config_at_all_is_one_line_error(tmp_path):
    env = {k: v for k, v in __import__("os").environ.items() if k != "RESNET_REPRO_CONFIG"}
    msg = one_line_error(cli("check-config", env=env))
    assert "--config" in msg


def test_prepare_data_records_the_counts(tmp_path):
    cfg = tmp_path / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    r = cli("prepare-data", "--config", cfg, "--out", tmp_path / "prepared.json")
    assert r.returncode == 0, r.stderr
    import json

    info = json.loads((tmp_path / "prepared.json").read_text())
    assert info["counts"]["n_train"] == 64 and info["counts"]["n_test"] == 40
