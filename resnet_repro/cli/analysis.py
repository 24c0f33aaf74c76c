"""Subcommands of the analyses: Figure 7's layer responses, the tables (Table 6 and its
companions) and Figures 6 and 7.

Kept apart from `main` (which registers them) so that each module reads top to bottom; the
same conventions hold: files in, files out, one-line errors on bad input.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Sequence
from functools import partial
from pathlib import Path

from ..config import Study
from .common import add_statistic, say, warn


def _read_metrics_files(
    paths: Sequence[str], what: str = "that run is reported as missing", windows: bool = False
):
    """The epoch rows of the metrics files that exist (with `windows`, their training-window
    rows too), warning about each absent one."""
    from ..results import read_all_metrics

    present = [p for p in paths if Path(p).is_file()]
    for p in paths:
        if p not in present:
            warn(f"{p} does not exist; {what}")
    return read_all_metrics(present, windows=windows)


def _run_info(paths: Sequence[str]) -> tuple[dict, dict]:
    """(parameters per model, {(model, seed): device and schedule}) from the run.json beside
    each metrics file that has one."""
    import json

    from ..tables.families import schedule_text

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
            n_test = (r.get("data") or {}).get("n_test")
            if n_test is not None:
                info[key]["test_images"] = int(n_test)
        except (ValueError, KeyError, TypeError):
            warn(f"{run} is not a resnet-repro run.json; its run shows no device/schedule")
    return params, info


def cmd_tables(args: argparse.Namespace, load: Callable[[argparse.Namespace], Study]) -> int:
    import pandas as pd

    from ..nets.anatomy import count_parameters
    from ..nets.families import build_model
    from ..results import write_text
    from ..tables import comparison, families
    from ..tables.runs import run_summary
    from ..tables.text import to_html, to_markdown

    study = load(args)
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
    # The test set's size per model (from its runs' run.json), for the binomial noise of
    # a single run's error.
    test_images = {}
    for (model, _), record in sorted(info.items()):
        if record.get("test_images") is not None:
            test_images.setdefault(model, record["test_images"])
    out = Path(args.out_dir)
    tables = {
        "table6": comparison.table6(
            paper_metrics, paper_runs, params, study.analysis.tolerance_pct, test_images
        ),
        "plain_vs_residual": comparison.plain_vs_residual(paper_metrics, paper_runs),
        "runs": run_summary(metrics, runs),
        "imagenet_style": families.imagenet_style_table(metrics, runs, params),
        "families": families.families_table(both, runs + compare_runs, params, info),
    }
    shown_columns = {
        "table6": comparison.TABLE6_DISPLAY_COLUMNS,
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
            say(to_markdown(tables[name][shown_columns[name]]))
    say(to_markdown(tables["families"]))
    return 0


def cmd_figure6(args: argparse.Namespace) -> int:
    from ..figures.paper_figures import figure6
    from ..figures.style import save_figure

    metrics = _read_metrics_files(args.metrics, windows=True)
    png, pdf = save_figure(figure6(metrics, ylim=(0.0, args.ymax)), args.out)
    say(f"Figure 6 -> {png}, {pdf}")
    return 0


def cmd_figure7(args: argparse.Namespace) -> int:
    from ..figures.paper_figures import figure7
    from ..figures.style import save_figure
    from ..results import read_all_layer_std

    fig = figure7(read_all_layer_std(args.layer_std), args.models, args.statistic)
    png, pdf = save_figure(fig, args.out)
    say(f"Figure 7 ({args.statistic} std) -> {png}, {pdf}")
    return 0


def add_parsers(
    sub,
    add_config: Callable[[argparse.ArgumentParser], None],
    load: Callable[[argparse.Namespace], Study],
) -> None:
    c = sub.add_parser(
        "tables",
        help="Table 6 against the paper, plain vs residual, runs, "
        "the ImageNet-style family and both families side by side",
    )
    add_config(c)
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
    c.set_defaults(func=partial(cmd_tables, load=load))

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
    add_statistic(c)
    c.add_argument("--out", required=True, help="PNG path; a PDF is written beside it")
    c.set_defaults(func=cmd_figure7)
