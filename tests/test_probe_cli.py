"""`resnet-repro probe` and `probe-figure` on tiny trained nets, and the probe figures."""

import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
import yaml

from resnet_repro.figures import probes as plots
from resnet_repro.results import PROBE_SCHEMAS, read_all_probe

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
KINDS = list(PROBE_SCHEMAS)


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
            if kind == "paths" and model.startswith("plain"):
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
            assert "24 test images" in r.stdout or kind == "paths", r.stdout
            files[kind].append(out)
    return d, cfg, files


def test_probe_files_hold_every_block_and_the_configured_images(probed):
    _, _, files = probed
    lesions = read_all_probe("lesions", files["lesions"])
    assert sorted(set(lesions["model"])) == ["plain14", "resnet14"]
    assert (lesions.groupby("model")["block"].count() == 6).all()
    assert (lesions["images"] == 24).all()
    plain = lesions[lesions["model"] == "plain14"]
    assert list(plain["removable"]) == [True, True, False, True, False, True]
    k = read_all_probe("lesions_k", files["lesions_k"])
    assert k.groupby("model")["k"].max().to_dict() == {"plain14": 4, "resnet14": 6}
    p = read_all_probe("paths", files["paths"])
    assert list(p["length"]) == list(range(7)) and (p["images"] == 8).all()
    assert (p["samples"] == 4).all()  # 2 paths x 2 batches per length
    b = read_all_probe("branches", files["branches"])
    assert list(b[b["model"] == "resnet14"]["measure"]) == ["branch"] * 6


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
    for kind, fn in plots.FIGURES.items():
        fig = fn(empty[kind], ["resnet20"])
        texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
        assert "not in the data: ResNet-20" in texts
