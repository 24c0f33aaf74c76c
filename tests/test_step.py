"""The training step (engine/step.py): the compiled step is one pair of graphs with no graph
break, computes what the eager step computes, never recompiles at a schedule change, and
resumes exactly; the precision and determinism switches and the resume's memory layout
(engine/devices.py, engine/resume.py)."""

from __future__ import annotations

import dataclasses

import pytest
import torch
from conftest import CPU
from torch._dynamo.utils import counters

from resnet_repro import data as data_mod
from resnet_repro.basics import cuda_visible_ids
from resnet_repro.config import study_from_dict
from resnet_repro.engine import compile_policy, devices, run_setup
from resnet_repro.engine import train as T
from resnet_repro.engine.devices import numerics
from resnet_repro.engine.resume import restore_optimizer
from resnet_repro.engine.step import EpochDraws, TrainStep

STEPS = 50
LOSS_TOLERANCE = 0.03  # absolute, on losses near 2.3, after 50 steps (0.01 seen)
WEIGHT_TOLERANCE = 0.05  # relative distance of each weight tensor after 50 steps (0.012 seen)


def _study(**train):
    return study_from_dict(
        {
            "data": {"source": "synthetic", "train_subset": 128, "test_subset": 32},
            "study": {"archs": ["resnet"], "depths": [8], "seeds": [0]},
            "train": {"batch_size": 16, "iterations": 24, "lr_milestones": [12, 20], **train},
        }
    )


def _run_steps(study, placement, steps=STEPS, lr_changes=()):
    """`steps` steps of a fresh seeded resnet8 over several epochs; the per-step losses and
    the final weights."""
    arrays = data_mod.load_arrays(study.data)
    dd = data_mod.to_device(arrays, placement.device)
    model, optimizer = run_setup.setup_model("resnet8", "A", study.train, placement, 0)
    per_epoch = len(dd.train_y) // study.train.batch_size
    step = TrainStep(model, optimizer, dd, study.train, placement, per_epoch)
    losses = []
    for i in range(steps):
        if i % per_epoch == 0:
            step.start_epoch(0, i // per_epoch + 1)
        if i in lr_changes:
            step.set_lr(lr_changes[i])
        loss, _ = step()
        losses.append(loss.item())
    return losses, {k: v.detach().clone() for k, v in model.state_dict().items()}, step


@pytest.fixture(scope="module")
def eager_and_compiled():
    study = _study()
    lr_changes = {20: 0.01, 35: 0.001}  # a warm-up end and a milestone, as the schedule does
    eager = _run_steps(study, CPU, lr_changes=lr_changes)
    counters.clear()
    compiled = _run_steps(study, dataclasses.replace(CPU, compile="step"), lr_changes=lr_changes)
    stats = {
        "graph_breaks": sum(counters["graph_break"].values()),
        "unique_graphs": counters["stats"]["unique_graphs"],
    }
    return eager, compiled, stats


def test_the_compiled_step_is_two_graphs_without_a_graph_break(eager_and_compiled):
    _, _, stats = eager_and_compiled
    # One graph for gather + augmentation + forward + loss (its backward compiled with it),
    # one for the SGD update: compiled once, over several epochs and three learning rates.
    assert stats["graph_breaks"] == 0
    assert stats["unique_graphs"] == 2


def test_compiled_and_eager_steps_compute_the_same_training(eager_and_compiled):
    (eager_losses, eager_weights, _), (losses, weights, _), _ = eager_and_compiled
    # The first step sees the same batch, augmentation and weights: equal up to rounding.
    assert abs(losses[0] - eager_losses[0]) < 1e-5
    # Compiled kernels sum in another order than eager ones; SGD at lr 0.1 amplifies those
    # last-bit differences step by step, so after 50 steps the runs agree to LOSS_TOLERANCE.
    torch.testing.assert_close(
        torch.tensor(losses), torch.tensor(eager_losses), rtol=0, atol=LOSS_TOLERANCE
    )
    assert eager_weights.keys() == weights.keys()
    for name, w in eager_weights.items():
        if w.is_floating_point():
            rel = (weights[name] - w).norm() / w.norm().clamp_min(1e-12)
            assert rel < WEIGHT_TOLERANCE, (name, rel.item())
        else:
            assert torch.equal(weights[name], w), name  # BN's batch counters


def test_the_compiled_step_keeps_the_optimizer_state_that_checkpoints_save(eager_and_compiled):
    _, (_, _, step), _ = eager_and_compiled
    state = step.optimizer.state_dict()
    assert len(state["state"]) == len(step.params)
    assert all(s["momentum_buffer"].abs().sum() > 0 for s in state["state"].values())
    assert state["param_groups"][0]["lr"] == 0.001  # set_lr keeps the group's value too


def test_epoch_draws_depend_on_seed_and_epoch_only():
    train = _study().train
    a, b = (EpochDraws(4, 16, train, torch.device("cpu")) for _ in range(2))
    a.draw(0, 3, 100)
    b.draw(0, 2, 100)
    b.draw(0, 3, 100)  # redrawing fills the same buffers in place
    assert torch.equal(a.order, b.order) and torch.equal(a.offsets, b.offsets)
    assert torch.equal(a.flips, b.flips)
    assert a.order.unique().numel() == 64  # a permutation: no image twice in an epoch
    assert a.offsets.min() >= 0 and a.offsets.max() <= 8  # 4-pixel padding
    a.draw(1, 3, 100)
    assert not torch.equal(a.order, b.order)


def test_a_killed_compiled_run_resumes_to_the_uninterrupted_numbers(tmp_path):
    study = _study()
    placement = dataclasses.replace(CPU, compile="step")
    whole = T.train_run(study, "resnet8", 0, tmp_path / "a.pt", placement, log=lambda m: None)

    class Killed(Exception):
        pass

    def kill_after_first_epoch(message: str) -> None:
        if "| epoch 2 |" in message:  # logged before epoch 2's checkpoint is written
            raise Killed

    with pytest.raises(Killed):
        T.train_run(study, "resnet8", 0, tmp_path / "b.pt", placement, log=kill_after_first_epoch)
    resumed = T.train_run(study, "resnet8", 0, tmp_path / "b.pt", placement, log=lambda m: None)
    assert resumed.resumed_at_iteration == 8
    timing = ("epoch_seconds", "images_per_second")
    strip = [{k: v for k, v in r.items() if k not in timing} for r in whole.rows]
    assert [{k: v for k, v in r.items() if k not in timing} for r in resumed.rows] == strip
    for (name, w), w2 in zip(whole.model.state_dict().items(), resumed.model.state_dict().values()):
        assert torch.equal(w, w2), name


def test_resume_puts_momentum_buffers_in_the_parameters_layout():
    study = _study()
    model, optimizer = run_setup.setup_model("resnet8", "A", study.train, CPU, 0)
    x = torch.randn(4, 3, 32, 32)
    model(x).sum().backward()
    optimizer.step()
    saved = optimizer.state_dict()  # contiguous buffers, as a CPU run saves them
    nhwc = dataclasses.replace(CPU, channels_last=True)
    model2, optimizer2 = run_setup.setup_model("resnet8", "A", study.train, nhwc, 0)
    restore_optimizer(optimizer2, saved, nhwc)
    convs = [p for p in model2.parameters() if p.dim() == 4]
    assert convs and not convs[0].is_contiguous()  # channels_last weights
    for p in model2.parameters():
        buf = optimizer2.state[p]["momentum_buffer"]
        assert buf.stride() == p.stride()
    for p, q in zip(model.parameters(), model2.parameters()):
        torch.testing.assert_close(
            optimizer2.state[q]["momentum_buffer"], optimizer.state[p]["momentum_buffer"]
        )


@pytest.mark.parametrize(
    ("precision", "deterministic", "tf32", "det"),
    [("fp32", False, False, False), ("tf32", False, True, False), ("bf16", True, False, True)],
)
def test_numerics_make_fp32_mean_fp32_and_restore_the_flags(
    precision, deterministic, tf32, det, monkeypatch
):
    monkeypatch.setattr(torch.backends.cuda.matmul, "allow_tf32", True)
    placement = dataclasses.replace(CPU, precision=precision, deterministic=deterministic)
    before = (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic)
    with numerics(placement):
        assert torch.backends.cudnn.allow_tf32 is tf32
        assert torch.backends.cuda.matmul.allow_tf32 is tf32
        assert torch.backends.cudnn.deterministic is det
        assert torch.are_deterministic_algorithms_enabled() is det
        if det:
            assert torch.backends.cudnn.benchmark is False
    assert (torch.backends.cudnn.allow_tf32, torch.backends.cudnn.deterministic) == before
    assert torch.backends.cuda.matmul.allow_tf32 is True
    assert not torch.are_deterministic_algorithms_enabled()


def test_tf32_needs_cuda_and_compile_auto_follows_the_device():
    with pytest.raises(devices.ConfigError, match="tf32"):
        devices.resolve_precision("tf32", "cpu")
    assert compile_policy.resolve_compile("auto", "auto", "cuda") == ("step", "reduce-overhead")
    assert compile_policy.resolve_compile("auto", "auto", "cpu") == (
        compile_policy.AUTO_COMPILE["cpu"],
        "default",
    )
    with pytest.raises(devices.ConfigError, match="reduce-overhead"):
        compile_policy.resolve_compile("step", "reduce-overhead", "cpu")


def test_compile_auto_compiles_the_step_of_long_cpu_runs_only_where_a_compiler_is():
    long = compile_policy.CPU_STEP_MIN_ITERATIONS
    choose = compile_policy.compile_for_run
    assert choose("auto", "eager", "cpu", long, "/usr/bin/g++")[0] == "step"
    assert choose("auto", "eager", "cpu", long - 1, "/usr/bin/g++") == ("eager", None)
    mode, why = choose("auto", "eager", "cpu", long, None)
    assert mode == "eager" and "C++ compiler" in why
    # an explicit setting is kept whatever the length; CUDA's auto is decided already
    assert choose("eager", "eager", "cpu", 10 * long, "/usr/bin/g++") == ("eager", None)
    assert choose("model", "model", "cpu", 10 * long, "/usr/bin/g++") == ("model", None)
    assert choose("auto", "step", "cuda", 10, None) == ("step", None)


def test_the_cxx_environment_variable_names_the_compiler(monkeypatch, tmp_path):
    fake = tmp_path / "my-c++"
    fake.write_text("#!/bin/sh\n")
    fake.chmod(0o755)
    monkeypatch.setenv("CXX", str(fake))
    assert compile_policy.cxx_compiler() == str(fake)
    monkeypatch.setenv("CXX", str(tmp_path / "absent"))
    monkeypatch.setenv("PATH", str(tmp_path))
    assert compile_policy.cxx_compiler() is None


@pytest.mark.parametrize(
    ("value", "ids"),
    [
        ("0,1", ["0", "1"]),
        ("-1", []),
        ("", []),
        ("NoDevFiles", []),
        ("0,-1,1", ["0"]),
        ("GPU-3b1c,MIG-7", ["GPU-3b1c", "MIG-7"]),
    ],
)
def test_cuda_visible_devices_is_read_as_cuda_reads_it(value, ids):
    assert cuda_visible_ids(value) == ids
    found = devices.detect_gpus({"CUDA_VISIBLE_DEVICES": value})
    assert found.ids == ids
    assert devices.resolve_device_type("auto", found.ids) == ("cuda" if ids else "cpu")


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_compiled_step_with_cuda_graphs_matches_eager():
    study = _study()
    gpu = dataclasses.replace(
        CPU, device=torch.device("cuda"), precision="fp32", fused_optimizer=True
    )
    eager_losses, eager_weights, _ = _run_steps(study, gpu, steps=20)
    graphs = dataclasses.replace(gpu, compile="step", compile_mode="reduce-overhead")
    losses, weights, _ = _run_steps(study, graphs, steps=20)
    torch.testing.assert_close(
        torch.tensor(losses), torch.tensor(eager_losses), rtol=1e-3, atol=1e-3
    )


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_a_cpu_started_run_resumes_on_cuda_with_the_fused_optimizer(tmp_path):
    study = _study(iterations=16, lr_milestones=[12])
    T.train_run(study, "resnet8", 0, tmp_path / "c.pt", dataclasses.replace(CPU), log=print)
    ckpt = torch.load(tmp_path / "c.pt", weights_only=True)
    gpu = dataclasses.replace(
        CPU, device=torch.device("cuda"), channels_last=True, fused_optimizer=True
    )
    model, optimizer = run_setup.setup_model("resnet8", "A", study.train, gpu, 0)
    model.load_state_dict(ckpt["model"])
    restore_optimizer(optimizer, ckpt["optimizer"], gpu)
    model(
        torch.randn(8, 3, 32, 32, device="cuda").contiguous(memory_format=torch.channels_last)
    ).sum().backward()
    optimizer.step()  # the fused kernel refuses buffers whose strides differ from the weights'


def test_the_step_loop_follows_the_schedule_epochs_and_windows():
    """engine/loop.py, the host work around the step that the trainer and the benchmark share:
    the last epoch is cut at the schedule's end, the rate is set when it changes and at every
    epoch's start, windows close at their length and at the end."""
    from resnet_repro.engine.loop import StepLoop

    study = _study(iterations=11, lr_milestones=[5], window_iterations=4)
    arrays = data_mod.load_arrays(study.data)
    dd = data_mod.to_device(arrays, CPU.device)
    model, optimizer = run_setup.setup_model("resnet8", "A", study.train, CPU, 0)
    step = TrainStep(model, optimizer, dd, study.train, CPU, 8)  # 128 images in batches of 16
    set_to = []
    real_set_lr = step.set_lr
    step.set_lr = lambda lr: (set_to.append(lr), real_set_lr(lr))
    loop = StepLoop(step, study.train, total=11)
    epochs, windows = [], []
    while loop.iteration < loop.total:
        epochs.append(loop.start_epoch(0, loop.epoch + 1))
        while not loop.epoch_done:
            window = loop()
            if window is not None:
                windows.append((window["iteration"], window["window_iterations"]))
    assert epochs == [8, 3] and loop.iteration == 11 and loop.epoch == 2
    assert set_to == pytest.approx([0.1, 0.01, 0.01])  # at 0, at the milestone, at epoch 2
    assert windows == [(4, 4), (8, 4), (11, 3)]
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.01)
