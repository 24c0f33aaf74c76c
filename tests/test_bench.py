"""The throughput benchmark at a tiny size on the CPU. No test judges speed: they check that
every variant runs, what the result and the table contain, and the plumbing around them."""

from __future__ import annotations

import argparse
import json
import math

import numpy as np
import pytest
import torch
from conftest import CPU

from resnet_repro import bench
from resnet_repro.bench.ablation import ablated_placement, ablation_plan
from resnet_repro.cli import bench as cli_bench
from resnet_repro.config import ConfigError, study_from_dict
from resnet_repro.data import synthetic_cifar
from resnet_repro.engine.devices import Placement, place

TINY = {
    "data": {"source": "synthetic", "download": False, "train_subset": 64},
    "device": {"device": "cpu"},
}
# 64 images in batches of 16: 4 steps per epoch, so 2 warm-up + 3 timed steps cross an epoch.
SIZE = dict(batch_size=16, warmup_steps=2, steps=3)


@pytest.fixture(autouse=True)
def one_thread():
    """One torch thread: on a shared, busy CPU, spinning OpenMP threads make tiny runs slow
    and erratic. The setting is restored for the tests that follow."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser()
    cli_bench.add_arguments(p)
    return p


def _check_variant(entry: dict, steps: int, batch_size: int) -> None:
    assert entry["images_per_second"] > 0 and math.isfinite(entry["images_per_second"])
    assert entry["steps"] == steps
    assert entry["images"] == steps * batch_size
    assert entry["seconds"] > 0
    assert entry["ms_per_step"] == pytest.approx(1000 * entry["seconds"] / steps)
    assert math.isfinite(entry["train_loss"])  # the model really trained


@pytest.fixture(scope="module")
def cpu_study_placement():
    study = study_from_dict(TINY)
    placement, slot = place(study.device, log=lambda m: None)
    assert slot is None and placement.device.type == "cpu"
    return study, placement


def test_run_benchmark_measures_all_three_variants(cpu_study_placement):
    study, placement = cpu_study_placement
    logs: list[str] = []
    result = bench.run_benchmark(study, "resnet8", placement, workers=0, log=logs.append, **SIZE)
    for variant in bench.VARIANTS:
        _check_variant(result[variant], SIZE["steps"], SIZE["batch_size"])
        assert result[variant]["relative_to_ceiling"] > 0
    assert result["ceiling"]["relative_to_ceiling"] == 1.0
    assert result["dataloader"]["workers"] == 0
    assert result["ablation"] is None and result["packed"] is None
    assert result["peak_memory_mb"] > 0
    s = result["settings"]
    assert (s["model"], s["batch_size"], s["precision"], s["workers"]) == ("resnet8", 16, "fp32", 0)
    assert s["data"] == {"source": "synthetic", "root": None, "train_images": 64}
    assert s["channels_last"] is False and s["fused_optimizer"] is False
    assert s["cudnn_benchmark"] is None
    assert result["machine"]["gpu"] is None and result["machine"]["torch"] == torch.__version__
    json.dumps(result, allow_nan=False)  # JSON-ready as it is
    assert any("trainer" in line for line in logs)


def test_run_from_args_writes_json_and_prints_the_table(tmp_path, capsys):
    out = tmp_path / "bench" / "result.json"
    args = _parser().parse_args(
        [
            "--model",
            "resnet8",
            "--device",
            "cpu",
            "--batch-size",
            "16",
            "--warmup-steps",
            "1",
            "--steps",
            "2",
            "--train-images",
            "64",
            "--workers",
            "1",
            "--cpu-threads",
            "1",
            "--ablate",
            # compiling takes a minute on the CPU; tests/test_step.py compiles the step
            "--compile-table",
            "eager",
            "--json",
            str(out),
        ]
    )
    assert cli_bench.run_from_args(args) == 0
    printed = capsys.readouterr().out
    for name in ("trainer", "dataloader/1w", "ceiling", "images/s", "ms/step", "vs ceiling"):
        assert name in printed
    result = json.loads(out.read_text())
    for variant in bench.VARIANTS:
        _check_variant(result[variant], 2, 16)
    assert result["machine"]["cpu"].startswith("CPU: ")
    assert result["machine"]["gpu"] is None and result["machine"]["torch_threads"] == 1
    assert result["settings"]["workers"] == 1 and result["settings"]["warmup_steps"] == 1
    assert result["settings"]["data"]["train_images"] == 64
    # On the CPU no speed switch applies: every one is skipped, with the reason.
    ablation = {e["switch"]: e for e in result["ablation"]}
    assert set(ablation) == set(bench.SWITCHES)
    for e in ablation.values():
        assert e["status"] == "skipped" and e["reason"]
        assert "images_per_second" not in e
    assert "skipped: " in printed
    assert not list(out.parent.glob(".*.tmp"))  # written atomically


def test_packed_jobs_report_aggregate_throughput(cpu_study_placement):
    study, placement = cpu_study_placement
    result = bench.run_benchmark(
        study,
        "resnet8",
        placement,
        batch_size=16,
        warmup_steps=1,
        steps=2,
        workers=0,
        variants=("trainer",),
        jobs_per_gpu=2,
        log=lambda m: None,
    )
    packed = result["packed"]
    assert "error" not in packed, packed
    assert packed["jobs"] == 2
    assert packed["images"] == 2 * 2 * 16
    assert packed["images_per_second"] > 0 and math.isfinite(packed["images_per_second"])
    assert len(packed["per_job_images_per_second"]) == 2
    assert packed["relative_to_one_job"] > 0
    assert "dataloader" not in result and "ceiling" not in result
    assert "packed x2" in bench.format_table(result)


# ---------------------------------------------------------------- no measuring below


def test_ablation_plan_on_cuda_placement_changes_one_switch_at_a_time(monkeypatch):
    # Only the plan: a CUDA placement object is made without touching CUDA.
    monkeypatch.setattr(torch.backends.cudnn, "benchmark", True)
    gpu = Placement(
        device=torch.device("cuda", 0),
        precision="bf16",
        channels_last=False,
        compile="eager",
        fused_optimizer=True,
        name="gpu",
    )
    plan = {e["switch"]: e for e in ablation_plan(gpu)}
    precision = [e for e in ablation_plan(gpu) if e["switch"] == "precision"]
    assert [e["changed_to"] for e in precision] == ["tf32", "fp32"]  # every other precision
    assert all(e["status"] == "measure" for e in precision)
    assert (
        plan["channels_last"]["status"] == "skipped"
        and "already off" in plan["channels_last"]["reason"]
    )
    assert plan["fused_optimizer"]["changed_to"] is False
    assert plan["cudnn_benchmark"]["configured"] is True
    assert plan["cudnn_benchmark"]["changed_to"] is False
    assert "compile" not in plan  # measured in the compile table, every mode
    fp32 = ablated_placement(gpu, "precision", "fp32")
    assert fp32.precision == "fp32" and fp32.fused_optimizer and fp32.name == "gpu"


def test_format_table_without_measuring():
    entry = {"images_per_second": 900.0, "ms_per_step": 142.2}
    result = {
        "trainer": {"images_per_second": 800.0, "ms_per_step": 160.0},
        "dataloader": {"images_per_second": 400.0, "ms_per_step": 320.0, "workers": 8},
        "ceiling": entry,
        "packed": {"jobs": 3, "images_per_second": 1800.0, "ms_per_step": 213.3},
        "ablation": [
            {
                "switch": "precision",
                "configured": "bf16",
                "changed_to": "fp32",
                "status": "measured",
                "images_per_second": 400.0,
                "switch_speedup": 2.0,
            },
            {
                "switch": "channels_last",
                "configured": False,
                "status": "skipped",
                "reason": "already off",
            },
        ],
        "peak_memory_mb": 1234.0,
        "peak_memory_source": "torch.cuda.max_memory_allocated",
    }
    text = bench.format_table(result)
    assert "dataloader/8w" in text and "ceiling" in text and "trainer" in text
    assert "89%" in text and "44%" in text and "100%" in text and "200%" in text
    assert "packed x3" in text
    assert "precision bf16 -> fp32" in text and "x2.00" in text
    assert "skipped: already off" in text
    assert "1,234 MB" in text
    failed = bench.format_table(
        {"trainer": result["trainer"], "packed": {"jobs": 2, "error": "boom"}}
    )
    assert "packed x2: failed: boom" in failed and "vs ceiling" in failed


def test_conventional_dataset_gives_normalised_float_images():
    arrays = synthetic_cifar(8, 0, seed=1)
    plain = bench.PilCifar(
        arrays.train_x,
        arrays.train_y,
        bench.conventional_transform(arrays.train_x, padding=0, flip=False),
    )
    x, y = plain[3]
    assert x.dtype == torch.float32 and x.shape == (3, 32, 32) and y == arrays.train_y[3]
    mean = arrays.train_x.reshape(8, 3, -1).mean(axis=(0, 2)) / 255.0
    expected = arrays.train_x[3] / 255.0 - mean[:, None, None]
    np.testing.assert_allclose(x.numpy(), expected, atol=1e-6)
    augmented = bench.PilCifar(
        arrays.train_x, arrays.train_y, bench.conventional_transform(arrays.train_x)
    )
    assert augmented[3][0].shape == (3, 32, 32)


def test_bad_settings_fail_before_any_work(cpu_study_placement):
    study, placement = cpu_study_placement
    with pytest.raises(ConfigError, match="not a known model"):
        bench.run_benchmark(study, "vgg16", placement)
    with pytest.raises(ConfigError, match="variants"):
        bench.run_benchmark(study, "resnet8", placement, variants=("fast",))
    with pytest.raises(ConfigError, match="steps"):
        bench.run_benchmark(study, "resnet8", placement, steps=0)
    with pytest.raises(ConfigError, match="workers"):
        bench.run_benchmark(study, "resnet8", placement, workers=-1)


def test_study_from_args_defaults_and_overrides(tmp_path):
    args = _parser().parse_args(["--model", "resnet20"])
    assert (args.batch_size, args.warmup_steps, args.steps, args.jobs_per_gpu) == (128, 20, 100, 1)
    study = cli_bench.study_from_args(args)
    assert study.data.source == "synthetic"
    assert study.data.train_subset == cli_bench.DEFAULT_TRAIN_IMAGES
    assert study.device.device == "auto"

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        "data: {source: cifar10, root: /nowhere, download: false}\n"
        "device: {channels_last: true, compile: eager}\n"
    )
    args = _parser().parse_args(
        [
            "--model",
            "plain20",
            "--config",
            str(cfg),
            "--train-images",
            "500",
            "--device",
            "cpu",
            "--no-channels-last",
            "--compile",
            "step",
            "--precision",
            "fp32",
        ]
    )
    study = cli_bench.study_from_args(args)
    assert (study.data.source, study.data.root, study.data.train_subset) == (
        "cifar10",
        "/nowhere",
        500,
    )
    d = study.device
    assert (d.device, d.precision, d.channels_last, d.compile) == ("cpu", "fp32", False, "step")
    with pytest.raises(ConfigError):
        cli_bench.study_from_args(
            _parser().parse_args(["--model", "resnet8", "--train-images", "0"])
        )


def test_benchmark_runs_the_imagenet_style_family(tmp_path, capsys):
    """`bench --model imagenet-resnet18` with the family's recipe (per-channel mean/std, cosine
    over epochs) at the smoke width: all three variants train. Nothing is timed or judged."""
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    out = tmp_path / "bench.json"
    args = _parser().parse_args(
        [
            "--model",
            "imagenet-resnet50",
            "--config",
            str(root / "config.yaml"),
            str(root / "workflow/configs/imagenet-style.yaml"),
            str(root / "workflow/configs/smoke-imagenet-style.yaml"),
            "--batch-size",
            "8",
            "--warmup-steps",
            "1",
            "--steps",
            "2",
            "--train-images",
            "32",
            "--workers",
            "0",
            "--json",
            str(out),
        ]
    )
    assert cli_bench.run_from_args(args) == 0
    result = json.loads(out.read_text())
    for variant in bench.VARIANTS:
        _check_variant(result[variant], 2, 8)
    assert result["settings"]["model"] == "imagenet-resnet50"


def test_conventional_transform_divides_by_std_for_the_per_channel_recipe():
    arrays = synthetic_cifar(32, 1, seed=0)
    ds = bench.PilCifar(
        arrays.train_x,
        arrays.train_y,
        bench.conventional_transform(arrays.train_x, padding=0, flip=False, divide_by_std=True),
    )
    x = torch.stack([ds[i][0] for i in range(32)])
    flat = x.transpose(0, 1).reshape(3, -1)
    assert torch.allclose(flat.mean(1), torch.zeros(3), atol=1e-4)
    assert torch.allclose(flat.std(1, unbiased=False), torch.ones(3), atol=1e-3)


# --------------------------------------------------------------------------------------------
# the study's projected time


def test_longest_first_fills_the_slot_that_frees_first():
    from resnet_repro.bench.projection import longest_first

    makespan, lanes = longest_first({"a": 5.0, "b": 4.0, "c": 3.0, "d": 3.0, "e": 1.0}, 2)
    # a | b, then c joins b (free at 4), d joins a (free at 5), e joins the lane free at 7
    assert lanes == [["a", "d"], ["b", "c", "e"]]
    assert makespan == 8.0
    assert longest_first({"a": 2.0, "b": 1.0}, 5)[0] == 2.0  # more slots than jobs
    with pytest.raises(ValueError):
        longest_first({"a": 1.0}, 0)


def test_project_study_times_every_run_and_bounds_the_makespan():
    from resnet_repro.bench.projection import project_study

    rates = {"resnet20": 64_000.0, "resnet110": 12_800.0}
    runs = [("resnet20", 0), ("resnet110", 0), ("resnet110", 1)]
    p = project_study(rates, runs, iterations=64_000, batch_size=128, slots=2)
    assert p["run_seconds"]["resnet20/seed0"] == pytest.approx(128.0)
    assert p["run_seconds"]["resnet110/seed1"] == pytest.approx(640.0)
    # the two ResNet-110 runs take one device each; ResNet-20 follows on either
    assert p["makespan_seconds"] == pytest.approx(768.0)
    assert p["lower_bound_seconds"] == pytest.approx(704.0)  # (128 + 2 x 640) / 2
    assert p["makespan_seconds"] >= p["lower_bound_seconds"]


def test_bench_study_measures_each_model_and_projects_the_study(tmp_path, capsys):
    import yaml

    from resnet_repro.cli.main import build_parser

    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "download": False, "train_subset": 64},
                "study": {"archs": ["plain", "resnet"], "depths": [8], "seeds": [0, 1]},
                "train": {"batch_size": 16, "iterations": 40, "lr_milestones": [20, 30]},
                "device": {"device": "cpu", "cpu_threads": 1},
            }
        )
    )
    out = tmp_path / "study.json"
    args = build_parser().parse_args(
        ["bench-study", "--config", str(config), "--devices", "2", "--warmup-steps", "1"]
        + ["--steps", "2", "--json", str(out)]
    )
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    assert set(result["rates"]) == {"plain8", "resnet8"}
    p = result["projection"]
    assert set(p["run_seconds"]) == {f"{m}/seed{s}" for m in ("plain8", "resnet8") for s in (0, 1)}
    for run, seconds in p["run_seconds"].items():
        assert seconds == pytest.approx(40 * 16 / result["rates"][run.split("/")[0]])
    assert p["slots"] == 2 and p["makespan_seconds"] >= p["lower_bound_seconds"] > 0
    printed = capsys.readouterr().out
    assert "4 runs x 40 iterations at batch 16 on 2 device(s)" in printed


def test_ops_per_step_counts_kernel_running_operators_only():
    from resnet_repro.bench.ops import ops_per_step

    a, b = torch.ones(8), torch.ones(8)

    def step():
        c = torch.add(a, b)  # a kernel
        c.view(2, 4).t()  # views: no kernel
        torch.empty(3)  # an allocation: no kernel
        c.mul_(2)  # a kernel
        return c.sum()  # a kernel

    assert ops_per_step(step, torch.device("cpu")) == 3


def test_bench_landscape_measures_both_rates_and_projects_the_grid(tmp_path, capsys):
    """`resnet-repro bench-landscape`: images per second of the landscape's sweep and of plain
    evaluation on the same net and images, and the configured grid's projected time. Nothing
    is judged by its speed."""
    import yaml

    from resnet_repro.bench.landscape import grid_seconds
    from resnet_repro.cli.main import build_parser

    config = tmp_path / "study.yaml"
    config.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "download": False, "train_subset": 64},
                "device": {"device": "cpu", "cpu_threads": 1},
                "analysis": {"landscape_points": 7, "landscape_images": 50},
            }
        )
    )
    out = tmp_path / "landscape.json"
    args = build_parser().parse_args(
        ["bench-landscape", "--model", "plain8", "--config", str(config), "--images", "32"]
        + ["--batch-size", "16", "--points", "2", "--steps", "2", "--json", str(out)]
    )
    assert args.func(args) == 0
    result = json.loads(out.read_text())
    plain, land = result["plain evaluation"], result["landscape"]
    assert plain["images"] == 2 * 32 and land["images"] == 2 * 4 * 32  # 2 calls, 2 x 2 grid
    assert plain["images_per_second"] > 0 and land["images_per_second"] > 0
    assert result["landscape_vs_plain"] == pytest.approx(
        land["images_per_second"] / plain["images_per_second"]
    )
    p = result["projection"]
    assert (p["points"], p["images"]) == (7, 50)
    assert p["seconds"] == pytest.approx(grid_seconds(land["images_per_second"], 7, 50))
    assert grid_seconds(100.0, 7, 50) == pytest.approx((49 + 14) * 50 / 100.0)
    printed = capsys.readouterr().out
    assert "plain evaluation" in printed and "vs plain" in printed and "7 x 7 grid" in printed
    args = build_parser().parse_args(
        ["bench-landscape", "--model", "plain8", "--config", str(config), "--images", "65"]
    )
    with pytest.raises(ConfigError, match="65"):
        args.func(args)


def test_the_trainer_variant_trains_as_the_trainer_does(tmp_path):
    """The trainer variant runs the trainer's own loop (engine/loop.py): past an epoch's end
    and an lr milestone, the mean loss of its timed steps is the trainer's over the same
    iterations (read from one-iteration training windows)."""
    from resnet_repro import data as data_mod
    from resnet_repro.engine import run_setup
    from resnet_repro.engine import train as T

    study = study_from_dict(
        {
            **TINY,
            "train": {
                "batch_size": 16,
                "iterations": 12,
                "lr_milestones": [5],
                "window_iterations": 1,
            },
        }
    )
    cpu = CPU
    arrays, identity = run_setup.run_data(study, "resnet8", 0)
    dd = data_mod.to_device(arrays, cpu.device, study.data.normalization)
    # 4 steps an epoch. 5 warm-up steps and the one the operators are counted on, then
    # iterations 7 and 8 timed: in epoch 2 (the step's meter restarts at an epoch's start),
    # after the milestone at iteration 5.
    timing = bench.measure_trainer(dd, "resnet8", study, cpu, 16, 5, 2, 0)
    rows = T.train_run(study, "resnet8", 0, tmp_path / "c.pt", cpu, data=(arrays, identity)).rows
    losses = {r["iteration"]: r["train_loss"] for r in rows if r["kind"] == "window"}
    expected = (losses[7] + losses[8]) / 2
    assert timing["train_loss"] == pytest.approx(expected, rel=1e-9)
