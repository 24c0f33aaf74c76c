"""Watching a study: `resnet-repro status` (where every run stands and when the study will
end) and `resnet-repro tensorboard` (TensorBoard event folders from finished runs).

`status` reads the small files each run leaves (`runstate`), draws one table with rich and
never writes anything. Neither this module nor what `status` calls imports torch or pandas,
and `main` builds only these two subcommands' parser when one of them is asked for, so it
answers in well under a second.
"""

from __future__ import annotations

import argparse
import os
import re
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ..basics import gpus_from_driver, gpus_from_env, hms
from ..config import ConfigError, Study, load_study
from ..runstate import FINISHED, STATES, RunStatus, StudyStatus
from .common import say

COMMANDS = ("status", "tensorboard")

STYLES = {
    "done": "green",
    "diverged": "red",
    "running": "bold cyan",
    "interrupted": "yellow",
    "waiting": "dim",
    "stale": "magenta",
    "unknown": "red",
}

# ---------------------------------------------------------------- the study in a folder


def _existing(path: str, folder: Path) -> Path:
    """A config file as the shell gives it (from the current directory), else from the
    study's folder."""
    p = Path(path)
    if p.is_absolute() or p.exists() or not (folder / p).exists():
        return p
    return folder / p


def config_files(args: argparse.Namespace) -> list[Path]:
    """The study's config files: --config as given; else the folder's config.yaml and then
    the --configfile files, as Snakemake reads them; else the folder's config.yaml."""
    folder = Path(args.folder)
    if not folder.is_dir():
        raise ConfigError(f"no study in {folder}: it is not a folder")
    if args.config:
        return [_existing(p, folder) for p in args.config]
    base = folder / "config.yaml"
    extra = [_existing(p, folder) for p in args.configfile or []]
    if not base.is_file() and not extra:
        raise ConfigError(
            f"no study in {folder}: it has no config.yaml; run this in the study's folder "
            "(where snakemake runs), or name the config with --config or --configfile"
        )
    return ([base] if base.is_file() else []) + extra


def gpus_here(env: Mapping[str, str] | None = None) -> int:
    """GPUs this process may use, found as the trainer finds them (`basics`: CUDA's reading
    of CUDA_VISIBLE_DEVICES, else the NVIDIA driver), without importing torch."""
    env = os.environ if env is None else env
    found = gpus_from_env(env) or gpus_from_driver(timeout=10)
    return len(found.ids) if found is not None else 0


def default_parallel(study: Study) -> int:
    """How many runs train at once: the GPU slots of this machine (GPUs x
    device.jobs_per_gpu) for a GPU study, else 1."""
    if study.device.device == "cpu":
        return 1
    return max(1, gpus_here() * study.device.jobs_per_gpu)


def measure(args: argparse.Namespace, study: Study, folder: Path) -> StudyStatus:
    from ..runstate import study_status

    check = _read_data_check(study, folder) if args.check_data else None
    return study_status(study, folder, parallel=args.parallel, check=check)


def _read_data_check(study: Study, folder: Path):
    """The content fingerprint of the config's data, read now (seconds for CIFAR-10)."""
    import dataclasses

    from .. import data
    from ..runstate import data_check

    root = Path(study.data.root)
    cfg = dataclasses.replace(
        study.data, root=str(root if root.is_absolute() else folder / root), download=False
    )
    arrays = data.load_arrays(cfg)
    return data_check(study, folder, data.fingerprint(arrays), len(arrays.train_y))


# ---------------------------------------------------------------- drawing


def _pct(x: float | None) -> str:
    return "" if x is None else f"{x:.2f}"


def _left(r: RunStatus) -> str:
    if r.state in FINISHED:
        return ""
    return ("~" if r.left_estimated else "") + hms(r.seconds_left)


def _device(name: str | None) -> str:
    if not name:
        return ""
    name = re.sub(r"^CPU: |\((R|TM)\)| Processor| CPU @", "", name)
    return re.sub(r"\s+", " ", name).strip()


def _when(t: float) -> str:
    return time.strftime(
        "%H:%M" if t - time.time() < 20 * 3600 else "%a %d %b %H:%M", time.localtime(t)
    )


def footer(st: StudyStatus) -> list[str]:
    counts = ", ".join(f"{n} {s}" for s, n in st.states.items() if n)
    lines = [
        f"{len(st.rows)} runs: {counts}. Compute so far: {st.gpu_hours:.2f} GPU-hours, "
        f"{st.cpu_hours:.2f} CPU-hours."
    ]
    if st.finished == len(st.rows):
        lines.append("Every run is complete.")
    elif st.seconds_left is None:
        lines.append(
            f"Expected end: not known until a run has finished an epoch "
            f"(no rate yet for {', '.join(st.unknown_rates)})."
        )
    else:
        lines.append(
            f"Expected end: in about {hms(st.seconds_left)}, at {_when(st.expected_end)}, with "
            f"{st.parallel} run{'s' if st.parallel > 1 else ''} at once (--parallel); "
            "training only, the analyses come after."
        )
    if not st.started:
        lines.append("No run of this study has started in this folder yet.")
    lines.append(f"{st.data_check[0].upper()}{st.data_check[1:]}.")
    return lines


def render(st: StudyStatus, title: str):
    from rich.console import Group
    from rich.progress_bar import ProgressBar
    from rich.table import Table
    from rich.text import Text

    table = Table(title=title, title_justify="left", header_style="bold", box=None, padding=(0, 1))
    for name, justify in (
        ("model", "left"),
        ("seed", "right"),
        ("state", "left"),
        ("progress", "left"),
        ("iteration", "right"),
        ("epoch", "right"),
        ("train %", "right"),
        ("test %", "right"),
        ("img/s", "right"),
    ):
        table.add_column(name, justify=justify, no_wrap=True, min_width=len(name))
    table.columns[0].min_width = max(len(r.model) for r in st.rows)
    table.columns[2].min_width = max(len(r.state) for r in st.rows)
    table.add_column("device", overflow="ellipsis", max_width=28, no_wrap=True)
    table.add_column("left", justify="right", no_wrap=True)
    for r in st.rows:
        total = r.total_iterations or 0
        done = total if r.state == "done" else (r.iteration or 0)
        shown = r.iteration is not None or r.state == "done"
        table.add_row(
            r.model,
            str(r.seed),
            Text(r.state, style=STYLES.get(r.state, "")),
            ProgressBar(total=max(total, 1), completed=min(done, total), width=12) if shown else "",
            f"{r.iteration or 0}/{total}" if total else "",
            f"{r.epoch or 0}/{r.total_epochs}" if r.total_epochs else "",
            _pct(r.train_error_pct),
            _pct(r.test_error_pct),
            "" if r.images_per_second is None else f"{r.images_per_second:,.0f}",
            _device(r.device),
            _left(r),
        )
    # Notes go below the table, one line each, so that a long one (what changed in a stale
    # run's recipe) never squeezes the columns.
    notes = [Text(f"  {r.model} seed {r.seed}: {r.note}") for r in st.rows if r.note]
    return Group(table, *notes, Text(""), *(Text(line) for line in footer(st)))


def as_json(st: StudyStatus, folder: Path, files: list[Path]) -> dict[str, Any]:
    return {
        "folder": str(folder.resolve()),
        "config": [str(f) for f in files],
        **st.to_json(),
        "state_meanings": STATES,
    }


# ---------------------------------------------------------------- the commands


def cmd_status(args: argparse.Namespace) -> int:
    import json

    from rich.console import Console

    folder = Path(args.folder)
    files = config_files(args)
    study = load_study(files)
    if args.parallel is None:
        args.parallel = default_parallel(study)
    elif args.parallel < 1:
        raise ConfigError(f"--parallel: {args.parallel} runs at once; give 1 or more")
    title = f"resnet-repro status: {folder.resolve()} ({' + '.join(str(f) for f in files)})"
    # A file or pipe gets a wide table (rich would take 80 columns), unless COLUMNS says.
    console = Console()
    if not console.is_terminal and "COLUMNS" not in os.environ:
        console = Console(width=160)

    def show(st: StudyStatus):
        if args.json:
            return json.dumps(as_json(st, folder, files), indent=None if args.watch else 2)
        return render(st, title)

    if not args.watch:
        out = show(measure(args, study, folder))
        if args.json:
            print(out)
        else:
            console.print(out)
        return 0
    if args.watch <= 0:
        raise ConfigError(f"--watch: {args.watch} seconds; give a positive number")
    live = None
    try:
        if console.is_terminal and not args.json:
            from rich.live import Live

            live = Live(console=console, auto_refresh=False)
            live.start()
        while True:
            st = measure(args, study, folder)
            out = show(st)
            if live is not None:
                live.update(out, refresh=True)
            elif args.json:
                print(out, flush=True)
            else:
                console.print(out)
                console.print()
            if st.finished == len(st.rows):
                return 0
            time.sleep(args.watch)
    except KeyboardInterrupt:  # the way to stop watching
        return 0
    finally:
        if live is not None:
            live.stop()


def cmd_tensorboard(args: argparse.Namespace) -> int:
    from ..engine.tensorboard import write_run_events
    from ..results import ResultError, read_metrics_and_windows

    out = Path(args.out)
    if args.config:
        study = load_study(args.config)
        paths = [Path(args.runs) / m / f"seed{s}" / "metrics.parquet" for m, s in study.runs()]
        paths = [p for p in paths if p.is_file()]
    else:
        paths = sorted(Path(args.runs).glob("*/seed*/metrics.parquet"))
    if not paths:
        raise ResultError(f"no finished run (metrics.parquet) under {args.runs}")
    for p in paths:
        df = read_metrics_and_windows(p)  # the training windows too, as written live
        model, seed = p.parent.parent.name, p.parent.name.removeprefix("seed")
        rows = [{k: (None if v != v else v) for k, v in r.items()} for r in df.to_dict("records")]
        write_run_events(rows, out / f"{model}_seed{seed}")
    say(
        f"{len(paths)} run{'s' if len(paths) != 1 else ''} -> {out}/; open them with: "
        f"tensorboard --logdir {out}"
    )
    return 0


def add_parsers(sub) -> None:
    c = sub.add_parser(
        "status",
        help="where every run of a study stands, and when the study will end",
        description="One table of every (model, seed) run of the study: its state, iteration "
        "out of its total with a bar, epoch, last training and test error, images/s, device "
        "and time left; below it the runs done, the GPU- and CPU-hours spent and the "
        "expected end. Reads only small files (each run's progress.json and run.json) and "
        "never writes. States: " + "; ".join(f"{s}: {m}" for s, m in STATES.items()) + ".",
    )
    c.add_argument(
        "folder",
        nargs="?",
        default=".",
        help="the study's working directory, where snakemake runs (default: here)",
    )
    c.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="YAML",
        help="all the study's config files, in order, instead of the folder's config.yaml "
        "and --configfile",
    )
    c.add_argument(
        "--configfile",
        nargs="+",
        action="extend",
        metavar="YAML",
        help="config files as given to snakemake --configfile: read after the folder's "
        "config.yaml, key by key",
    )
    c.add_argument(
        "--parallel",
        type=int,
        default=None,
        metavar="N",
        help="runs that train at once, for the expected end (default: this machine's GPU "
        "slots, GPUs x device.jobs_per_gpu; 1 without a GPU or for a CPU study)",
    )
    c.add_argument(
        "--watch",
        type=float,
        default=None,
        metavar="SECONDS",
        help="redraw every SECONDS until every run is complete (Ctrl-C stops)",
    )
    c.add_argument("--json", action="store_true", help="print the same as JSON")
    c.add_argument(
        "--check-data",
        action="store_true",
        help="read the config's data now and compare runs by its content (seconds for "
        "CIFAR-10); by default the fingerprint in results/data/prepared.json is used, or "
        "the config's data keys",
    )
    c.set_defaults(func=cmd_status)

    c = sub.add_parser(
        "tensorboard",
        help="TensorBoard event folders from finished runs' metrics.parquet",
        description="Write OUT/{model}_seed{seed}/ for every finished run under --runs (the "
        "study's runs with --config): the scalars a run writes live with "
        "tracking.tensorboard, from its metrics.parquet. Needs the tensorboard package "
        "(pip install -e '.[tensorboard]'). View with: tensorboard --logdir OUT",
    )
    c.add_argument(
        "--config",
        nargs="+",
        action="extend",
        metavar="YAML",
        help="the study's config files: only its runs (default: every run under --runs)",
    )
    c.add_argument("--runs", default="results/runs", help="the runs folder (default: results/runs)")
    c.add_argument("--out", required=True, metavar="DIR", help="folder of the event folders")
    c.set_defaults(func=cmd_tensorboard)
