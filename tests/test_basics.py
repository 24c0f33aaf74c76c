"""The torch-free helpers that `status`, the progress bar and the trainer share
(resnet_repro/basics.py): h:mm:ss, CUDA's reading of CUDA_VISIBLE_DEVICES, the GPUs the
driver shows, and the schedule's length."""

from __future__ import annotations

import subprocess
import sys

import pytest

from resnet_repro import basics
from resnet_repro.basics import cuda_visible_ids, gpus_from_env, hms


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (0, "0:00:00"),
        (0.4, "0:00:00"),
        (59.6, "0:01:00"),  # to the nearest second
        (3599, "0:59:59"),
        (3600, "1:00:00"),
        (302, "0:05:02"),
        (100 * 3600 + 61, "100:01:01"),  # hours never wrap into days
        (-5, "0:00:00"),
        (None, "?"),  # status: no rate yet
        (float("nan"), "?"),
        (float("inf"), "?"),
    ],
)
def test_hms(seconds, shown):
    assert hms(seconds) == shown


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("0", ["0"]),
        ("0,1", ["0", "1"]),
        (" 2 , 3 ", ["2", "3"]),  # CUDA skips the blanks around entries
        ("", []),  # set but empty: no GPU
        ("-1", []),
        ("NoDevFiles", []),  # SLURM's value for a job without GPUs
        ("0,-1,1", ["0"]),  # the list ends at the first entry that is not a device
        ("1,x,0", ["1"]),
        ("GPU-3b1c2d,MIG-7", ["GPU-3b1c2d", "MIG-7"]),
        ("GPU-3b1c2d,-1,0", ["GPU-3b1c2d"]),
    ],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(value, ids):
    assert cuda_visible_ids(value) == ids
    found = gpus_from_env({"CUDA_VISIBLE_DEVICES": value})
    assert found.ids == ids and repr(value) in found.source


def test_unset_cuda_visible_devices_leaves_it_to_the_driver():
    assert gpus_from_env({}) is None
    assert gpus_from_env({"OTHER": "0"}) is None


def test_status_and_the_trainer_count_the_same_gpus(monkeypatch):
    """`status` (no torch) and the engine read CUDA_VISIBLE_DEVICES by one rule: "-1" is no
    GPU in both (status used to count it as one)."""
    from resnet_repro.cli.status import gpus_here
    from resnet_repro.engine.devices import detect_gpus

    for value in ("-1", "", "0,1", "0,-1,1", "GPU-ab12"):
        env = {"CUDA_VISIBLE_DEVICES": value}
        assert gpus_here(env) == len(detect_gpus(env).ids) == len(cuda_visible_ids(value))


def test_the_driver_is_asked_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setattr(basics.shutil, "which", lambda name: None)
    proc = tmp_path / "a" / "proc/driver/nvidia/gpus"
    for i in range(2):
        (proc / f"0000:0{i}:00.0").mkdir(parents=True)
    found = basics.gpus_from_driver(tmp_path / "a")
    assert found.ids == ["0", "1"] and "/proc/driver/nvidia/gpus" in found.source
    dev = tmp_path / "b" / "dev"
    dev.mkdir(parents=True)
    for name in ("nvidia0", "nvidia1", "nvidia2", "nvidiactl", "nvidia-uvm"):
        (dev / name).write_text("")
    assert basics.gpus_from_driver(tmp_path / "b").ids == ["0", "1", "2"]
    assert basics.gpus_from_driver(tmp_path / "c") is None


def test_nvidia_smi_is_asked_first(tmp_path, monkeypatch):
    smi = tmp_path / "nvidia-smi"
    smi.write_text("#!/bin/sh\necho 'GPU 0: A (UUID: GPU-1)'\necho 'GPU 1: A (UUID: GPU-2)'\n")
    smi.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    found = basics.gpus_from_driver(tmp_path / "no-root")
    assert found.ids == ["0", "1"] and found.source == "nvidia-smi -L"
    smi.write_text("#!/bin/sh\nexit 9\n")  # a broken driver: the files decide
    assert basics.gpus_from_driver(tmp_path / "no-root") is None


def test_schedule_length():
    # section 4.2: 64k iterations whatever the set's size
    assert basics.total_iterations(64000, None, 45000, 128) == 64000
    # the ImageNet-style recipe: whole epochs of full batches
    assert basics.steps_per_epoch(50000, 128) == 390
    assert basics.total_iterations(None, 200, 50000, 128) == 200 * 390
    # a set smaller than one batch is one batch an epoch
    assert basics.steps_per_epoch(100, 128) == 1
    assert basics.total_iterations(None, 3, 100, 128) == 3
    with pytest.raises(ValueError, match="iterations or train.epochs"):
        basics.total_iterations(None, None, 100, 128)


def test_the_engine_and_runstate_count_schedules_alike():
    from dataclasses import asdict

    from resnet_repro.config import study_from_dict
    from resnet_repro.engine import schedule
    from resnet_repro.runstate import schedule_length

    for train in (
        {"iterations": 640, "lr_milestones": [320]},
        {"iterations": None, "epochs": 7, "lr_milestones": []},
    ):
        t = study_from_dict({"train": train, "study": {"shortcut": "B"}}).train
        for n_train in (50, 1000, 45000):
            assert schedule_length(asdict(t), n_train) == (
                schedule.total_iterations(t, n_train),
                schedule.steps_per_epoch(n_train, t.batch_size),
            )


def test_basics_imports_only_the_standard_library():
    code = (
        "import sys; import resnet_repro.basics; "
        "print(sorted(m for m in ('torch', 'numpy', 'pandas', 'resnet_repro.config') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
