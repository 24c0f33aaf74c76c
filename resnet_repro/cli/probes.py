"""The `resnet-repro probe` and `resnet-repro probe-figure` subcommands: read a trained
model.pt and the study's test images, run one probe, write its Parquet file; or draw one
probe's figure from those files. `cli.build_parser` adds them with `add_parsers`.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

import torch
from torch import nn

from ..config import Study
from ..probes.registry import BY_NAME, LANDSCAPE, LAYER_STD, NAMES, probe
from ..progressbar import Bar
from .common import say, warn


def load_trained(path: str) -> tuple[nn.Module, dict, dict]:
    """(model, identity, normalisation record) of a model.pt, ours or imported, through the
    one loader every reader of model files uses."""
    from ..nets.modelfile import load_model_file

    return load_model_file(path, warn=warn)


class StudyImages:
    """The study's images, read once and moved to `device` when first asked for, fed the way
    the net was trained: its stored normalisation (for our runs the training set's per-pixel
    mean subtracted, section 4.2), unaugmented, fp32."""

    def __init__(self, study: Study, device: torch.device, norm: dict):
        self.study, self.device, self.norm, self._data = study, device, norm, None

    def __call__(self, split: str, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        """The first `n` images of the "train" or "test" split (all of them where it holds
        fewer), with their labels."""
        from .. import data
        from ..nets import normalization

        if self._data is None:
            self._data = data.to_device(data.load_arrays(self.study.data), self.device)
        d = self._data
        x, y = (d.train_x, d.train_y) if split == "train" else (d.test_x, d.test_y)
        n = min(n, len(y))
        return normalization.normalize(x[:n], self.norm, d.mean), y[:n]


def warn_if_long_on_cpu(kind: str, study: Study, name: str, model: nn.Module) -> None:
    """A probe whose size takes long on this CPU says so before it starts, with the keys
    that shrink it."""
    from ..probes.cost import long_probe_warning

    test_images = study.data.test_subset or 10000
    message = long_probe_warning(
        kind, name, model, study.analysis, test_images, torch.get_num_threads()
    )
    if message:
        warn(message)


def run_probe(kind: str, study: Study, model_file: str, out: str, cpu_threads: int | None) -> int:
    """One registry probe of one model file: checks, placement, measure, one Parquet file
    (written only when the whole measurement succeeded)."""
    import dataclasses

    from ..config import ConfigError
    from ..engine.devices import place
    from ..engine.evaluation import strict_fp32
    from ..probes import label_run
    from ..probes.context import ProbeContext

    spec = probe(kind)
    model, identity, norm = load_trained(model_file)
    name, seed = identity["model"], identity["seed"]
    why_not = spec.why_not(name)
    if why_not:
        raise ConfigError(why_not)
    device_cfg = study.device
    if not spec.training_device:
        device_cfg = dataclasses.replace(device_cfg, device="cpu")
    placement, slot = place(device_cfg, log=say)
    if cpu_threads:
        torch.set_num_threads(cpu_threads)
    if placement.device.type == "cpu":
        warn_if_long_on_cpu(kind, study, name, model)
    try:
        # fp32 whatever the training precision: the probes measure the trained weights.
        model = model.to(device=placement.device, dtype=torch.float32)
        # A bar on a terminal; plain lines with the time left in a log file.
        with strict_fp32(), Bar(f"{kind} {name} seed {seed}", "batches") as bar:
            ctx = ProbeContext(
                study=study,
                model=model,
                identity=identity,
                device=placement.device,
                bar=bar,
                log=say,
                images=StudyImages(study, placement.device, norm),
            )
            rows, what = spec.run(ctx)
    finally:
        if slot is not None:
            slot.release()
    spec.write(label_run(rows, name, seed, spec.schema), out)
    say(f"{name} seed {seed}: {what}, {placement.name} (fp32) -> {out}")
    return 0


def cmd_probe(args: argparse.Namespace, load: Callable[[argparse.Namespace], Study]) -> int:
    return run_probe(args.kind, load(args), args.model_file, args.out, args.cpu_threads)


def cmd_layer_std(args: argparse.Namespace, load: Callable[[argparse.Namespace], Study]) -> int:
    """`probe layer_std` with the image count given on the command line."""
    import dataclasses

    study = load(args)
    if args.images is not None:
        analysis = dataclasses.replace(study.analysis, layer_std_images=args.images)
        study = dataclasses.replace(study, analysis=analysis)
    return run_probe(LAYER_STD.name, study, args.model_file, args.out, None)


def cmd_probe_figure(args: argparse.Namespace) -> int:
    from ..figures.style import save_figure

    spec = probe(args.kind)  # one with a figure: the parser offers no other
    fig = spec.figure.make(spec.read_all(args.results), args.models)
    png, pdf = save_figure(fig, args.out)
    say(f"{args.kind} figure -> {png}, {pdf}")
    return 0


def cmd_landscape_figure(args: argparse.Namespace) -> int:
    from ..figures.landscape import figure_landscape
    from ..figures.style import save_figure

    fig = figure_landscape(LANDSCAPE.read_all(args.results), title=args.title)
    png, pdf = save_figure(fig, args.out)
    say(f"landscape figure -> {png}, {pdf}")
    return 0


def _add_run_options(c: argparse.ArgumentParser) -> None:
    c.add_argument("--model-file", required=True, help="a run's (or an imported) model.pt")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.add_argument(
        "--cpu-threads",
        type=int,
        default=None,
        metavar="N",
        help="torch CPU threads (the workflow passes the job's threads)",
    )


def add_parsers(
    sub,
    add_config: Callable[[argparse.ArgumentParser], None],
    load: Callable[[argparse.Namespace], Study],
) -> None:
    c = sub.add_parser(
        "probe",
        help="measure a trained model without training it: Figure 7's layer responses, "
        "block lesions, paths, block changes, loss landscapes (He et al. 2015; Veit et al. "
        "2016; Li et al. 2018)",
        description="Run one probe on a trained model.pt (fp32, on the study's device) and "
        "write one Parquet file. "
        + "; ".join(f"{p.name}: {p.help}" for p in BY_NAME.values())
        + ".",
    )
    add_config(c)
    c.add_argument("kind", choices=NAMES, help="which probe")
    _add_run_options(c)
    c.set_defaults(func=lambda args: cmd_probe(args, load))

    c = sub.add_parser("probe-figure", help="draw one probe's figure from its Parquet files")
    c.add_argument(
        "kind", choices=[p.name for p in BY_NAME.values() if p.figure], help="which probe"
    )
    c.add_argument("--results", nargs="*", default=[], help="the probe's Parquet files")
    c.add_argument("--models", nargs="*", default=None, help="models to draw, in this order")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_probe_figure)

    c = sub.add_parser(
        "layer-std",
        help="std of every 3x3 layer's response of a trained model (Figure 7; "
        "`probe layer_std` with the image count given here)",
    )
    add_config(c)
    c.add_argument(
        "--images",
        type=int,
        default=None,
        help="test images to use (default: analysis.layer_std_images)",
    )
    c.add_argument("--model-file", required=True, help="a run's (or an imported) model.pt")
    c.add_argument("--out", required=True, help="Parquet file to write")
    c.set_defaults(func=lambda args: cmd_layer_std(args, load))

    c = sub.add_parser(
        LANDSCAPE.name,
        help="the training-loss landscape of a trained model along two random "
        "filter-normalised directions (Li et al. 2018), and the interpolation from its "
        "initial weights (`probe landscape`)",
        description="Evaluate the training loss and error of a trained model.pt at theta + "
        "a*d1 + b*d2 over a grid (analysis.landscape_range, landscape_points), along d1 "
        "alone, and on the line from the run's initial weights (rebuilt from its seed) to "
        "theta, on the first analysis.landscape_images training images (eval mode, fp32, on "
        "the study's device); write one Parquet file.",
    )
    add_config(c)
    _add_run_options(c)
    c.set_defaults(kind=LANDSCAPE.name, func=lambda args: cmd_probe(args, load))

    c = sub.add_parser(
        "landscape-figure",
        help="draw the plain and residual loss landscapes of each depth side by side",
    )
    c.add_argument("--results", nargs="*", default=[], help="the landscapes' Parquet files")
    c.add_argument("--title", default=None, help="the figure's title (default: Li et al.'s)")
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_landscape_figure)


__all__ = [
    "StudyImages",
    "add_parsers",
    "cmd_landscape_figure",
    "cmd_layer_std",
    "cmd_probe",
    "cmd_probe_figure",
    "load_trained",
    "run_probe",
]
