"""Device choice and the GPU slot lock, exercised on CPU with real processes."""

import os
import signal
import stat
import subprocess
import sys
import textwrap

import pytest
import torch
from conftest import CPU

from resnet_repro import basics
from resnet_repro.config import ConfigError, study_from_dict
from resnet_repro.engine import cpu_cost, devices, gpu_slots

# The trainer's own progress.json writer, imported before any test patches
# results.write_json: the slot test below counts the command's writes, not the trainer's.
from resnet_repro.engine import progress as _progress  # noqa: F401


def test_visible_gpu_ids_follow_cuda_visible_devices():
    assert devices.visible_gpu_ids({"CUDA_VISIBLE_DEVICES": "2,3"}) == ["2", "3"]
    assert devices.visible_gpu_ids({"CUDA_VISIBLE_DEVICES": ""}) == []
    assert devices.visible_gpu_ids({"CUDA_VISIBLE_DEVICES": "GPU-ab12"}) == ["GPU-ab12"]


def test_auto_is_cpu_without_gpu_and_cuda_with_one():
    assert devices.resolve_device_type("auto", []) == "cpu"
    assert devices.resolve_device_type("cpu", ["0"]) == "cpu"
    if torch.backends.cuda.is_built():
        assert devices.resolve_device_type("auto", ["0"]) == "cuda"
    with pytest.raises(ConfigError, match="device.device"):
        devices.resolve_device_type("cuda", [])


def test_precision_fp32_on_cpu_bf16_default_on_cuda():
    assert devices.resolve_precision("auto", "cpu") == "fp32"
    assert devices.resolve_precision("auto", "cuda") == "bf16"
    assert devices.resolve_precision("fp32", "cuda") == "fp32"
    with pytest.raises(ConfigError, match="device.precision"):
        devices.resolve_precision("bf16", "cpu")


def test_place_on_cpu_takes_no_slot(tmp_path):
    cfg = study_from_dict({"device": {"device": "cpu", "lock_dir": str(tmp_path)}}).device
    placement, slot = devices.place(cfg)
    assert slot is None
    assert placement.device.type == "cpu"
    assert placement.precision == "fp32"
    assert not placement.channels_last and not placement.fused_optimizer
    assert list(tmp_path.iterdir()) == []


def test_slots_spread_over_gpus_before_packing(tmp_path):
    held = [gpu_slots.try_acquire_gpu_slot(["0", "1"], 2, tmp_path) for _ in range(4)]
    assert [(s.gpu_id, s.slot) for s in held] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert gpu_slots.try_acquire_gpu_slot(["0", "1"], 2, tmp_path) is None
    held[1].release()
    again = gpu_slots.try_acquire_gpu_slot(["0", "1"], 2, tmp_path)
    assert (again.gpu_id, again.slot) == ("1", 0)
    for s in held + [again]:
        s.release()


def test_acquire_times_out_when_all_slots_taken(tmp_path):
    s = gpu_slots.try_acquire_gpu_slot(["0"], 1, tmp_path)
    with pytest.raises(TimeoutError, match="no free GPU slot"):
        gpu_slots.acquire_gpu_slot(
            ["0"], 1, tmp_path, timeout=0, poll_seconds=0.01, log=lambda m: None
        )
    s.release()


HOLDER = textwrap.dedent("""
    import sys, time
    from resnet_repro.engine.gpu_slots import acquire_gpu_slot
    slot = acquire_gpu_slot(["0", "1"], 1, sys.argv[1], poll_seconds=0.05,
                            log=lambda m: print("waiting", flush=True))
    print("got", slot.gpu_id, flush=True)
    time.sleep(600)
""")


def _start(lock_dir):
    return subprocess.Popen(
        [sys.executable, "-c", HOLDER, str(lock_dir)], stdout=subprocess.PIPE, text=True
    )


def test_processes_never_share_a_gpu_and_a_killed_holder_frees_its_slot(tmp_path):
    procs = []
    try:
        a, b = _start(tmp_path), _start(tmp_path)
        procs += [a, b]
        got_a, got_b = a.stdout.readline().split(), b.stdout.readline().split()
        assert {got_a[1], got_b[1]} == {"0", "1"}
        c = _start(tmp_path)
        procs.append(c)
        assert c.stdout.readline().strip() == "waiting"
        a.send_signal(signal.SIGKILL)  # the kernel drops the dead process's lock
        a.wait()
        assert c.stdout.readline().split() == ["got", got_a[1]]
    finally:
        for p in procs:
            p.kill()
            p.wait()


# ------------------------------------------------------------------ shared machines


def test_lock_folder_and_files_are_usable_by_every_user(tmp_path):
    lock_dir = tmp_path / "locks"
    old = os.umask(0o077)  # a user whose files are private by default
    try:
        slot = gpu_slots.try_acquire_gpu_slot(["0"], 1, lock_dir)
    finally:
        os.umask(old)
    assert stat.S_IMODE(lock_dir.stat().st_mode) == 0o1777
    assert stat.S_IMODE(slot.path.stat().st_mode) == 0o666
    slot.release()


def test_a_lock_folder_permission_problem_is_one_line_naming_the_folder(tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(gpu_slots.os, "open", denied)
    with pytest.raises(ConfigError) as e:
        gpu_slots.try_acquire_gpu_slot(["0"], 1, tmp_path)
    msg = str(e.value)
    assert str(tmp_path) in msg and "device.lock_dir" in msg and "Permission denied" in msg


SLURM_ENV = {
    "SLURM_JOB_ID": "4242",
    "SLURM_JOB_GPUS": "3",
    "SLURM_GPUS_ON_NODE": "1",
    "CUDA_VISIBLE_DEVICES": "0",
}


def test_slurm_assigned_gpus_are_recognised():
    assert gpu_slots.scheduler_assigned_gpus(SLURM_ENV) == "4242"
    assert gpu_slots.scheduler_assigned_gpus({"CUDA_VISIBLE_DEVICES": "0"}) is None
    no_gpus = {k: v for k, v in SLURM_ENV.items() if "GPU" not in k}
    assert gpu_slots.scheduler_assigned_gpus(no_gpus) is None


@pytest.fixture
def fake_cuda(monkeypatch):
    """CUDA calls answered as on a machine with a GPU, so place() runs its CUDA branch."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_initialized", lambda: False)
    monkeypatch.setattr(torch.cuda, "get_device_name", lambda d=None: "Fake GPU")
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "0")  # restored after the test


def test_slurm_jobs_sharing_a_node_never_wait_for_each_others_lock(tmp_path, fake_cuda):
    cfg = study_from_dict({"device": {"device": "cuda", "lock_dir": str(tmp_path)}}).device
    # Another job of the node holds the lock file of "GPU 0" (its own GPU, seen as 0).
    other = gpu_slots.try_acquire_gpu_slot(["0"], 1, tmp_path)
    logs = []
    placement, slot = devices.place(cfg, log=logs.append, lock_timeout=0, env=SLURM_ENV)
    assert slot is None and placement.device.type == "cuda"
    assert "SLURM job 4242" in placement.name
    assert any("SLURM assigned it" in m for m in logs)
    # Outside SLURM the same situation waits for the slot (here: times out at once).
    with pytest.raises(TimeoutError):
        devices.place(cfg, log=logs.append, lock_timeout=0, env={"CUDA_VISIBLE_DEVICES": "0"})
    other.release()


def _fake_root(tmp_path, proc_gpus=0, dev_nodes=0):
    root = tmp_path / "root"
    (root / "dev").mkdir(parents=True)
    (root / "dev" / "nvidiactl").write_text("")
    for i in range(proc_gpus):
        (root / "proc/driver/nvidia/gpus" / f"0000:0{i}:00.0").mkdir(parents=True)
    for i in range(dev_nodes):
        (root / "dev" / f"nvidia{i}").write_text("")
    return root


def test_gpus_are_found_without_nvidia_smi(tmp_path, monkeypatch):
    monkeypatch.setattr(basics.shutil, "which", lambda name: None)
    monkeypatch.setattr(torch.backends.cuda, "is_built", lambda: True)
    found = devices.detect_gpus({}, root=_fake_root(tmp_path / "a", proc_gpus=2))
    assert found.ids == ["0", "1"] and "/proc/driver/nvidia/gpus" in found.source
    found = devices.detect_gpus({}, root=_fake_root(tmp_path / "b", dev_nodes=3))
    assert found.ids == ["0", "1", "2"] and "nvidiaN" in found.source
    found = devices.detect_gpus({}, root=_fake_root(tmp_path / "c"))
    assert found.ids == [] and "no NVIDIA driver" in found.source


def test_place_says_which_device_trains_and_why(monkeypatch):
    monkeypatch.setattr(
        devices,
        "detect_gpus",
        lambda env=None, root="/": devices.GpuDetection([], "no NVIDIA driver"),
    )
    logs, warnings = [], []
    cfg = study_from_dict({"device": {"device": "auto"}}).device
    placement, slot = devices.place(cfg, log=logs.append, warn=warnings.append, env={})
    assert placement.device.type == "cpu" and slot is None
    assert any(m.startswith("device: CPU") and "no NVIDIA driver" in m for m in logs)
    assert any("no GPU found" in w for w in warnings)


def test_a_full_length_cpu_run_is_warned_about_with_an_estimate(capsys):
    from resnet_repro.cli import train as cli

    study = study_from_dict({})
    cpu = CPU
    cli.warn_if_long_on_cpu(study, "resnet110", cpu)
    err = capsys.readouterr().err
    assert "resnet110" in err and "hours" in err and "CPU" in err
    smoke = study_from_dict({"train": {"iterations": 80, "lr_milestones": [40]}})
    cli.warn_if_long_on_cpu(smoke, "resnet8", cpu)
    assert capsys.readouterr().err == ""
    from resnet_repro.nets.anatomy import forward_macs
    from resnet_repro.nets.families import build_model

    assert cpu_cost.estimated_cpu_hours(forward_macs(build_model("resnet110")), 64000 * 128, 2) > 24
    epochs = study_from_dict(
        {
            "study": {"shortcut": "B"},
            "train": {"iterations": None, "epochs": 200, "lr_milestones": []},
        }
    )
    cli.warn_if_long_on_cpu(epochs, "imagenet-resnet18", cpu)
    assert "200 epochs" in capsys.readouterr().err


def test_forward_macs_count_the_convolutions_and_the_classifier():
    from resnet_repro.nets.anatomy import forward_macs
    from resnet_repro.nets.families import build_model

    # ResNet-20: a 3x3 stem of 16 filters, 3 stages of six 3x3 convs with 16/32/64 filters on
    # 32/16/8 maps (each stage's first conv reads half as many channels, except the first
    # stage's), then a 64x10 classifier. Option A shortcuts cost nothing.
    stem = 32 * 32 * 16 * 3 * 9
    stage1 = 6 * 32 * 32 * 16 * 16 * 9
    stage2 = 16 * 16 * 32 * 16 * 9 + 5 * 16 * 16 * 32 * 32 * 9
    stage3 = 8 * 8 * 64 * 32 * 9 + 5 * 8 * 8 * 64 * 64 * 9
    assert forward_macs(build_model("resnet20")) == stem + stage1 + stage2 + stage3 + 640


def test_the_gpu_slot_is_held_until_the_outputs_are_written(tmp_path, monkeypatch):
    import yaml

    from resnet_repro import results
    from resnet_repro.cli import main as cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "train_subset": 64, "test_subset": 32},
                "train": {"batch_size": 32, "iterations": 2, "lr_milestones": [1]},
                "device": {"device": "cpu"},
            }
        )
    )
    lock_dir = tmp_path / "locks"
    cpu = CPU

    def place(cfg, **kw):
        return cpu, gpu_slots.try_acquire_gpu_slot(["0"], 1, lock_dir)

    free_while_writing = []
    real_write_json = results.write_json

    def write_json(obj, path):
        probe = gpu_slots.try_acquire_gpu_slot(["0"], 1, lock_dir)
        free_while_writing.append(probe is not None)
        if probe is not None:
            probe.release()
        real_write_json(obj, path)

    monkeypatch.setattr(devices, "place", place)
    monkeypatch.setattr(results, "write_json", write_json)
    assert (
        cli.main(
            [
                "train",
                "--config",
                str(cfg),
                "--model",
                "resnet8",
                "--seed",
                "0",
                "--out",
                str(tmp_path / "run"),
            ]
        )
        == 0
    )
    assert free_while_writing == [False]
    assert gpu_slots.try_acquire_gpu_slot(["0"], 1, lock_dir) is not None
