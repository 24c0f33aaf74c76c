"""A training run's setup: its data read and checked (`run_data`), the seeded initial net
(`initial_model`), that net on its device with its optimizer (`setup_model`), and all of it
together with the schedule's length (`set_up_run`, a `RunSetup`), before `train.train_run`
resumes or starts the loop."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from .. import data as data_mod
from ..config import Study, TrainConfig, batch_size_error, identity_hash, run_identity
from ..nets.anatomy import count_parameters
from ..nets.families import build_model
from .devices import Placement
from .schedule import steps_per_epoch, total_iterations
from .step import make_optimizer


def initial_model(
    model_name: str, shortcut: str, seed: int, width: int | None = None
) -> torch.nn.Module:
    """The run's initial weights, on the CPU: the global RNG seeded with the run's seed, then
    the net built (its He initialisation draws from that RNG). `setup_model` starts every run
    from it, so the initial weights of any run can be rebuilt from its seed alone (the loss
    landscape's interpolation from the initial to the trained weights does)."""
    torch.manual_seed(seed)
    return build_model(model_name, shortcut=shortcut, width=width)


def setup_model(
    model_name: str,
    shortcut: str,
    train: TrainConfig,
    placement: Placement,
    seed: int,
    width: int | None = None,
) -> tuple[torch.nn.Module, torch.optim.Optimizer]:
    """The seeded model on its device and its optimizer (`step.TrainStep` compiles what
    `device.compile` asks for)."""
    model = initial_model(model_name, shortcut, seed, width).to(placement.device)
    if placement.channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = make_optimizer(model, train, placement)
    if placement.compile != "eager":
        # A fresh compile per model, so that several models in one process (the benchmark)
        # do not add up to dynamo's recompile limit.
        torch._dynamo.reset()
    model.train()
    return model, optimizer


def run_data(study: Study, model_name: str, seed: int) -> tuple[data_mod.CifarArrays, dict]:
    """The run's data on the host and its identity (`config.run_identity`), or DataError in
    one line when the recipe cannot train on it (a batch larger than the training set, where
    every step would see all images while run.json said otherwise)."""
    arrays = data_mod.load_arrays(study.data)  # refuses an empty training or test set
    too_big = batch_size_error(study.train.batch_size, len(arrays.train_y))
    if too_big:
        raise data_mod.DataError(too_big)
    return arrays, run_identity(study, model_name, seed, data_mod.fingerprint(arrays))


@dataclass
class RunSetup:
    """What a run is, fixed from its start: the study's recipe, data and net."""

    study: Study
    model_name: str
    seed: int
    placement: Placement
    arrays: data_mod.CifarArrays
    identity: dict[str, Any]
    identity_hash: str
    dd: data_mod.DeviceData
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    parameters: int
    per_epoch: int
    total: int


def set_up_run(
    study: Study,
    model_name: str,
    seed: int,
    placement: Placement,
    data: tuple[data_mod.CifarArrays, dict] | None,
) -> RunSetup:
    """The run's data on its device, the seeded net and its optimizer, the schedule's length.
    `data`: what `run_data` returned, when the caller has read it already."""
    arrays, identity = data if data is not None else run_data(study, model_name, seed)
    dd = data_mod.to_device(arrays, placement.device, study.data.normalization)
    model, optimizer = setup_model(
        model_name,
        study.study.shortcut,
        study.train,
        placement,
        seed,
        study.model_width(model_name),
    )
    n_train = len(dd.train_y)
    return RunSetup(
        study=study,
        model_name=model_name,
        seed=seed,
        placement=placement,
        arrays=arrays,
        identity=identity,
        identity_hash=identity_hash(identity),
        dd=dd,
        model=model,
        optimizer=optimizer,
        parameters=count_parameters(model),
        per_epoch=steps_per_epoch(n_train, study.train.batch_size),
        total=total_iterations(study.train, n_train),
    )
