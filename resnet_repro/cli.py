"""The `resnet-repro` command line: read files, call the package's functions, write files.

Every Snakemake rule calls one of these subcommands. Bad input ends with one line on stderr
(`resnet-repro: error: ...`) and exit status 2, never a traceback.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path

from . import __version__
from .config import ConfigError, Study, load_study, parse_model_name
from .results import ResultError


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


CONFIG_ENV = "RESNET_REPRO_CONFIG"


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        help="study config file(s), as given to Snakemake; later files override "
        f"earlier ones key by key (default: the files listed in ${CONFIG_ENV}, "
        "which the workflow sets)",
    )


def _load(args: argparse.Namespace) -> Study:
    paths = args.config
    if not paths:
        # The workflow hands its config files over in the environment, so that which file
        # holds the config is not part of the job's tracked parameters.
        paths = [p for p in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if p]
    if not paths:
        raise ConfigError(f"no config: pass --config FILE (or set {CONFIG_ENV})")
    return load_study(paths)


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
    study = _load(args)
    _say(
        f"config OK: {len(study.runs())} runs ({', '.join(study.models())}; seeds "
        f"{list(study.study.seeds)})"
    )
    return 0


def cmd_prepare_data(args: argparse.Namespace) -> int:
    from . import data
    from .results import write_json

    study = _load(args)
    info = data.prepare(study.data)
    fingerprint = info.pop("fingerprint")
    # Where the data lives is left out: moving it changes nothing, so it reruns nothing.
    selection = {k: v for k, v in study.to_dict()["data"].items() if k not in ("root", "download")}
    write_json({"data": selection, "fingerprint": fingerprint, "counts": info}, args.out)
    _say(f"data ready (fingerprint {fingerprint}): {info}")
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
    from .devices import place
    from .results import save_torch, write_json, write_metrics
    from .train import train_run

    study = _load(args)
    parse_model_name(args.model)
    if args.model not in study.models():
        _warn(
            f"model {args.model} is not in this config's study ({', '.join(study.models())});"
            " training it anyway"
        )
    out = Path(args.out)
    check_writable_folder(out, "--out")
    checkpoint = out / "checkpoint" / "state.pt"
    placement, slot = place(
        study.device,
        log=_say,
        lock_timeout=args.lock_timeout,
        warn=_warn,
        cpu_threads=args.cpu_threads,
    )
    # The slot is held until the outputs are written and the model's memory is freed, so
    # the next job never shares the GPU, not even for a moment; the kernel drops the lock
    # if this process dies instead.
    try:
        _say(f"training {args.model} seed {args.seed} on {placement.name} ({placement.precision})")
        warn_if_long_on_cpu(study, args.model, placement)
        result = train_run(
            study, args.model, args.seed, checkpoint, placement, log=_say, warn=_warn
        )
        write_metrics(result.rows, out / "metrics.parquet")
        save_torch(
            {
                "model": result.model.state_dict(),
                "identity": result.identity,
                "parameters": result.parameters,
                # The inputs it was trained on, so every reader feeds it the same way.
                "normalization": result.normalization,
            },
            out / "model.pt",
        )
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
                "data": result.data,
                "command": sys.argv,
            },
            out / "run.json",
        )
        # The outputs are complete: the resume state has served its purpose, and keeping it
        # would turn a deliberate rerun (metrics deleted) into a no-op copy of the old numbers.
        shutil.rmtree(checkpoint.parent, ignore_errors=True)
        status = result.status
        del result
        free_device_memory(placement)
    finally:
        if slot is not None:
            slot.release()
    _say(
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

    from .devices import estimated_cpu_hours
    from .models import build_model, forward_macs

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
        _warn(
            f"{model} is about to train on the CPU: {length} at batch "
            f"{train.batch_size} take roughly {hours:,.0f} hours here; a GPU takes minutes "
            "(see device.device), or use a smaller study (workflow/configs/smoke.yaml)"
        )


def cmd_layer_std(args: argparse.Namespace) -> int:
    import torch

    from . import data, normalization
    from .modelfile import load_model_file
    from .models import response_layers
    from .probes import layer_responses
    from .results import write_layer_std

    study = _load(args)
    model, identity, norm = load_model_file(args.model_file)
    arrays = data.load_arrays(study.data)
    # The per-pixel training mean of the data at hand, for records that ask for it; other
    # records carry their own statistics.
    test = data.to_device(arrays, torch.device("cpu"))
    n = min(args.images, len(test.test_y))
    batch = study.train.eval_batch_size
    # Fed the way the net was trained (its stored normalisation), ours and imported alike.
    batches = (
        normalization.normalize(test.test_x[i : min(i + batch, n)], norm, test.mean)
        for i in range(0, n, batch)
    )
    stds = layer_responses.layer_response_std(model, response_layers(model), batches)
    write_layer_std(
        layer_responses.label_layer_std(stds, identity["model"], identity["seed"]), args.out
    )
    _say(
        f"{identity['model']} seed {identity['seed']}: std of {len(stds)} layer responses "
        f"over {n} test images -> {args.out}"
    )
    return 0


def _read_metrics_files(paths: Sequence[str], what: str = "that run is reported as missing"):
    from .results import read_all_metrics

    present = [p for p in paths if Path(p).is_file()]
    for p in paths:
        if p not in present:
            _warn(f"{p} does not exist; {what}")
    return read_all_metrics(present)


def _run_info(paths: Sequence[str]) -> tuple[dict, dict]:
    """(parameters per model, {(model, seed): device and schedule}) from the run.json beside
    each metrics file that has one."""
    import json

    from .families import schedule_text

    params, info = {}, {}
    for p in paths:
        run = Path(p).parent / "run.json"
        if not run.is_file():
            continue
        try:
            r = json.loads(run.read_text())
            key = (str(r["model"]), int(r["seed"]))
            params[key[0]] = int(r["parameters"])
            info[key] = {"device": r.get("device"), "schedule": schedule_text(r["config"]["train"])}
        except (ValueError, KeyError, TypeError):
            _warn(f"{run} is not a resnet-repro run.json; its run shows no device/schedule")
    return params, info


def cmd_tables(args: argparse.Namespace) -> int:
    import pandas as pd

    from . import analysis, families
    from .models import build_model, count_parameters
    from .results import write_text
    from .table_text import to_html, to_markdown

    study = _load(args)
    metrics = _read_metrics_files(args.metrics)
    compare = _read_metrics_files(
        args.compare_metrics, "that model of the other study is reported as missing"
    )
    runs = study.runs()
    params, info = _run_info(list(args.metrics) + list(args.compare_metrics))
    params.update(
        {
            m: count_parameters(
                build_model(m, shortcut=study.study.shortcut, width=study.model_width(m))
            )
            for m in study.models()
        }
    )
    # Table 6 and plain-vs-residual are about the paper's nets only; the ImageNet-style
    # family has its own table, and both families meet in `families`.
    paper_metrics = (
        metrics[[families.is_paper_model(m) for m in metrics["model"]]] if len(metrics) else metrics
    )
    paper_runs = [(m, s) for m, s in runs if families.is_paper_model(m)]
    compare_runs = [
        (m, s)
        for m in study.analysis.compare_models
        for s in study.study.seeds
        if m not in study.models()
    ]
    both = pd.concat([metrics, compare], ignore_index=True) if len(compare) else metrics
    out = Path(args.out_dir)
    tables = {
        "table6": analysis.table6(paper_metrics, paper_runs, params, study.analysis.tolerance_pct),
        "plain_vs_residual": analysis.plain_vs_residual(paper_metrics, paper_runs),
        "runs": analysis.run_summary(metrics, runs),
        "imagenet_style": families.imagenet_style_table(metrics, runs, params),
        "families": families.families_table(both, runs + compare_runs, params, info),
    }
    shown_columns = {
        "table6": analysis.TABLE6_DISPLAY_COLUMNS,
        "imagenet_style": families.IMAGENET_STYLE_DISPLAY_COLUMNS,
    }
    titles = {
        "table6": "Table 6: CIFAR-10 test error, ours and the paper's",
        "plain_vs_residual": "Plain vs residual nets, per depth",
        "runs": "Every run and its status",
        "imagenet_style": "The ImageNet-style family",
        "families": "Both families side by side",
    }
    for name, df in tables.items():
        shown = df[shown_columns[name]] if name in shown_columns else df
        write_text(df.to_csv(index=False), out / f"{name}.csv")
        write_text(to_markdown(shown), out / f"{name}.md")
        empty = "No model of this family in this study (study.archs)."
        write_text(to_html(shown, titles[name], empty=empty), out / f"{name}.html")
    for name in ("table6", "imagenet_style"):
        if len(tables[name]):
            _say(to_markdown(tables[name][shown_columns[name]]))
    _say(to_markdown(tables["families"]))
    return 0


def cmd_figure6(args: argparse.Namespace) -> int:
    from .plots import figure6, save_figure

    png, pdf = save_figure(
        figure6(_read_metrics_files(args.metrics), ylim=(0.0, args.ymax)), args.out
    )
    _say(f"Figure 6 -> {png}, {pdf}")
    return 0


def cmd_figure7(args: argparse.Namespace) -> int:
    from .plots import figure7, save_figure
    from .results import read_all_layer_std

    png, pdf = save_figure(figure7(read_all_layer_std(args.layer_std), args.models), args.out)
    _say(f"Figure 7 -> {png}, {pdf}")
    return 0


# ---------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="resnet-repro",
        description="Reproduce the CIFAR-10 study of He et al. 2015, section 4.2.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check-config", help="validate a study config and list its runs")
    _add_config(c)
    c.set_defaults(func=cmd_check_config)

    c = sub.add_parser(
        "prepare-data",
        help="make sure the data set is present (downloads "
        "it at most once when data.download is true)",
    )
    _add_config(c)
    c.add_argument("--out", required=True, help="JSON file that records what was found")
    c.set_defaults(func=cmd_prepare_data)

    c = sub.add_parser(
        "train",
        help="train one model with one seed",
        description="Train one (model, seed) of the study with the config's recipe. Writes "
        "DIR/metrics.parquet (one row per epoch), DIR/model.pt and DIR/run.json; "
        "keeps resume state in DIR/checkpoint/ until the run is complete, so the "
        "same command after a kill continues where it stopped.",
    )
    _add_config(c)
    c.add_argument(
        "--model",
        required=True,
        help="plain or resnet followed by a depth 6n+2, e.g. plain20, resnet110; "
        "or imagenet-resnet18, imagenet-resnet34, imagenet-resnet50",
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

    c = sub.add_parser(
        "layer-std", help="std of every 3x3 layer's response of a trained model (Figure 7)"
    )
    _add_config(c)
    c.add_argument("--model-file", required=True, help="a run's model.pt")
    c.add_argument("--images", type=int, default=10000, help="test images to use")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.set_defaults(func=cmd_layer_std)

    c = sub.add_parser(
        "tables",
        help="Table 6 against the paper, plain vs residual, runs, "
        "the ImageNet-style family and both families side by side",
    )
    _add_config(c)
    c.add_argument(
        "--metrics",
        nargs="*",
        default=[],
        help="metrics.parquet files; runs of the study without one are reported as missing",
    )
    c.add_argument(
        "--compare-metrics",
        nargs="*",
        default=[],
        help="metrics.parquet files of "
        "another study's runs (analysis.compare_models) for the families table; "
        "absent ones are reported as missing",
    )
    c.add_argument("--out-dir", required=True, help="folder for the CSV and Markdown tables")
    c.set_defaults(func=cmd_tables)

    c = sub.add_parser("figure6", help="the paper's Figure 6 (training curves)")
    c.add_argument("--metrics", nargs="*", default=[], help="metrics.parquet files")
    c.add_argument(
        "--ymax", type=float, default=20.0, help="top of the error axis in %% (the paper's: 20)"
    )
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure6)

    c = sub.add_parser("figure7", help="the paper's Figure 7 (std of layer responses)")
    c.add_argument("--layer-std", nargs="*", default=[], help="layer-std Parquet files")
    c.add_argument("--models", nargs="*", default=None, help="models to draw, in this order")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure7)

    from . import bench, cli_published
    from .probes import cli as probes_cli

    cli_published.add_parsers(sub, _add_config)
    probes_cli.add_parsers(sub, _add_config, _load)

    c = sub.add_parser(
        "bench",
        help="training throughput: our trainer vs a DataLoader pipeline vs the bare "
        "forward/backward ceiling, side by side",
        description="Measure training images/s at batch 128 for (a) trainer: our step with "
        "on-device augmentation; (b) dataloader: torchvision transforms in a "
        "DataLoader with workers; (c) ceiling: forward/backward/step on one fixed "
        "batch on the device.",
    )
    bench.add_arguments(c)
    c.set_defaults(func=bench.run_from_args)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    from .data import DataError
    from .results import ResultError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, ResultError, TimeoutError) as e:
        print(f"resnet-repro: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("resnet-repro: interrupted", file=sys.stderr)
        return 130
