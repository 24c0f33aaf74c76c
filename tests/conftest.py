"""Shared fixtures: tiny CIFAR-format data written on the fly, so no test downloads anything.

`make_cifar_root(root, n_train, n_test, str_keys=False, seed=0)` writes
root/cifar-10-batches-py/ in the standard "python version" layout (protocol-2 pickles of a
dict with "data" uint8 [N, 3072] channel-planar and "labels", plus batches.meta with
"label_names") and returns root. The images are learnable: each class has its own colour and
stripe direction, under pixel noise, so a small net trained on them beats chance quickly.

`cifar_root` is a ready-made root with 500 training and 100 test images.

`smoke_study` is the CPU smoke study (workflow/configs/smoke.yaml) run once per session by
Snakemake on this machine, with its report; the SLURM and browser tests use it.
`need_system_tools` skips a test whose system packages cannot be installed here and fails it
where they could be (tools/install-test-packages), so CI never skips it.
`NO_SLURM` is what the environment of every local Snakemake run adds (see there).
"""

from __future__ import annotations

import os
import pickle
import shutil
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import torch

from resnet_repro.engine.devices import Placement

# One CPU thread per process, in the tests and in every process they start (training
# commands, Snakemake jobs): tests often run processes side by side, and OpenMP thread pools
# that outnumber the cores spin-wait each other to a crawl (20x slower seen on 2 cores).
os.environ["OMP_NUM_THREADS"] = "1"
torch.set_num_threads(1)

# Snakemake's SLURM executor plugin runs `scontrol show config` every time Snakemake starts,
# wherever `sinfo` is on the PATH: importing snakemake_executor_plugin_slurm builds the help
# text of its `status_command` setting (__init__.py, `_get_status_command_help`), which asks
# job_status_query.should_recommend_squeue_status_command -> get_min_job_age, with a 10 s
# timeout. Where SLURM is configured but no controller answers (tools/install-test-packages,
# then tools/slurm-one-node start and stop, as the SLURM test does), scontrol waits those
# ~10 s: every Snakemake start of every later test paid them (29 instead of 18 minutes for the
# suite on 2 cores). Local runs read an empty SLURM configuration, which scontrol refuses at
# once; only the SLURM test's processes see the machine's own (test_workflow.env).
NO_SLURM = {"SLURM_CONF": os.devnull}

# The CPU as the trainer places a run there, eager and fp32: the tests that build a run's step
# or train it in-process.
CPU = Placement(
    device=torch.device("cpu"),
    precision="fp32",
    channels_last=False,
    compile="eager",
    fused_optimizer=False,
    name="cpu",
)

CLASSES = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]


def _class_images(labels: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """uint8 [N, 3, 32, 32]: a class colour plus class-dependent stripes, plus noise. The
    stripes are coarse (8 px) so that 4-pixel crops and flips keep the class visible."""
    k = len(CLASSES)
    palette = np.random.default_rng(1234).uniform(40, 215, size=(k, 3))
    yy, xx = np.mgrid[0:32, 0:32]
    stripes = (
        np.stack(
            [  # vertical, horizontal, two diagonals, then checkers, repeated
                ((xx // 8) % 2),
                ((yy // 8) % 2),
                (((xx + yy) // 8) % 2),
                (((xx - yy + 32) // 8) % 2),
                (((xx // 8) + (yy // 8)) % 2),
            ]
        ).astype(np.float32)
        * 2
        - 1
    )
    img = (
        palette[labels][:, :, None, None]
        + 30.0 * stripes[labels % len(stripes)][:, None]
        + rng.normal(0, 20, size=(len(labels), 3, 32, 32))
    )
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def _dump(path: Path, obj: dict, str_keys: bool) -> None:
    if not str_keys:
        # The official files are Python 2 pickles whose keys load as bytes under
        # encoding="bytes"; bytes keys written from Python 3 load the same way.
        obj = {(k.encode() if isinstance(k, str) else k): v for k, v in obj.items()}
    with open(path, "wb") as f:
        pickle.dump(obj, f, protocol=2)


def write_cifar_batches(
    root: str | Path, n_train: int = 500, n_test: int = 100, str_keys: bool = False, seed: int = 0
) -> Path:
    root = Path(root)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    k = len(CLASSES)
    y_train = rng.permutation(np.arange(n_train) % k)
    y_test = rng.permutation(np.arange(n_test) % k)
    x_train = _class_images(y_train, rng).reshape(n_train, -1)
    x_test = _class_images(y_test, rng).reshape(n_test, -1)
    for i, idx in enumerate(np.array_split(np.arange(n_train), 5), start=1):
        _dump(
            folder / f"data_batch_{i}",
            {
                "batch_label": f"training batch {i} of 5",
                "data": x_train[idx],
                "labels": [int(v) for v in y_train[idx]],
            },
            str_keys,
        )
    _dump(
        folder / "test_batch",
        {"batch_label": "testing batch 1 of 1", "data": x_test, "labels": [int(v) for v in y_test]},
        str_keys,
    )
    names = CLASSES if str_keys else [c.encode() for c in CLASSES]
    _dump(
        folder / "batches.meta",
        {"label_names": names, "num_cases_per_batch": max(1, n_train // 5), "num_vis": 3072},
        str_keys,
    )
    return root


@pytest.fixture
def make_cifar_root() -> Callable[..., Path]:
    """A function (root, n_train=500, n_test=100, str_keys=False, seed=0) -> root that writes
    tiny CIFAR-10 batches under root/cifar-10-batches-py."""
    return write_cifar_batches


@pytest.fixture
def cifar_root(tmp_path: Path, make_cifar_root) -> Path:
    """A data root (the folder holding cifar-10-batches-py) with 500 train / 100 test images."""
    return make_cifar_root(tmp_path / "data", n_train=500, n_test=100)


SMOKE_CONFIG = "workflow/configs/smoke.yaml"


@pytest.fixture(scope="session")
def smoke_study(tmp_path_factory) -> Path:
    """A project folder in which the smoke study ran to the end on this machine, one thread
    per job (so that the same study on SLURM can be compared number for number), and its
    report was written to report.html."""
    from test_workflow import make_project, smk

    cwd = make_project(tmp_path_factory.mktemp("smoke"))
    smk(cwd, "--max-threads", "1", config=SMOKE_CONFIG)
    smk(cwd, "--report", "report.html", config=SMOKE_CONFIG)
    return cwd


def need_system_tools(tools: tuple[str, ...], what: str) -> None:
    """Skip when `tools` are missing and cannot be installed here (not root, or no apt-get);
    fail when they are missing but could be, naming the script that installs them."""
    path = os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"])
    missing = [t for t in tools if shutil.which(t, path=path) is None]
    if not missing:
        return
    if os.geteuid() == 0 and shutil.which("apt-get"):
        pytest.fail(f"{what} needs {', '.join(missing)}: run tools/install-test-packages")
    pytest.skip(f"{what}: {', '.join(missing)} missing, and not installable here (no root/apt)")
