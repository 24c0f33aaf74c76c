"""Device choice and the GPU slot lock, exercised on CPU with real processes."""

import signal
import subprocess
import sys
import textwrap

import pytest
import torch

from resnet_repro import devices
from resnet_repro.config import ConfigError, study_from_dict


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
    held = [devices.try_acquire_gpu_slot(["0", "1"], 2, tmp_path) for _ in range(4)]
    assert [(s.gpu_id, s.slot) for s in held] == [("0", 0), ("1", 0), ("0", 1), ("1", 1)]
    assert devices.try_acquire_gpu_slot(["0", "1"], 2, tmp_path) is None
    held[1].release()
    again = devices.try_acquire_gpu_slot(["0", "1"], 2, tmp_path)
    assert (again.gpu_id, again.slot) == ("1", 0)
    for s in held + [again]:
        s.release()


def test_acquire_times_out_when_all_slots_taken(tmp_path):
    s = devices.try_acquire_gpu_slot(["0"], 1, tmp_path)
    with pytest.raises(TimeoutError, match="no free GPU slot"):
        devices.acquire_gpu_slot(["0"], 1, tmp_path, timeout=0, poll_seconds=0.01,
                                 log=lambda m: None)
    s.release()


HOLDER = textwrap.dedent("""
    import sys, time
    from resnet_repro.devices import acquire_gpu_slot
    slot = acquire_gpu_slot(["0", "1"], 1, sys.argv[1], poll_seconds=0.05,
                            log=lambda m: print("waiting", flush=True))
    print("got", slot.gpu_id, flush=True)
    time.sleep(600)
""")


def _start(lock_dir):
    return subprocess.Popen([sys.executable, "-c", HOLDER, str(lock_dir)],
                            stdout=subprocess.PIPE, text=True)


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
        a.send_signal(signal.SIGKILL)   # the kernel drops the dead process's lock
        a.wait()
        assert c.stdout.readline().split() == ["got", got_a[1]]
    finally:
        for p in procs:
            p.kill()
            p.wait()
