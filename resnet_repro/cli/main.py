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

from .. import __version__
from ..config import ConfigError
from . import status
from .common import add_config, load_config


def build_parser(light: bool = False) -> argparse.ArgumentParser:
    """The whole command line; with `light`, only the subcommands of `status` (status,
    tensorboard), whose parser needs neither torch nor pandas: the other subcommands'
    modules are imported only here, so that `resnet-repro status` answers at once."""
    p = argparse.ArgumentParser(
        prog="resnet-repro",
        description="Reproduce the CIFAR-10 study of He et al. 2015, section 4.2.",
    )
    p.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")
    if light:
        status.add_parsers(sub)
        return p

    from . import analysis, bench, probes, published, train

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
    status.add_parsers(sub)

    c = sub.add_parser(
        "bench-landscape",
        help="training images evaluated per second by the loss landscape (Li et al. 2018) "
        "against plain evaluation, and the configured grid's projected time",
    )
    bench.add_landscape_arguments(c)
    c.set_defaults(func=bench.run_landscape_from_args)
    return p


def bad_input() -> tuple[type[BaseException], ...]:
    """The errors that mean bad input: one line, no traceback. The data and result modules
    are looked up only if already imported (no error of theirs can come from a command
    that never imported them, and importing them would cost `status` seconds)."""
    kinds: list[type[BaseException]] = [ConfigError, TimeoutError]
    for module, name in (
        ("resnet_repro.data.arrays", "DataError"),
        ("resnet_repro.results", "ResultError"),
    ):
        if module in sys.modules:
            kinds.append(getattr(sys.modules[module], name))
    return tuple(kinds)


def main(argv: Sequence[str] | None = None) -> int:
    # Ctrl-C must stop a job whatever started it: a process started with SIGINT ignored (a
    # shell's `&`, nohup, some CI runners, a Snakemake that was started so) passes that on,
    # and Python then installs no KeyboardInterrupt handler, so the job would train to the end.
    main_thread = threading.current_thread() is threading.main_thread()  # signal's rule
    before = signal.signal(signal.SIGINT, signal.default_int_handler) if main_thread else None
    try:
        return _run(sys.argv[1:] if argv is None else list(argv))
    except KeyboardInterrupt:
        print("resnet-repro: interrupted", file=sys.stderr, flush=True)
        return 130
    finally:  # for callers in the same process (tests)
        if main_thread:
            signal.signal(signal.SIGINT, before)


def _run(argv: list[str]) -> int:
    # The heavy modules (torch, pandas, pyarrow) are imported in here, inside main's handler.
    light = bool(argv) and argv[0] in status.COMMANDS
    args = build_parser(light).parse_args(argv)
    try:
        return args.func(args)
    except Exception as e:
        if not isinstance(e, bad_input()):
            raise
        print(f"resnet-repro: error: {e}", file=sys.stderr)
        return 2
