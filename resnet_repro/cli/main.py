"""The `resnet-repro` command line: read files, call the package's functions, write files.

Every Snakemake rule calls one of these subcommands. Bad input ends with one line on stderr
(`resnet-repro: error: ...`) and exit status 2, never a traceback; Ctrl-C (SIGINT) ends with
`resnet-repro: interrupted` and exit status 130, also while the command is still importing.

This module imports nothing heavy at its top: the console script imports it before `main`
runs, and a SIGINT during torch's import must reach `main`'s handler, not Python's.
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
from collections.abc import Sequence


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__
    from . import analysis, bench, probes, published, train
    from .common import add_config, load_config

    p = argparse.ArgumentParser(
        prog="resnet-repro",
        description="Reproduce the CIFAR-10 study of He et al. 2015, section 4.2.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    train.add_parsers(sub)
    analysis.add_parsers(sub, add_config, load_config)
    published.add_parsers(sub, add_config)
    probes.add_parsers(sub, add_config, load_config)

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

    c = sub.add_parser(
        "bench-study",
        help="the trainer's rate for every model of a study, and the study's training time "
        "projected onto N devices",
    )
    bench.add_study_arguments(c)
    c.set_defaults(func=bench.run_study_from_args)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C must stop a job whatever started it: a process started with SIGINT ignored (a
    # shell's `&`, nohup, some CI runners, a Snakemake that was started so) passes that on,
    # and Python then installs no KeyboardInterrupt handler, so the job would train to the end.
    main_thread = threading.current_thread() is threading.main_thread()  # signal's rule
    before = signal.signal(signal.SIGINT, signal.default_int_handler) if main_thread else None
    try:
        return _run(argv)
    except KeyboardInterrupt:
        print("resnet-repro: interrupted", file=sys.stderr, flush=True)
        return 130
    finally:  # for callers in the same process (tests)
        if main_thread:
            signal.signal(signal.SIGINT, before)


def _run(argv: Sequence[str] | None) -> int:
    # Imported here, inside main's handler: these pull in torch, pandas and pyarrow.
    from ..config import ConfigError
    from ..data import DataError
    from ..results import ResultError

    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ConfigError, DataError, ResultError, TimeoutError) as e:
        print(f"resnet-repro: error: {e}", file=sys.stderr)
        return 2
