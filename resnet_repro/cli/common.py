"""What every subcommand shares: printing, the --config option and loading the study it
names. Imports no other command-line module, so each of them can import it."""

from __future__ import annotations

import argparse
import os
import sys

from ..config import ConfigError, Study, load_study


def say(msg: str) -> None:
    print(msg, flush=True)


def warn(msg: str) -> None:
    print(f"warning: {msg}", file=sys.stderr, flush=True)


CONFIG_ENV = "RESNET_REPRO_CONFIG"


def add_config(p: argparse.ArgumentParser) -> None:
    p.add_argument(
        "--config",
        action="extend",
        nargs="+",
        metavar="YAML",
        help="study config file(s), as given to Snakemake; later files override "
        f"earlier ones key by key (default: the files listed in ${CONFIG_ENV}, "
        "which the workflow sets)",
    )


def load_config(args: argparse.Namespace) -> Study:
    paths = args.config
    if not paths:
        # The workflow hands its config files over in the environment, so that which file
        # holds the config is not part of the job's tracked parameters.
        paths = [p for p in os.environ.get(CONFIG_ENV, "").split(os.pathsep) if p]
    if not paths:
        raise ConfigError(f"no config: pass --config FILE (or set {CONFIG_ENV})")
    return load_study(paths)


def add_statistic(c: argparse.ArgumentParser) -> None:
    """--statistic: which std Figure 7 draws (analysis.figure7_statistic)."""
    c.add_argument(
        "--statistic",
        choices=["pooled", "per_channel"],
        default="pooled",
        help="pooled: one std over images, positions and channels (default); per_channel: "
        "each channel's std over images and positions, averaged over channels",
    )
