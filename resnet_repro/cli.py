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
from pathlib import Path
from typing import Sequence

from . import __version__
from .config import ConfigError, Study, load_study, parse_model_name


def _say(msg: str) -> None:
    print(msg, flush=True)


def _warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


CONFIG_ENV = "RESNET_REPRO_CONFIG"


def _add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", action="extend", nargs="+", metavar="YAML",
                   help="study config file(s), as given to Snakemake; later files override "
                        f"earlier ones key by key (default: the files listed in ${CONFIG_ENV}, "
                        "which the workflow sets)")


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
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True,
                             text=True, timeout=10)
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"],
                               cwd=here, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return None
    if out.returncode != 0:
        return None
    return out.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")


def versions() -> dict[str, str]:
    import numpy
    import torch
    import torchvision

    return {"resnet_repro": __version__, "python": platform.python_version(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "numpy": numpy.__version__, "cuda": str(torch.version.cuda)}


# ---------------------------------------------------------------- subcommands


def cmd_check_config(args: argparse.Namespace) -> int:
    study = _load(args)
    _say(f"config OK: {len(study.runs())} runs ({', '.join(study.models())}; seeds "
         f"{list(study.study.seeds)})")
    return 0


def cmd_prepare_data(args: argparse.Namespace) -> int:
    from . import data
    from .results import write_json

    study = _load(args)
    info = data.prepare(study.data)
    write_json({"data": study.to_dict()["data"], "counts": info}, args.out)
    _say(f"data ready: {info}")
    return 0


def cmd_train(args: argparse.Namespace) -> int:
    from .devices import place
    from .results import save_torch, write_json, write_metrics
    from .train import train_run

    study = _load(args)
    parse_model_name(args.model)
    if args.model not in study.models():
        _warn(f"model {args.model} is not in this config's study ({', '.join(study.models())});"
              " training it anyway")
    out = Path(args.out)
    checkpoint = out / "checkpoint" / "state.pt"
    placement, slot = place(study.device, log=_say, lock_timeout=args.lock_timeout)
    if args.cpu_threads:
        import torch

        torch.set_num_threads(args.cpu_threads)
    _say(f"training {args.model} seed {args.seed} on {placement.name} "
         f"({placement.precision})")
    try:
        result = train_run(study, args.model, args.seed, checkpoint, placement,
                           log=_say, warn=_warn)
    finally:
        if slot is not None:
            slot.release()
    write_metrics(result.rows, out / "metrics.parquet")
    save_torch({"model": result.model.state_dict(), "identity": result.identity,
                "parameters": result.parameters}, out / "model.pt")
    last = result.rows[-1] if result.rows else {}
    write_json({
        "model": args.model, "seed": args.seed, "status": result.status,
        "identity": result.identity, "config": study.to_dict(),
        "parameters": result.parameters, "versions": versions(), "git_commit": git_commit(),
        "device": placement.name, "precision": placement.precision,
        "channels_last": placement.channels_last, "compile": placement.compile,
        "wall_seconds": result.wall_seconds,
        "resumed_at_iteration": result.resumed_at_iteration,
        "iterations": last.get("iteration"), "final_test_error_pct": last.get("test_error_pct"),
        "data": result.data, "command": sys.argv,
    }, out / "run.json")
    # The outputs are complete: the resume state has served its purpose, and keeping it would
    # turn a deliberate rerun (metrics deleted) into a no-op copy of the old numbers.
    shutil.rmtree(checkpoint.parent, ignore_errors=True)
    _say(f"{args.model} seed {args.seed}: {result.status}, final test error "
         f"{last.get('test_error_pct', float('nan')):.2f}% -> {out}")
    return 0


def cmd_layer_std(args: argparse.Namespace) -> int:
    import torch

    from . import data
    from .probes import layer_responses
    from .models import build_model, response_layers
    from .results import ResultError, write_layer_std

    study = _load(args)
    try:
        saved = torch.load(args.model_file, map_location="cpu", weights_only=True)
        identity = saved["identity"]
        model = build_model(identity["model"], shortcut=identity["shortcut"])
        model.load_state_dict(saved["model"])
    except FileNotFoundError:
        raise ResultError(f"model file {args.model_file} does not exist") from None
    except Exception as e:
        raise ResultError(f"model file {args.model_file} is not a resnet-repro model.pt "
                          f"({type(e).__name__})") from None
    arrays = data.load_arrays(study.data)
    test = data.to_device(arrays, torch.device("cpu"))
    n = min(args.images, len(test.test_y))
    batch = study.train.eval_batch_size
    batches = (data.normalize(test.test_x[i:min(i + batch, n)], test.mean)
               for i in range(0, n, batch))
    stds = layer_responses.layer_response_std(model, response_layers(model), batches)
    write_layer_std(layer_responses.label_layer_std(stds, identity["model"], identity["seed"]),
                    args.out)
    _say(f"{identity['model']} seed {identity['seed']}: std of {len(stds)} layer responses "
         f"over {n} test images -> {args.out}")
    return 0


def _read_metrics_files(paths: Sequence[str]):
    from .results import read_all_metrics

    present = [p for p in paths if Path(p).is_file()]
    for p in paths:
        if p not in present:
            _warn(f"{p} does not exist; that run is reported as missing")
    return read_all_metrics(present)


def cmd_tables(args: argparse.Namespace) -> int:
    from . import analysis
    from .models import build_model, count_parameters
    from .results import write_text

    study = _load(args)
    metrics = _read_metrics_files(args.metrics)
    runs = study.runs()
    params = {m: count_parameters(build_model(m, shortcut=study.study.shortcut))
              for m in study.models()}
    out = Path(args.out_dir)
    tables = {
        "table6": analysis.table6(metrics, runs, params, study.analysis.tolerance_pct),
        "plain_vs_residual": analysis.plain_vs_residual(metrics, runs),
        "runs": analysis.run_summary(metrics, runs),
    }
    for name, df in tables.items():
        shown = df[analysis.TABLE6_DISPLAY_COLUMNS] if name == "table6" else df
        write_text(df.to_csv(index=False), out / f"{name}.csv")
        write_text(analysis.to_markdown(shown), out / f"{name}.md")
    _say(analysis.to_markdown(tables["table6"][analysis.TABLE6_DISPLAY_COLUMNS]))
    return 0


def cmd_figure6(args: argparse.Namespace) -> int:
    from .plots import figure6, save_figure

    png, pdf = save_figure(figure6(_read_metrics_files(args.metrics), ylim=(0.0, args.ymax)),
                           args.out)
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
        description="Reproduce the CIFAR-10 study of He et al. 2015, section 4.2.")
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    c = sub.add_parser("check-config", help="validate a study config and list its runs")
    _add_config(c)
    c.set_defaults(func=cmd_check_config)

    c = sub.add_parser("prepare-data", help="make sure the data set is present (downloads "
                       "it at most once when data.download is true)")
    _add_config(c)
    c.add_argument("--out", required=True, help="JSON file that records what was found")
    c.set_defaults(func=cmd_prepare_data)

    c = sub.add_parser(
        "train", help="train one model with one seed",
        description="Train one (model, seed) of the study with the config's recipe. Writes "
                    "DIR/metrics.parquet (one row per epoch), DIR/model.pt and DIR/run.json; "
                    "keeps resume state in DIR/checkpoint/ until the run is complete, so the "
                    "same command after a kill continues where it stopped.")
    _add_config(c)
    c.add_argument("--model", required=True,
                   help="plain or resnet followed by a depth 6n+2, e.g. plain20, resnet110")
    c.add_argument("--seed", required=True, type=int, help="seed of the initialisation, "
                   "data order and augmentation")
    c.add_argument("--out", required=True, metavar="DIR", help="run folder")
    c.add_argument("--lock-timeout", type=float, default=None, metavar="SECONDS",
                   help="give up waiting for a free GPU slot after this long (default: wait)")
    c.add_argument("--cpu-threads", type=int, default=None, metavar="N",
                   help="torch CPU threads (the workflow passes the job's threads); overrides "
                        "device.cpu_threads")
    c.set_defaults(func=cmd_train)

    c = sub.add_parser("layer-std", help="std of every 3x3 layer's response of a trained "
                       "model (Figure 7)")
    _add_config(c)
    c.add_argument("--model-file", required=True, help="a run's model.pt")
    c.add_argument("--images", type=int, default=10000, help="test images to use")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.set_defaults(func=cmd_layer_std)

    c = sub.add_parser("tables", help="Table 6 against the paper, plain vs residual, runs")
    _add_config(c)
    c.add_argument("--metrics", nargs="*", default=[], help="metrics.parquet files; runs of "
                   "the study without one are reported as missing")
    c.add_argument("--out-dir", required=True, help="folder for the CSV and Markdown tables")
    c.set_defaults(func=cmd_tables)

    c = sub.add_parser("figure6", help="the paper's Figure 6 (training curves)")
    c.add_argument("--metrics", nargs="*", default=[], help="metrics.parquet files")
    c.add_argument("--ymax", type=float, default=20.0, help="top of the error axis in %% "
                   "(the paper's: 20)")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure6)

    c = sub.add_parser("figure7", help="the paper's Figure 7 (std of layer responses)")
    c.add_argument("--layer-std", nargs="*", default=[], help="layer-std Parquet files")
    c.add_argument("--models", nargs="*", default=None, help="models to draw, in this order")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure7)

    from .probes import cli as probes_cli

    probes_cli.add_parsers(sub, _add_config, _load)

    from . import bench

    c = sub.add_parser(
        "bench", help="training throughput: our trainer vs a DataLoader pipeline vs the bare "
        "forward/backward ceiling, side by side",
        description="Measure training images/s at batch 128 for (a) trainer: our step with "
                    "on-device augmentation; (b) dataloader: torchvision transforms in a "
                    "DataLoader with workers; (c) ceiling: forward/backward/step on one fixed "
                    "batch on the device.")
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
