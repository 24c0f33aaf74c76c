"""The training subcommands: check-config, prepare-data and train (one run of the study)."""

from __future__ import annotations

import argparse
import dataclasses
import platform
import subprocess
import sys
import tempfile
from pathlib import Path

from .. import __version__
from ..config import Study, data_selection, parse_model_name
from ..nets.families import model_forms
from ..results import ResultError
from .common import add_config, load_config, say, warn

# ---------------------------------------------------------------- helpers for run.json


def git_commit() -> str | None:
    here = Path(__file__).resolve().parent
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True, timeout=10
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--untracked-files=no"],
            cwd=here,
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    return {
        "resnet_repro": __version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "numpy": numpy.__version__,
        "cuda": str(torch.version.cuda),
    }


# ---------------------------------------------------------------- subcommands


def cmd_check_config(args: argparse.Namespace) -> int:
    study = load_config(args)
    say(
        f"config OK: {len(study.runs())} runs ({', '.join(study.models())}; seeds "
        f"{list(study.study.seeds)})"
    )
    return 0


def cmd_prepare_data(args: argparse.Namespace) -> int:
    from .. import data
    from ..results import write_json

    study = load_config(args)
    info = data.prepare(study.data)
    fingerprint = info.pop("fingerprint")
    # Where the data lives is left out: moving it changes nothing, so it reruns nothing.
    write_json(
        {"data": data_selection(study), "fingerprint": fingerprint, "counts": info}, args.out
    )
    say(f"data ready (fingerprint {fingerprint}): {info}")
    return 0


def check_writable_folder(folder: Path, what: str) -> None:
    """Refuse, before any work, a result folder that cannot be created or written."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=folder, prefix=".write-test-"):
            pass
    except OSError as e:
        raise ResultError(
            f"{what} {folder} cannot be written ({e.strerror or e}); choose a "
            "folder you can write to"
        ) from None


def cmd_train(args: argparse.Namespace) -> int:
    from ..config import identity_hash
    from ..engine.compile_policy import compile_for_run, cxx_compiler
    from ..engine.devices import place
    from ..engine.resume import finished_dir, keep_finished, restore_finished
    from ..engine.run_setup import run_data
    from ..engine.schedule import total_iterations
    from ..engine.train import train_run
    from ..progressbar import Bar
    from ..results import save_torch, write_json, write_metrics
    from ..runstate import checkpoint_path, progress_path

    study = load_config(args)
    parse_model_name(args.model)
    if args.model not in study.models():
        warn(
            f"model {args.model} is not in this config's study ({', '.join(study.models())});"
            " training it anyway"
        )
    out = Path(args.out)
    check_writable_folder(out, "--out")
    checkpoint = checkpoint_path(out)  # progress.json beside it says how far the run is
    data = run_data(study, args.model, args.seed)
    ident_hash = identity_hash(data[1])
    if restore_finished(out, checkpoint, ident_hash):
        say(
            f"{args.model} seed {args.seed} finished earlier with this config and data: its "
            f"outputs were put back from {finished_dir(checkpoint)} without training (they "
            "had been removed, e.g. by snakemake --rerun-incomplete after Snakemake itself "
            f"was stopped); to train it again, delete {out}"
        )
        return 0
    placement, slot = place(
        study.device,
        log=say,
        lock_timeout=args.lock_timeout,
        warn=warn,
        cpu_threads=args.cpu_threads,
    )
    compile_, why = compile_for_run(
        study.device.compile,
        placement.compile,
        placement.device.type,
        total_iterations(study.train, len(data[0].train_y)),
        cxx_compiler(),
    )
    if why:
        say(why)
    placement = dataclasses.replace(placement, compile=compile_)
    # The slot is held until the outputs are written and the model's memory is freed, so
    # the next job never shares the GPU, not even for a moment; the kernel drops the lock
    # if this process dies instead.
    try:
        say(f"training {args.model} seed {args.seed} on {placement.name} ({placement.precision})")
        warn_if_long_on_cpu(study, args.model, placement)
        # A bar on a terminal; in a log file, the line after each epoch says the time left.
        with Bar(f"{args.model} seed {args.seed}", "iterations") as bar:
            result = train_run(
                study,
                args.model,
                args.seed,
                checkpoint,
                placement,
                log=bar.say,
                warn=warn,
                bar=bar,
                data=data,
            )
        del data
        write_metrics(result.rows, out / "metrics.parquet")
        # The one layout of model.pt (imports write it too), the normalisation record of the
        # inputs it was trained on checked, so that every reader feeds it the same way.
        from ..nets.modelfile import payload

        save_torch(payload(result.model, result.identity, result.normalization), out / "model.pt")
        last = result.rows[-1] if result.rows else {}
        write_json(
            {
                "model": args.model,
                "seed": args.seed,
                "status": result.status,
                "identity": result.identity,
                "config": study.to_dict(),
                "parameters": result.parameters,
                "versions": versions(),
                "git_commit": git_commit(),
                "device": placement.name,
                "precision": placement.precision,
                "channels_last": placement.channels_last,
                "compile": placement.compile,
                "wall_seconds": result.wall_seconds,
                "resumed_at_iteration": result.resumed_at_iteration,
                "sessions": result.sessions,
                "warmup": result.warmup,
                "iterations": last.get("iteration"),
                "final_test_error_pct": last.get("test_error_pct"),
                # where it ended, as its progress.json said while it trained (`status`)
                "progress": result.summary,
                "data": result.data,
                "command": sys.argv,
            },
            out / "run.json",
        )
        # The outputs are complete: keep them (hard links) where Snakemake never deletes
        # them, so that a run whose Snakemake was killed is never trained again from
        # scratch (engine.resume), and drop the resume state.
        keep_finished(out, checkpoint, ident_hash)
        progress_path(out).unlink(missing_ok=True)  # run.json's "progress" says it now
        status = result.status
        del result
        free_device_memory(placement)
    finally:
        if slot is not None:
            slot.release()
    say(
        f"{args.model} seed {args.seed}: {status}, final test error "
        f"{last.get('test_error_pct', float('nan')):.2f}% -> {out}"
    )
    return 0


def free_device_memory(placement) -> None:
    import gc

    import torch

    gc.collect()
    if placement.device.type == "cuda":
        torch.cuda.synchronize(placement.device)
        torch.cuda.empty_cache()


def warn_if_long_on_cpu(study: Study, model: str, placement) -> None:
    """A full-length study on a CPU takes weeks: say so before starting, with an estimate."""
    if placement.device.type != "cpu":
        return
    import torch

    from ..engine.cpu_cost import estimated_cpu_hours
    from ..nets.anatomy import forward_macs
    from ..nets.families import build_model

    train = study.train
    if train.iterations is not None:
        images, length = train.iterations * train.batch_size, f"{train.iterations} iterations"
    else:  # epoch-based: the training set's size is known once the data is read
        d = study.data
        per_epoch = d.train_subset or (50000 - d.val_size)
        images, length = train.epochs * per_epoch, f"{train.epochs} epochs"
    net = build_model(model, shortcut=study.study.shortcut, width=study.model_width(model))
    hours = estimated_cpu_hours(forward_macs(net), images, torch.get_num_threads())
    if hours >= 1.0:
        warn(
            f"{model} is about to train on the CPU: {length} at batch "
            f"{train.batch_size} take roughly {hours:,.0f} hours here; a GPU takes minutes "
            "(see device.device), or use a smaller study (workflow/configs/smoke.yaml)"
        )


def add_parsers(sub) -> None:
    c = sub.add_parser("check-config", help="validate a study config and list its runs")
    add_config(c)
    c.set_defaults(func=cmd_check_config)

    c = sub.add_parser(
        "prepare-data",
        help="make sure the data set is present (downloads "
        "it at most once when data.download is true)",
    )
    add_config(c)
    c.add_argument("--out", required=True, help="JSON file that records what was found")
    c.set_defaults(func=cmd_prepare_data)

    c = sub.add_parser(
        "train",
        help="train one model with one seed",
        description="Train one (model, seed) of the study with the config's recipe. Writes "
        "DIR/metrics.parquet (one row per epoch, and one per window of "
        "train.window_iterations iterations), DIR/model.pt and DIR/run.json; "
        "keeps resume state in DIR/checkpoint/ until the run is complete, so the "
        "same command after a kill continues where it stopped, and beside it "
        "progress.json, where the run stands (`resnet-repro status`). A progress bar on a "
        "terminal; in a file, a line with the time left after each epoch.",
    )
    add_config(c)
    c.add_argument(
        "--model",
        required=True,
        help=f"the net: {model_forms()}",
    )
    c.add_argument(
        "--seed",
        required=True,
        type=int,
        help="seed of the initialisation, data order and augmentation",
    )
    c.add_argument("--out", required=True, metavar="DIR", help="run folder")
    c.add_argument(
        "--lock-timeout",
        type=float,
        default=None,
        metavar="SECONDS",
        help="give up waiting for a free GPU slot after this long (default: wait)",
    )
    c.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (the workflow passes the job's threads); overrides "
        "device.cpu_threads",
    )
    c.set_defaults(func=cmd_train)
