"""Subcommands for published checkpoints: import, evaluate, their table and their Figure 7.

Kept apart from `main` (which registers them) so that each module reads top to bottom; the
same conventions hold: files in, files out, one-line errors (ResultError) on bad input.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..results import ResultError
from .common import add_statistic

# Column titles of the published Figure 7: the repository behind each checkpoint format.
REPOSITORIES = {
    "akamaster": "akamaster/pytorch_resnet_cifar10",
    "wooyeolbaek": "wooyeolBaek/deep-residual-learning",
}


def cmd_import(args: argparse.Namespace) -> int:
    from ..nets import normalization
    from ..nets.modelfile import payload
    from ..published.checkpoints import import_checkpoint
    from ..results import save_torch
    from .common import load_config

    def train_mean():
        """The per-pixel mean of every training image of the study's data (never a subset):
        what a wooyeolbaek net is fed."""
        from .. import data

        cfg = load_config(args).data
        mean, n = data.source_train_mean(cfg)
        where = f"{cfg.source} at {cfg.root}" if cfg.source == "cifar10" else cfg.source
        return mean, f"all {n} training images of {where}"

    net, identity, norm = import_checkpoint(
        args.file, args.format, args.name, args.model, train_mean=train_mean
    )
    save_torch(payload(net, identity, norm), args.out)
    print(
        f"{args.name}: {args.format} {identity['model']} from {args.file} -> {args.out} "
        f"(inputs: {normalization.describe(norm)}; {norm['note']})",
        flush=True,
    )
    return 0


def cmd_evaluate(args: argparse.Namespace) -> int:
    import torch

    from .. import data
    from ..engine.evaluation import evaluate
    from ..nets import normalization
    from ..nets.modelfile import load_model_file
    from ..progressbar import Bar
    from ..results import write_json
    from .common import load_config, warn

    study = load_config(args)
    model, identity, norm = load_model_file(args.model_file, warn=warn)
    arrays = data.load_arrays(study.data)
    test = data.to_device(arrays, torch.device("cpu"))
    with Bar(f"evaluating {args.name or identity['model']}", "batches") as bar:
        loss, error = evaluate(
            model, test.test_x, test.test_y, norm, test.mean, study.train.eval_batch_size, bar
        )
    source = identity.get("source", {})
    record = {
        "name": args.name or source.get("name") or identity["model"],
        "model": identity["model"],
        "format": source.get("format"),
        "file": source.get("file"),
        "sha256": source.get("sha256"),
        "test_loss": loss,
        "test_error_pct": error,
        "test_images": len(test.test_y),
        "normalization": normalization.describe(norm),
        "data": study.to_dict()["data"],
    }
    write_json(record, args.out)
    print(
        f"{record['name']} ({identity['model']}): test error {error:.2f}% on "
        f"{len(test.test_y)} images -> {args.out}",
        flush=True,
    )
    return 0


def cmd_published_table(args: argparse.Namespace) -> int:
    from ..published.table import published_table
    from ..results import write_text
    from ..tables.paper import SELECTED_ON_TEST
    from ..tables.text import to_html, to_markdown

    evals = []
    for p in args.eval:
        try:
            evals.append(json.loads(Path(p).read_text()))
        except (OSError, ValueError) as e:
            raise ResultError(f"evaluation file {p} is unreadable ({type(e).__name__})") from None
    df = published_table(evals)
    out = Path(args.out_dir)
    write_text(df.to_csv(index=False), out / "published.csv")
    shown = df.drop(columns=["reported_source", "reported_note"])
    sources = sorted({s for s in df["reported_source"] if s})
    note = "".join(f"\nReported: {s}." for s in sources)
    if (df["reported_selection"] == SELECTED_ON_TEST).any():
        note += (
            f"\nA reported number marked '{SELECTED_ON_TEST}' is the best test error over "
            "the epochs, an epoch chosen on the test set: it is optimistic, so "
            "difference_pct (ours - theirs) reads too high by that selection's gain."
        )
    note += "".join(
        f"\n{name}: {text}." for name, text in zip(df["name"], df["reported_note"]) if text
    )
    md = to_markdown(shown) + "\n" + note.lstrip("\n") + ("\n" if note else "")
    write_text(md, out / "published.md")
    write_text(
        to_html(shown, "Published checkpoints on this test set", note.strip()),
        out / "published.html",
    )
    print(to_markdown(shown), flush=True)
    return 0


def cmd_figure7_published(args: argparse.Namespace) -> int:
    from ..figures.paper_figures import figure7_groups
    from ..figures.style import save_figure
    from ..results import read_all_layer_std

    groups = {}
    for label, *files in args.group:
        groups[REPOSITORIES.get(label, label)] = read_all_layer_std(files)
    fig = figure7_groups(
        groups,
        "Figure 7 of He et al. 2015 redrawn from published "
        "checkpoints: 3x3 layer responses (after BN, before "
        "ReLU/addition)",
        args.statistic,
    )
    png, pdf = save_figure(fig, args.out)
    print(f"Figure 7 of published checkpoints -> {png}, {pdf}", flush=True)
    return 0


def add_parsers(sub, add_config) -> None:
    from ..published.checkpoints import FORMAT_HELP, FORMATS

    c = sub.add_parser(
        "import",
        help="turn a published checkpoint into our model.pt layout",
        description=f"Read a foreign checkpoint ({FORMAT_HELP}) with weights_only=True and "
        "write our model.pt: the same function in our layout, with the input "
        "normalisation the net was trained with. A wooyeolbaek net subtracts the per-pixel "
        "mean of its training images: the study's data (--config) gives it, from all its "
        "training images (never a subset).",
    )
    add_config(c)
    c.add_argument("--format", required=True, choices=FORMATS)
    c.add_argument("--file", required=True, help="the checkpoint file")
    c.add_argument("--name", required=True, help="a name for the imported net")
    c.add_argument(
        "--model",
        default=None,
        help="plain20, resnet56, ...: needed for a "
        "wooyeolbaek file without its config.json or run folder name",
    )
    c.add_argument("--out", required=True, help="model.pt to write")
    c.set_defaults(func=cmd_import)

    c = sub.add_parser(
        "evaluate",
        help="test error of a model.pt on the study's test set "
        "(eval mode, fp32, its own input normalisation)",
    )
    add_config(c)
    c.add_argument("--model-file", required=True, help="a model.pt (ours or imported)")
    c.add_argument(
        "--name", default=None, help="name in the output (default: the import name, else the model)"
    )
    c.add_argument("--out", required=True, help="JSON file to write")
    c.set_defaults(func=cmd_evaluate)

    c = sub.add_parser(
        "published-table",
        help="published checkpoints: the authors' reported error, ours, and the difference",
    )
    c.add_argument("--eval", nargs="*", default=[], help="JSON files of `evaluate`")
    c.add_argument("--out-dir", required=True, help="folder for published.csv and .md")
    c.set_defaults(func=cmd_published_table)

    c = sub.add_parser(
        "figure7-published",
        help="Figure 7 for imported nets, one column per group (e.g. per reproduction)",
    )
    c.add_argument(
        "--group",
        action="append",
        nargs="+",
        required=True,
        metavar="LABEL FILE",
        help="a column title and its layer-std Parquet files; repeat per group",
    )
    add_statistic(c)
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure7_published)
