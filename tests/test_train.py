"""The trainer: schedule, determinism, warm-up, divergence, checkpoints and real resume."""

import errno
import math
import signal
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import torch
import yaml
from conftest import CPU

from resnet_repro.config import run_identity, study_from_dict
from resnet_repro.engine import schedule as S
from resnet_repro.engine import train as T
from resnet_repro.engine.devices import Placement
from resnet_repro.engine.windows import TrainingWindows
from resnet_repro.results import METRICS_SCHEMA, read_all_metrics, read_metrics, write_metrics

TIMING = ["epoch_seconds", "images_per_second"]


def tiny(**overrides):
    """A tiny synthetic study: depth 8, 96 training images in batches of 32 (3 iterations per
    epoch), 64 test images."""
    cfg = {
        "data": {"source": "synthetic", "train_subset": 96, "test_subset": 64},
        "study": {"archs": ["plain", "resnet"], "depths": [8]},
        "train": {"batch_size": 32, "iterations": 8, "lr_milestones": [6], "eval_batch_size": 50},
        "device": {"device": "cpu"},
    }
    for section, values in overrides.items():
        cfg[section] = {**cfg.get(section, {}), **values}
    return cfg


def write_config(path: Path, cfg: dict) -> Path:
    path.write_text(yaml.safe_dump(cfg))
    return path


def epochs(result) -> list[dict]:
    """A run's epoch rows (its training-window rows left out)."""
    return [r for r in result.rows if r.get("kind", "epoch") == "epoch"]


def numbers(df: pd.DataFrame) -> pd.DataFrame:
    return df.drop(columns=TIMING).reset_index(drop=True)


# ------------------------------------------------------------------ pure schedule


def test_lr_schedule_is_the_papers():
    t = study_from_dict({}).train
    assert S.lr_at(0, t) == 0.1
    assert S.lr_at(31999, t) == 0.1
    assert math.isclose(S.lr_at(32000, t), 0.01)
    assert math.isclose(S.lr_at(47999, t), 0.01)
    assert math.isclose(S.lr_at(48000, t), 0.001)
    assert math.isclose(S.lr_at(63999, t), 0.001)
    assert S.lr_at(0, t, warming_up=True) == 0.01
    # The milestones hold whatever happens: a warm-up never outlasts the first one.
    assert math.isclose(S.lr_at(40000, t, warming_up=True), 0.01)
    assert math.isclose(S.lr_at(50000, t, warming_up=True), 0.001)


def test_warmup_only_for_deep_residual_nets():
    w = study_from_dict({}).train.warmup
    assert not S.warmup_applies("resnet", 56, w)
    assert S.warmup_applies("resnet", 110, w)
    assert S.warmup_applies("resnet", 1202, w)
    # Section 4.2 warms up the 110-layer ResNet; plain-110 keeps lr 0.1 from the start.
    assert not S.warmup_applies("plain", 110, w)
    both = study_from_dict({"train": {"warmup": {"archs": ["plain", "resnet"]}}}).train.warmup
    assert S.warmup_applies("plain", 110, both)
    off = study_from_dict({"train": {"warmup": {"min_depth": None}}}).train.warmup
    assert not S.warmup_applies("resnet", 1202, off)


def test_warmup_ends_below_threshold_at_the_cap_or_at_the_first_milestone():
    t = study_from_dict({"train": {"warmup": {"max_iterations": 1000}}}).train
    assert "below 80%" in S.warmup_end(400, 79.0, t)
    assert S.warmup_end(400, 85.0, t) is None
    assert S.warmup_end(401, None, t) is None
    assert "max_iterations" in S.warmup_end(1000, None, t)
    late = study_from_dict(
        {"train": {"lr_milestones": [500, 800], "warmup": {"max_iterations": 5000}}}
    ).train
    assert "milestone" in S.warmup_end(500, 90.0, late)


def test_steps_per_epoch_drop_the_last_partial_batch():
    assert S.steps_per_epoch(50000, 128) == 390
    assert S.steps_per_epoch(45000, 128) == 351
    assert S.steps_per_epoch(100, 128) == 1


def test_epoch_seed_differs_by_seed_and_epoch():
    seeds = {S.epoch_seed(s, e) for s in range(3) for e in range(1, 4)}
    assert len(seeds) == 9
    assert S.epoch_seed(1, 2) == S.epoch_seed(1, 2)


# ------------------------------------------------------------------ the loop


def run(tmp_path, cfg, model="resnet8", seed=0, name="ckpt.pt", warn=None):
    logs = []
    result = T.train_run(
        study_from_dict(cfg),
        model,
        seed,
        tmp_path / name,
        CPU,
        log=logs.append,
        warn=warn or logs.append,
    )
    return result, logs


def test_rows_per_epoch_plus_final_partial_epoch(tmp_path):
    result, logs = run(tmp_path, tiny())
    df = pd.DataFrame(epochs(result))
    assert list(df.columns) == [c for c in METRICS_SCHEMA.names if c in df.columns]
    assert set(METRICS_SCHEMA.names) <= set(df.columns)
    # 8 iterations of 3 per epoch: epochs end at 3, 6 and (partially) 8.
    assert df.iteration.tolist() == [3, 6, 8]
    assert df.epoch.tolist() == [1, 2, 3]
    assert df.lr.tolist() == pytest.approx([0.1, 0.1, 0.01])
    assert (df.status == "ok").all()
    assert df.val_error_pct.isna().all()
    assert df.test_error_pct.between(0, 100).all()
    assert len([m for m in logs if "| epoch " in m]) == 3
    for word in ("iter 8/8", "lr", "train loss", "test error", "img/s", "left"):
        assert word in logs[-1]


def test_same_config_and_seed_give_identical_metrics(tmp_path):
    a, _ = run(tmp_path, tiny(), name="a.pt")
    b, _ = run(tmp_path, tiny(), name="b.pt")
    c, _ = run(tmp_path, tiny(), seed=1, name="c.pt")
    assert numbers(pd.DataFrame(a.rows)).equals(numbers(pd.DataFrame(b.rows)))
    assert not numbers(pd.DataFrame(a.rows)).equals(numbers(pd.DataFrame(c.rows)))


def test_training_learns_the_synthetic_task(tmp_path):
    cfg = tiny(
        train={"iterations": 60, "lr_milestones": [50]},
        data={"train_subset": 256, "test_subset": 200},
    )
    result, _ = run(tmp_path, cfg)
    df = pd.DataFrame(epochs(result))
    assert df.train_loss.iloc[-1] < df.train_loss.iloc[0]
    assert df.test_error_pct.iloc[-1] < 60.0  # chance is 90%


def test_validation_split_gives_val_error(tmp_path):
    result, _ = run(tmp_path, tiny(data={"val_size": 32}))
    df = pd.DataFrame(epochs(result))
    assert df.val_error_pct.notna().all()
    assert df.val_loss.notna().all()
    assert result.data["n_val"] == 32


def test_warmup_holds_low_lr_until_error_below_threshold(tmp_path):
    never = tiny(
        train={"warmup": {"min_depth": 8, "until_train_error_pct": 0.001, "check_every": 1}}
    )
    result, _ = run(tmp_path, never, name="never.pt")
    # Held until the first milestone (6), then the schedule's 0.01 anyway.
    assert [r["lr"] for r in epochs(result)] == pytest.approx([0.01, 0.01, 0.01])
    assert result.warmup["ended_at_iteration"] == 6
    assert "milestone" in result.warmup["reason"]
    at_once = tiny(
        train={"warmup": {"min_depth": 8, "until_train_error_pct": 100, "check_every": 1}}
    )
    result, logs = run(tmp_path, at_once, name="once.pt")
    # The first check whose batch is not entirely wrong ends the warm-up; by epoch 2 the
    # rate is back to 0.1 until the milestone.
    assert any("warm-up ends at iteration" in m for m in logs)
    assert [r["lr"] for r in epochs(result)][1:] == pytest.approx([0.1, 0.01])
    assert result.warmup["applied"] and result.warmup["ended_at_iteration"] <= 3


def test_warmup_is_not_applied_to_plain_nets(tmp_path):
    cfg = tiny(train={"warmup": {"min_depth": 8, "until_train_error_pct": 0.001}})
    result, _ = run(tmp_path, cfg, model="plain8")
    assert [r["lr"] for r in epochs(result)] == pytest.approx([0.1, 0.1, 0.01])
    assert result.warmup == {"applied": False, "ended_at_iteration": None, "reason": None}


def test_warmup_cap_ends_it_and_says_so(tmp_path):
    cfg = tiny(
        train={
            "iterations": 12,
            "lr_milestones": [11],
            "warmup": {
                "min_depth": 8,
                "until_train_error_pct": 0.001,
                "check_every": 2,
                "max_iterations": 4,
            },
        }
    )
    result, logs = run(tmp_path, cfg)
    assert result.warmup["ended_at_iteration"] == 4
    assert any("warm-up ends at iteration 4" in m and "max_iterations" in m for m in logs)
    # Epoch 1 (iterations 1-3) warms up; epoch 2 ends at lr 0.1.
    assert [r["lr"] for r in epochs(result)][:2] == pytest.approx([0.01, 0.1])


def test_warmup_window_runs_across_epoch_boundaries(tmp_path, monkeypatch):
    # 3 iterations per epoch, a check every 4: the second window holds iterations 5-8, which
    # span epochs 2 and 3, and its error is over all 4 of them.
    cfg = tiny(
        train={
            "iterations": 9,
            "lr_milestones": [],
            "warmup": {
                "min_depth": 8,
                "until_train_error_pct": 0.001,
                "check_every": 4,
                "max_iterations": 100,
            },
        }
    )
    windows = []
    original = S.WarmupState.step

    def spy(self, iteration, batch_wrong, n, *args):
        seen = self.seen + n
        reason = original(self, iteration, batch_wrong, n, *args)
        if iteration % 4 == 0:
            windows.append((iteration, seen))
        return reason

    monkeypatch.setattr(S.WarmupState, "step", spy)
    run(tmp_path, cfg)
    assert windows == [(4, 4 * 32), (8, 4 * 32)]


class Stop(Exception):
    pass


def test_resumed_warmup_matches_an_uninterrupted_one(tmp_path):
    cfg = tiny(
        train={
            "iterations": 12,
            "lr_milestones": [11],
            "warmup": {
                "min_depth": 8,
                "until_train_error_pct": 0.001,
                "check_every": 4,
                "max_iterations": 7,
            },
        }
    )
    full, _ = run(tmp_path, cfg, name="full.pt")

    def stop_in_epoch_3(msg):  # epoch 2's checkpoint (iteration 6, mid-window) is saved
        if "| epoch 3 |" in msg:
            raise Stop

    with pytest.raises(Stop):
        T.train_run(
            study_from_dict(cfg),
            "resnet8",
            0,
            tmp_path / "part.pt",
            CPU,
            log=stop_in_epoch_3,
            warn=lambda m: None,
        )
    state = torch.load(tmp_path / "part.pt", weights_only=True)
    assert state["iteration"] == 6 and state["warmup"]["window_seen"] == 2 * 32
    resumed, _ = run(tmp_path, cfg, name="part.pt")
    assert resumed.resumed_at_iteration == 6
    assert resumed.warmup == full.warmup and resumed.warmup["ended_at_iteration"] == 7
    assert numbers(pd.DataFrame(resumed.rows)).equals(numbers(pd.DataFrame(full.rows)))


# ------------------------------------------------------------------ training windows


def test_training_windows_sum_steps_over_fixed_iterations_and_resume_exactly():
    def feed(windows, iterations):
        out = []
        for i in iterations:  # step i: loss i, 1 wrong of 2 images on even steps
            windows.loss_sum.add_(float(i) * 2)  # what TrainStep adds into its meters
            windows.wrong.add_(int(i % 2 == 0))
            row = windows.advance(2, i, end=8)
            out += [row] if row else []
        return out

    rows = feed(TrainingWindows(3, torch.device("cpu"), 0), range(1, 9))
    assert [r["iteration"] for r in rows] == [3, 6, 8]  # the last window ends with the run
    assert [r["window_iterations"] for r in rows] == [3, 3, 2]
    assert [r["train_loss"] for r in rows] == pytest.approx([2.0, 5.0, 7.5])
    assert [r["train_error_pct"] for r in rows] == pytest.approx([100 / 6, 200 / 6, 25.0])
    assert all(r["kind"] == "window" and r["status"] == "ok" for r in rows)
    # a checkpoint in the middle of a window carries it on
    first = TrainingWindows(3, torch.device("cpu"), 0)
    part = feed(first, range(1, 5))
    resumed = TrainingWindows(3, torch.device("cpu"), 4, state=first.to_state())
    assert part + feed(resumed, range(5, 9)) == rows
    # an older checkpoint without window state: a shorter first window from the resume
    old = feed(TrainingWindows(3, torch.device("cpu"), 4, state=None), range(5, 9))
    assert [(r["iteration"], r["window_iterations"]) for r in old] == [(6, 2), (8, 2)]
    with pytest.raises(ValueError, match="at least 1"):
        TrainingWindows(0, torch.device("cpu"), 0)


def test_the_trainer_logs_windows_across_epochs_and_resumes_them(tmp_path):
    cfg = tiny(train={"iterations": 12, "lr_milestones": [11], "window_iterations": 2})
    full, _ = run(tmp_path, cfg, name="full.pt")
    df = pd.DataFrame(full.rows)
    w = df[df["kind"] == "window"]
    assert w["iteration"].tolist() == [2, 4, 6, 8, 10, 12]  # 3 iterations per epoch
    assert (w["window_iterations"] == 2).all() and w["test_error_pct"].isna().all()
    assert w["epoch"].tolist() == [1, 2, 2, 3, 4, 4]
    e = df[df["kind"] == "epoch"]
    assert (e["window_iterations"] == 3).all()
    # both kinds cover every step once: their step-weighted mean errors agree
    mean = lambda r: (r["train_error_pct"] * r["window_iterations"]).sum() / 12  # noqa: E731
    assert mean(w) == pytest.approx(mean(e))

    def stop_in_epoch_3(msg):  # epoch 2's checkpoint (iteration 6) is saved
        if "| epoch 3 |" in msg:
            raise Stop

    cfg5 = tiny(train={"iterations": 12, "lr_milestones": [11], "window_iterations": 5})
    full5, _ = run(tmp_path, cfg5, name="full5.pt")
    with pytest.raises(Stop):
        T.train_run(
            study_from_dict(cfg5), "resnet8", 0, tmp_path / "p.pt", CPU, log=stop_in_epoch_3
        )
    state = torch.load(tmp_path / "p.pt", weights_only=True)
    assert state["iteration"] == 6 and state["window"]["start"] == 5  # mid-window
    resumed, _ = run(tmp_path, cfg5, name="p.pt")
    assert numbers(pd.DataFrame(resumed.rows)).equals(numbers(pd.DataFrame(full5.rows)))
    assert [r["iteration"] for r in resumed.rows if r["kind"] == "window"] == [5, 10, 12]


def test_metrics_files_hold_both_kinds_and_older_files_read_as_epochs(tmp_path):
    result, _ = run(tmp_path, tiny(train={"window_iterations": 4}))
    write_metrics(result.rows, tmp_path / "m.parquet")
    assert read_metrics(tmp_path / "m.parquet")["iteration"].tolist() == [3, 6, 8]
    both = read_all_metrics([tmp_path / "m.parquet"], windows=True)
    assert sorted(both["kind"]) == ["epoch"] * 3 + ["window"] * 2
    # a file written before windows existed: no kind, no window_iterations
    old = pd.DataFrame(epochs(result)).drop(columns=["kind", "window_iterations"])
    pq.write_table(pa.Table.from_pandas(old, preserve_index=False), tmp_path / "old.parquet")
    back = read_all_metrics([tmp_path / "old.parquet"], windows=True)
    assert (back["kind"] == "epoch").all() and back["window_iterations"].isna().all()
    assert back["iteration"].tolist() == [3, 6, 8]
    # rows of an older checkpoint (no kind) are written as epoch rows
    write_metrics(old.to_dict("records"), tmp_path / "again.parquet")
    assert (read_all_metrics([tmp_path / "again.parquet"])["kind"] == "epoch").all()


def test_window_length_is_not_part_of_a_runs_identity():
    a = run_identity(study_from_dict(tiny()), "resnet8", 0, "fp")
    b = run_identity(study_from_dict(tiny(train={"window_iterations": 7})), "resnet8", 0, "fp")
    assert a == b


def test_non_finite_loss_stops_the_run_as_diverged(tmp_path):
    result, logs = run(tmp_path, tiny(train={"lr": 1e12, "iterations": 30, "lr_milestones": []}))
    assert result.status == "diverged"
    assert epochs(result)[-1]["status"] == "diverged"
    assert epochs(result)[-1]["iteration"] < 30
    assert any("non-finite" in m for m in logs)


# ------------------------------------------------------------------ checkpoints


def test_corrupt_checkpoint_warns_and_starts_afresh(tmp_path):
    ref, _ = run(tmp_path, tiny(), name="ref.pt")
    bad = tmp_path / "bad.pt"
    bad.write_bytes(b"\x80\x02 this is not a checkpoint")
    warnings = []
    result, _ = run(tmp_path, tiny(), name="bad.pt", warn=warnings.append)
    assert any("unreadable" in w and "afresh" in w for w in warnings)
    assert numbers(pd.DataFrame(result.rows)).equals(numbers(pd.DataFrame(ref.rows)))


def test_truncated_checkpoint_warns_and_starts_afresh(tmp_path):
    cfg = tiny()
    run(tmp_path, cfg, name="full.pt")
    data = (tmp_path / "full.pt").read_bytes()
    (tmp_path / "cut.pt").write_bytes(data[: len(data) // 2])
    warnings = []
    result, logs = run(tmp_path, cfg, name="cut.pt", warn=warnings.append)
    assert any("unreadable" in w for w in warnings)
    assert not any("resuming" in m for m in logs)
    assert len(epochs(result)) == 3


def test_checkpoint_of_another_config_is_not_resumed(tmp_path):
    run(tmp_path, tiny())
    warnings = []
    result, logs = run(tmp_path, tiny(train={"lr": 0.05}), warn=warnings.append)
    assert any("different run config" in w for w in warnings)
    assert not any("resuming" in m for m in logs)
    assert result.resumed_at_iteration == 0


def test_a_batch_larger_than_the_training_set_is_refused_in_one_line(tmp_path):
    """Else every step would be one batch of all 96 images while run.json said 128."""
    from resnet_repro.data import DataError

    with pytest.raises(DataError) as caught:
        run(tmp_path, tiny(train={"batch_size": 128}))
    assert "train.batch_size = 128" in str(caught.value)
    assert "96 training images" in str(caught.value) and "\n" not in str(caught.value)
    assert not (tmp_path / "ckpt.pt").exists()
    # The command says it in one line, before training; a real CIFAR-10 folder holding fewer
    # images than data.train_subset asks for is caught there too.
    cfg = write_config(tmp_path / "c.yaml", tiny(train={"batch_size": 128}))
    r = cli(["train", "--config", cfg, "--model", "plain8", "--seed", 0, "--out", tmp_path / "r"])
    assert r.returncode == 2 and "Traceback" not in r.stderr
    (line,) = r.stderr.strip().splitlines()
    assert line.startswith("resnet-repro: error: train.batch_size = 128 is larger than the 96")
    assert not (tmp_path / "r" / "metrics.parquet").exists()


def test_finished_checkpoint_resumes_to_the_same_rows(tmp_path):
    first, _ = run(tmp_path, tiny())
    again, logs = run(tmp_path, tiny())
    assert any("resuming" in m for m in logs)
    assert again.resumed_at_iteration == 8
    assert numbers(pd.DataFrame(again.rows)).equals(numbers(pd.DataFrame(first.rows)))


# ------------------------------------------------------------------ the command


def cli(args, **kw):
    return subprocess.run(
        [sys.executable, "-m", "resnet_repro", *map(str, args)],
        capture_output=True,
        text=True,
        **kw,
    )


def test_train_command_writes_the_run_files(tmp_path):
    cfg = write_config(tmp_path / "c.yaml", tiny())
    out = tmp_path / "run"
    r = cli(["train", "--config", cfg, "--model", "plain8", "--seed", 0, "--out", out])
    assert r.returncode == 0, r.stderr
    df = read_metrics(out / "metrics.parquet")
    assert df.model.unique().tolist() == ["plain8"]
    assert df.iteration.tolist() == [3, 6, 8]
    import json

    info = json.loads((out / "run.json").read_text())
    assert info["status"] == "ok" and info["parameters"] > 0
    assert {"torch", "python"} <= set(info["versions"])
    assert info["device"].startswith("CPU")
    weights = torch.load(out / "model.pt", weights_only=True)
    assert weights["identity"]["model"] == "plain8"
    assert not (out / "checkpoint" / "state.pt").exists()
    assert "epoch 3" in r.stdout and "test error" in r.stdout


def test_a_finished_run_whose_outputs_were_removed_is_put_back_without_training(tmp_path):
    """What snakemake --rerun-incomplete does to a run that finished after Snakemake itself
    was killed: delete its outputs and start the job again. The job puts the finished run's
    outputs back (same identity) instead of training from iteration 0."""
    cfg = write_config(tmp_path / "c.yaml", tiny())
    out = tmp_path / "run"
    args = ["train", "--config", cfg, "--model", "plain8", "--seed", 0, "--out", out]
    assert cli(args).returncode == 0
    names = ("metrics.parquet", "model.pt", "run.json")
    before = {n: (out / n).read_bytes() for n in names}
    for n in names:
        (out / n).unlink()
    r = cli(args)
    assert r.returncode == 0, r.stderr
    assert "| epoch" not in r.stdout and "without training" in r.stdout
    assert {n: (out / n).read_bytes() for n in names} == before
    # Another recipe is another run: it trains, and its outputs are the ones kept after.
    other = write_config(tmp_path / "o.yaml", tiny(train={"lr": 0.05}))
    r = cli(["train", "--config", other, *args[3:]])
    assert r.returncode == 0 and "| epoch 3 |" in r.stdout
    assert (out / "metrics.parquet").read_bytes() != before["metrics.parquet"]
    (out / "metrics.parquet").unlink()
    r = cli(args)  # the first recipe again: nothing of it is kept any more, so it trains
    assert r.returncode == 0 and "| epoch 3 |" in r.stdout


def test_train_command_help_explains_every_option():
    r = cli(["train", "--help"])
    assert r.returncode == 0
    for opt in ("--config", "--model", "--seed", "--out", "--lock-timeout"):
        assert opt in r.stdout


@pytest.mark.parametrize(
    "args, words",
    [
        (["--model", "resnet21"], ["resnet21", "6n+2"]),
        (["--model", "vgg20"], ["vgg20", "plain", "resnet"]),
    ],
)
def test_train_command_bad_arguments_one_line_error(tmp_path, args, words):
    cfg = write_config(tmp_path / "c.yaml", tiny())
    r = cli(["train", "--config", cfg, "--seed", 0, "--out", tmp_path / "run", *args])
    assert r.returncode == 2
    err = r.stderr.strip()
    assert "\n" not in err and "Traceback" not in err
    for w in words:
        assert w in err
    assert not (tmp_path / "run").exists()


def test_train_command_missing_data_one_line_error(tmp_path):
    cfg = write_config(
        tmp_path / "c.yaml",
        tiny(data={"source": "cifar10", "download": False, "root": str(tmp_path / "nodata")}),
    )
    r = cli(
        ["train", "--config", cfg, "--model", "resnet8", "--seed", 0, "--out", tmp_path / "run"]
    )
    assert r.returncode == 2
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1
    assert "cifar-10-batches-py" in r.stderr
    assert not (tmp_path / "run" / "metrics.parquet").exists()


def test_killed_training_resumes_and_matches_an_uninterrupted_run(tmp_path):
    # Long enough (40 epochs) that the kill lands mid-run, after the first checkpoint.
    cfg = write_config(tmp_path / "c.yaml", tiny(train={"iterations": 120, "lr_milestones": [60]}))
    args = ["train", "--config", cfg, "--model", "resnet8", "--seed", 3]
    killed = tmp_path / "killed"
    proc = subprocess.Popen(
        [sys.executable, "-m", "resnet_repro", *map(str, args), "--out", str(killed)],
        stdout=subprocess.PIPE,
        text=True,
    )
    for line in proc.stdout:  # the progress line follows each checkpoint...
        if "| epoch 2 |" in line:  # ...so epoch 1's checkpoint is on disk by now
            break
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    assert proc.returncode == -signal.SIGKILL
    assert (killed / "checkpoint" / "state.pt").exists()
    assert not (killed / "metrics.parquet").exists()

    resumed = cli([*args, "--out", killed])
    assert resumed.returncode == 0, resumed.stderr
    assert "resuming resnet8 seed 3 from iteration" in resumed.stdout
    fresh = cli([*args, "--out", tmp_path / "fresh"])
    assert fresh.returncode == 0, fresh.stderr
    a = numbers(read_metrics(killed / "metrics.parquet"))
    b = numbers(read_metrics(tmp_path / "fresh" / "metrics.parquet"))
    assert len(a) == 40
    pd.testing.assert_frame_equal(a, b)


# ------------------------------------------------------------------ precision and resume


def test_evaluation_is_fp32_whatever_the_training_precision():
    # bf16 autocast on the CPU stands in for CUDA's: evaluation must not use it.
    torch.manual_seed(0)
    from resnet_repro.nets.families import build_model

    model = build_model("resnet8")
    x = torch.randint(0, 256, (200, 3, 32, 32), dtype=torch.uint8)
    y = torch.randint(0, 10, (200,))
    mean = torch.rand(3, 32, 32)
    bf16 = Placement(
        device=torch.device("cpu"),
        precision="bf16",
        channels_last=False,
        compile="eager",
        fused_optimizer=False,
        name="cpu",
    )
    assert T.evaluate(model, x, y, mean, 64, bf16) == T.evaluate(model, x, y, mean, 64, CPU)


def test_resume_keeps_this_placements_optimizer_implementation():
    from resnet_repro.engine.resume import restore_optimizer

    params = [torch.nn.Parameter(torch.randn(3))]
    saved_opt = torch.optim.SGD(params, lr=0.1, momentum=0.9, fused=True)
    params[0].grad = torch.ones(3)
    saved_opt.step()
    saved = saved_opt.state_dict()
    assert saved["param_groups"][0]["fused"] is True
    here = torch.optim.SGD(params, lr=0.1, momentum=0.9, foreach=True)
    restore_optimizer(here, saved, CPU)
    assert here.param_groups[0]["foreach"] is True and not here.param_groups[0]["fused"]
    assert torch.equal(
        here.state[params[0]]["momentum_buffer"], saved["state"][0]["momentum_buffer"]
    )


def test_every_resume_is_recorded_and_a_change_of_numeric_settings_is_said(tmp_path):
    cfg = tiny()

    def stop_in_epoch_2(msg):
        if "| epoch 2 |" in msg:
            raise Stop

    with pytest.raises(Stop):
        T.train_run(
            study_from_dict(cfg),
            "resnet8",
            0,
            tmp_path / "c.pt",
            CPU,
            log=stop_in_epoch_2,
            warn=lambda m: None,
        )
    threads = torch.get_num_threads()
    torch.set_num_threads(threads + 1)
    try:
        warnings = []
        result, _ = run(tmp_path, cfg, name="c.pt", warn=warnings.append)
        # A resume with the same settings as the last part says nothing.
        quiet = []
        again, _ = run(tmp_path, cfg, name="c.pt", warn=quiet.append)
    finally:
        torch.set_num_threads(threads)
    assert [s["from_iteration"] for s in result.sessions] == [0, 3]
    assert [s["threads"] for s in result.sessions] == [threads, threads + 1]
    assert all(s["device"] == "cpu" and s["precision"] == "fp32" for s in result.sessions)
    assert any(f"threads {threads} -> {threads + 1}" in w for w in warnings)
    assert len(again.sessions) == 3 and not quiet


@pytest.mark.parametrize("where", ["proc", "file"])
def test_train_command_refuses_an_unwritable_out_before_training(tmp_path, where):
    cfg = write_config(tmp_path / "c.yaml", tiny())
    if where == "proc":
        out = Path("/proc/resnet-repro-test/run")
    else:
        (tmp_path / "afile").write_text("x")
        out = tmp_path / "afile" / "run"
    r = cli(["train", "--config", cfg, "--model", "resnet8", "--seed", 0, "--out", out])
    assert r.returncode == 2
    err = r.stderr.strip()
    assert len(err.splitlines()) == 1 and "Traceback" not in err
    assert str(out) in err and "cannot be written" in err
    assert "epoch" not in r.stdout


def test_run_json_records_the_warmup_and_each_session(tmp_path):
    import json

    cfg = write_config(
        tmp_path / "c.yaml",
        tiny(train={"warmup": {"min_depth": 8, "until_train_error_pct": 100, "check_every": 1}}),
    )
    out = tmp_path / "run"
    r = cli(["train", "--config", cfg, "--model", "resnet8", "--seed", 0, "--out", out])
    assert r.returncode == 0, r.stderr
    info = json.loads((out / "run.json").read_text())
    assert info["warmup"]["applied"] is True
    assert 1 <= info["warmup"]["ended_at_iteration"] <= 3
    assert [s["from_iteration"] for s in info["sessions"]] == [0]
    assert info["sessions"][0]["device"] == "cpu"
    assert "device: CPU" in r.stdout and "device.device is cpu" in r.stdout


# ------------------------------------------------------------------ a full disk

NO_SPACE = OSError(errno.ENOSPC, "No space left on device")
# What torch.save raises on a full disk: nothing in it says "space".
TORCH_FULL = RuntimeError("[enforce fail at inline_container.cc:672] . unexpected pos 704 vs 598")


def _fill_then(error):
    """A writer that puts a few bytes into the file it was given, then fails with `error`,
    as a write does when the disk fills up under it."""

    def write(*args, **kwargs):
        target = next(a for a in (*args, *kwargs.values()) if isinstance(a, (str, Path)))
        Path(target).write_bytes(b"partial")
        raise error

    return write


def _writers(monkeypatch):
    """(name, patch that makes this writer fail as on a full disk, the write) per writer."""
    import json as json_mod

    import matplotlib.figure
    import matplotlib.pyplot as plt
    import pyarrow.parquet as pq

    from resnet_repro import results
    from resnet_repro.figures.style import save_figure

    rows = [
        T.metrics_row(
            {"model": "resnet8", "arch": "resnet", "depth": 8, "shortcut": "A", "seed": 0},
            epoch=1,
            iteration=1,
            lr=0.1,
            train_loss=1.0,
            train_error_pct=1.0,
            val_loss=None,
            val_error_pct=None,
            test_loss=1.0,
            test_error_pct=1.0,
            epoch_seconds=1.0,
            images_per_second=1.0,
            status="ok",
        )
    ]

    def json_full(obj, f, **kw):
        f.write("{")
        raise NO_SPACE

    real_write_text = Path.write_text

    def text_full(self, *a, **kw):
        real_write_text(self, "part")
        raise NO_SPACE

    return {
        "metrics.parquet": (
            lambda: monkeypatch.setattr(pq, "write_table", _fill_then(NO_SPACE)),
            lambda p: results.write_metrics(rows, p),
        ),
        "run.json": (
            lambda: monkeypatch.setattr(json_mod, "dump", json_full),
            lambda p: results.write_json({"a": 1}, p),
        ),
        "table.md": (
            lambda: monkeypatch.setattr(Path, "write_text", text_full),
            lambda p: results.write_text("| a |", p),
        ),
        "model.pt": (
            lambda: monkeypatch.setattr(torch, "save", _fill_then(TORCH_FULL)),
            lambda p: results.save_torch({"w": torch.zeros(3)}, p),
        ),
        "figure.png": (
            lambda: monkeypatch.setattr(matplotlib.figure.Figure, "savefig", _fill_then(NO_SPACE)),
            lambda p: save_figure(plt.figure(), p),
        ),
    }


@pytest.mark.parametrize(
    "name", ["metrics.parquet", "run.json", "table.md", "model.pt", "figure.png"]
)
def test_a_full_disk_turns_every_result_write_into_one_line(tmp_path, monkeypatch, name):
    from resnet_repro.results import ResultError

    patch, write = _writers(monkeypatch)[name]
    target = tmp_path / "out" / name
    write(target)  # a good earlier version
    before = target.read_bytes()
    patch()
    with pytest.raises(ResultError) as caught:
        write(target)
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(f"cannot write {target}: ")
    assert "no space left on device" in message or "a full disk" in message
    assert f"free in {target.parent}" in message and "free some space" in message
    assert target.read_bytes() == before  # the earlier version is intact
    assert not list(target.parent.glob(".*.tmp"))  # the temporary file is gone


def test_a_full_disk_during_training_ends_in_one_line_and_the_rerun_resumes(
    tmp_path, monkeypatch, capsys
):
    from resnet_repro.cli.main import main

    cfg = write_config(tmp_path / "c.yaml", tiny())
    out = tmp_path / "run"
    real_save, saves = torch.save, []

    def full_after_the_first_checkpoint(obj, f, *args, **kwargs):
        saves.append(f)
        if len(saves) == 1:
            return real_save(obj, f, *args, **kwargs)
        return _fill_then(TORCH_FULL)(f)

    monkeypatch.setattr(torch, "save", full_after_the_first_checkpoint)
    argv = ["train", "--config", str(cfg), "--model", "resnet8", "--seed", "0", "--out", str(out)]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "Traceback" not in err
    (line,) = [x for x in err.splitlines() if x.startswith("resnet-repro: error")]
    state = out / "checkpoint" / "state.pt"
    assert line.startswith(f"resnet-repro: error: cannot write {state}: ")
    assert "free in" in line and "run the same command again" in line
    assert not list(state.parent.glob(".*.tmp"))
    monkeypatch.undo()
    again = cli(argv)
    assert again.returncode == 0, again.stderr
    assert "resuming resnet8 seed 0 from iteration 3" in again.stdout
