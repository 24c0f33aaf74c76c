"""`resnet-repro probe` and `probe-figure` on tiny trained nets, and the probe figures."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from resnet_repro.figures import probes as plots
from resnet_repro.probes.registry import BY_NAME, probe

TINY = {
    "data": {"source": "synthetic", "train_subset": 64, "test_subset": 40},
    "study": {"archs": ["plain", "resnet"], "depths": [8, 14]},
    "train": {"batch_size": 32, "iterations": 4, "lr_milestones": [2], "eval_batch_size": 16},
    "device": {"device": "cpu"},
    "analysis": {
        "probe_images": 24,
        "lesion_draws": 2,
        "path_samples": 2,
        "path_batches": 2,
        "path_batch_size": 4,
    },
}
# The probes of Veit et al. and the block changes (Figure 7's probe and the landscape have
# tests of their own).
KINDS = ["lesions", "lesions_k", "paths", "branches"]
PROBE_SCHEMAS = {k: BY_NAME[k].schema for k in KINDS}


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "resnet_repro", *map(str, args)], capture_output=True, text=True
    )


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    """plain14 and resnet14 trained for 4 iterations, and every probe run on them."""
    d = tmp_path_factory.mktemp("probes")
    cfg = d / "tiny.yaml"
    cfg.write_text(yaml.safe_dump(TINY))
    files = {k: [] for k in KINDS}
    for model in ("plain14", "resnet14"):
        r = cli("train", "--config", cfg, "--model", model, "--seed", 0, "--out", d / model)
        assert r.returncode == 0, r.stderr
        for kind in KINDS:
            if kind in ("paths", "branches") and model.startswith("plain"):
                continue
            out = d / kind / f"{model}_seed0.parquet"
            r = cli(
                "probe",
                kind,
                "--config",
                cfg,
                "--model-file",
                d / model / "model.pt",
                "--cpu-threads",
                1,
                "--out",
                out,
            )
            assert r.returncode == 0, r.stderr
            images = "8 train images" if kind == "paths" else "24 test images"
            assert images in r.stdout, r.stdout
            files[kind].append(out)
    return d, cfg, files


def test_probe_files_hold_every_block_and_the_configured_images(probed):
    _, _, files = probed
    lesions = probe("lesions").read_all(files["lesions"])
    assert sorted(set(lesions["model"])) == ["plain14", "resnet14"]
    assert (lesions.groupby("model")["block"].count() == 6).all()
    assert (lesions["images"] == 24).all()
    plain = lesions[lesions["model"] == "plain14"]
    assert list(plain["removable"]) == [True, True, False, True, False, True]
    k = probe("lesions_k").read_all(files["lesions_k"])
    assert k.groupby("model")["k"].max().to_dict() == {"plain14": 4, "resnet14": 6}
    p = probe("paths").read_all(files["paths"])
    assert list(p["length"]) == list(range(7)) and (p["images"] == 8).all()
    assert (p["samples"] == 16).all()  # 2 paths per image x 2 batches of 4 images
    assert (p["image_split"] == "train").all()  # analysis.path_split's default
    assert (p["grad_norm_sem"] > 0).all()
    b = probe("branches").read_all(files["branches"])
    assert set(b["model"]) == {"resnet14"} and (b["images"] == 24).all()
    assert list(b["measurable"]) == [True, True, False, True, False, True]
    assert b.loc[b["measurable"], ["change_mean", "branch_mean"]].notna().all().all()


def test_probe_figures_from_the_files(probed):
    d, _, files = probed
    for kind in KINDS:
        out = d / f"{kind}.png"
        r = cli(
            "probe-figure",
            kind,
            "--results",
            *files[kind],
            "--models",
            "plain14",
            "resnet14",
            "resnet110",
            "--out",
            out,
        )
        assert r.returncode == 0, r.stderr
        assert out.stat().st_size > 1000 and out.with_suffix(".pdf").stat().st_size > 1000


def test_paths_of_a_plain_net_and_a_damaged_model_are_one_line_errors(probed, tmp_path):
    d, cfg, _ = probed
    r = cli(
        "probe",
        "paths",
        "--config",
        cfg,
        "--model-file",
        d / "plain14/model.pt",
        "--out",
        tmp_path / "p.parquet",
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "residual net" in r.stderr
    r = cli(
        "probe",
        "branches",
        "--config",
        cfg,
        "--model-file",
        d / "plain14/model.pt",
        "--out",
        tmp_path / "b.parquet",
    )
    assert r.returncode == 2 and r.stderr.count("\n") == 1 and "residual net" in r.stderr
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    r = cli(
        "probe", "lesions", "--config", cfg, "--model-file", bad, "--out", tmp_path / "l.parquet"
    )
    assert r.returncode == 2 and "model.pt" in r.stderr.splitlines()[0]
    assert not (tmp_path / "p.parquet").exists() and not (tmp_path / "l.parquet").exists()


def _lines(fig) -> dict[str, np.ndarray]:
    return {
        ln.get_label(): ln.get_ydata()
        for ax in fig.axes
        for ln in ax.get_lines()
        if not ln.get_label().startswith("_")
    }


def test_lesion_k_figure_starts_at_the_intact_error_and_draws_the_mean():
    df = pd.DataFrame(
        {
            "model": "resnet8",
            "arch": "resnet",
            "depth": 8,
            "seed": 0,
            "k": [1, 1, 2],
            "draw": [0, 1, 0],
            "removed": ["1", "2", "1,2"],
            "removable_blocks": 3,
            "intact_error_pct": 10.0,
            "test_error_pct": [20.0, 30.0, 50.0],
            "images": 100,
        }
    )
    lines = _lines(plots.figure_lesions_k(df))
    assert list(lines["ResNet-8"]) == [10.0, 25.0, 50.0]


def test_probe_figures_name_missing_models_and_survive_no_data():
    empty = {k: PROBE_SCHEMAS[k].empty_table().to_pandas() for k in KINDS}
    for kind, fn in ((k, BY_NAME[k].figure.make) for k in KINDS):
        fig = fn(empty[kind], ["resnet20"])
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
        assert "not in the data: ResNet-20" in texts


# ------------------------------------------------------------------ the loss landscape


def _landscape(cfg, model_file, out, *more_configs):
    return cli(
        "landscape",
        "--config",
        cfg,
        *more_configs,
        "--model-file",
        model_file,
        "--cpu-threads",
        1,
        "--out",
        out,
    )


def _extra(tmp_path, name, analysis):
    path = tmp_path / f"{name}.yaml"
    path.write_text(yaml.safe_dump({"analysis": analysis}))
    return path


def test_landscape_cli_writes_one_row_per_point_with_seed_images_and_wall_time(probed, tmp_path):
    d, cfg, _ = probed
    small = _extra(tmp_path, "small", {"landscape_points": 3, "landscape_images": 16})
    out = tmp_path / "resnet14.parquet"
    r = _landscape(cfg, d / "resnet14/model.pt", out, small)
    assert r.returncode == 0, r.stderr
    assert "on 16 training images" in r.stdout and "images/s" in r.stdout
    from resnet_repro.results import read_all_landscape

    rows = read_all_landscape([out])
    assert rows["kind"].value_counts().to_dict() == {
        "surface": 9,
        "direction": 3,
        "interpolation": 3,
    }
    assert (rows["model"] == "resnet14").all() and (rows["seed"] == 0).all()
    assert (rows["images"] == 16).all() and (rows["points"] == 3).all()
    assert (rows["direction_seed"] == 0).all() and (rows["source"] == "run").all()
    assert (rows["wall_seconds"] > 0).all() and (rows["point_seconds"] > 0).all()
    centre = rows[(rows["kind"] == "surface") & (rows["alpha"] == 0) & (rows["beta"] == 0)]
    end = rows[(rows["kind"] == "interpolation") & (rows["alpha"] == 1)]
    assert centre["loss"].iloc[0] == end["loss"].iloc[0]

    fig = tmp_path / "landscape.png"
    r = cli("landscape-figure", "--results", out, "--out", fig)
    assert r.returncode == 0, r.stderr
    assert fig.stat().st_size > 1000 and fig.with_suffix(".pdf").stat().st_size > 1000


@pytest.mark.parametrize(
    "analysis, words",
    [
        ({"landscape_points": 0}, ["analysis.landscape_points", ">= 2"]),
        ({"landscape_range": [1.0, -1.0]}, ["analysis.landscape_range", "min < max"]),
        ({"landscape_images": 65}, ["analysis.landscape_images", "65", "holds 64"]),
    ],
)
def test_landscape_bad_input_is_one_line_and_leaves_no_file(probed, tmp_path, analysis, words):
    d, cfg, _ = probed
    out = tmp_path / "x.parquet"
    r = _landscape(cfg, d / "plain14/model.pt", out, _extra(tmp_path, "bad", analysis))
    assert r.returncode == 2, r.stdout + r.stderr
    assert r.stderr.count("\n") == 1, r.stderr
    for w in words:
        assert w in r.stderr, (w, r.stderr)
    assert not out.exists() and not list(tmp_path.glob(".x.parquet*"))


def test_landscape_of_a_diverged_run_is_a_row_that_says_so(probed, tmp_path):
    import torch

    d, cfg, _ = probed
    saved = torch.load(d / "plain14/model.pt", map_location="cpu", weights_only=True)
    for tensor in saved["model"].values():
        if tensor.is_floating_point():
            tensor.fill_(float("nan"))
    torch.save(saved, tmp_path / "model.pt")
    small = _extra(tmp_path, "small", {"landscape_points": 3, "landscape_images": 16})
    out = tmp_path / "diverged.parquet"
    r = _landscape(cfg, tmp_path / "model.pt", out, small)
    assert r.returncode == 0, r.stderr
    assert "diverged" in r.stdout
    rows = pd.read_parquet(out)
    assert len(rows) == 1 and rows["status"].iloc[0] == "diverged"
    assert rows["loss"].isna().all()


def _branch_rows(model: str, blocks: int, value: float) -> pd.DataFrame:
    """Branch rows of a net of `blocks` blocks (3 stages), downsampling blocks unmeasured."""
    n = blocks // 3
    block = np.arange(1, blocks + 1)
    down = np.isin(block, [n + 1, 2 * n + 1])
    return pd.DataFrame(
        {
            "model": model,
            "arch": "resnet",
            "depth": 6 * n + 2,
            "seed": 0,
            "block": block,
            "name": [f"stage{(b - 1) // n + 1}.{(b - 1) % n}" for b in block],
            "stage": (block - 1) // n + 1,
            "blocks": blocks,
            "changes_shape": down,
            "measurable": ~down,
            "change_mean": np.where(down, np.nan, value),
            "change_std": np.where(down, np.nan, 0.1),
            "branch_mean": np.where(down, np.nan, 2 * value),
            "branch_std": np.where(down, np.nan, 0.1),
            "images": 50,
        }
    )


def test_branch_figure_puts_every_resnet_depth_on_one_relative_axis_and_marks_downsampling():
    df = pd.concat(
        [
            _branch_rows("resnet8", 3, 0.5),
            _branch_rows("resnet20", 9, 0.2),
            _branch_rows("plain20", 9, 1.2).assign(arch="plain"),  # e.g. an older file
        ]
    )
    fig = plots.figure_branches(df)
    change, branch = fig.axes
    lines = {ln.get_label(): ln for ln in change.get_lines()}
    assert set(lines) >= {"ResNet-8", "ResNet-20"}
    x = lines["ResNet-20"].get_xdata()
    assert list(x) == pytest.approx([(b - 0.5) / 9 for b in range(1, 10)])  # 0..1 for all depths
    y = lines["ResNet-20"].get_ydata()
    assert np.isnan(y[3]) and np.isnan(y[6]) and y[0] == pytest.approx(0.2)  # no number drawn
    crosses = [ln for ln in change.get_lines() if ln.get_marker() == "x" and len(ln.get_xdata())]
    assert sorted(np.concatenate([c.get_xdata() for c in crosses])) == pytest.approx(
        sorted([1.5 / 3, 2.5 / 3, 3.5 / 9, 6.5 / 9])
    )
    keys = [t.get_text() for t in fig.legends[0].texts]  # one legend, under the panels
    assert keys == ["ResNet-8", "ResNet-20", "downsampling block: not measured"]
    assert {ln.get_label(): ln for ln in branch.get_lines()}["ResNet-8"].get_ydata()[
        0
    ] == pytest.approx(1.0)
    assert "||y - x||" in change.get_ylabel() and "||F(x)||" in branch.get_ylabel()
    # plain rows (files of another study) are never drawn
    assert not any("plain" in k for k in keys)


def test_paths_figure_says_where_the_gradient_is_taken_and_on_which_images():
    rows = pd.DataFrame(
        {
            "model": "resnet8",
            "arch": "resnet",
            "depth": 8,
            "seed": 0,
            "blocks": 3,
            "length": [0, 1, 2, 3],
            "paths": [1.0, 3.0, 3.0, 1.0],
            "path_fraction": [0.125, 0.375, 0.375, 0.125],
            "grad_norm_mean": [1.0, 0.5, 0.25, 0.125],
            "grad_norm_std": 0.1,
            "grad_norm_sem": 0.01,
            "weighted_grad": [0.125, 0.1875, 0.09375, 0.015625],
            "samples": 256,
            "images": 128,
            "image_split": "train",
        }
    )
    fig = plots.figure_paths(rows)
    assert "input image" in fig.axes[1].get_ylabel()
    title = fig._suptitle.get_text()
    assert "128 training images x 2 random path(s)" in title and "standard error" in title
    assert len(fig.axes[1].collections) == 1  # the band of +-1 standard error
    share = fig.axes[2].get_lines()[0].get_ydata()  # (c): a distribution over the lengths
    assert sum(share) == pytest.approx(1.0)
    assert list(share) == pytest.approx(
        [0.125 / 0.421875, 0.1875 / 0.421875, 0.09375 / 0.421875, 0.015625 / 0.421875]
    )
