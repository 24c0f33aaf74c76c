"""Figures 6 and 7 of the paper, redrawn from our results: DataFrame in, matplotlib Figure out
(styling and file writing in `style`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..config import IMAGENET_ARCH, parse_model_name
from ..tables.runs import RUN_KEYS, _require, final_rows, sort_models
from .style import (
    ARCH_LINESTYLE,
    corner_note,
    depth_colors,
    empty_panel,
    figure_style,
    model_label,
)

FIG6_YLIM = (0.0, 20.0)  # the paper's Figure 6 y range (error %)
ITER_UNIT = 1e4
ITER_LABEL = "iter. (1e4)"
TRAIN_STYLE = {"linestyle": "--", "linewidth": 1.0}  # paper: dashed = training error
TEST_STYLE = {"linestyle": "-", "linewidth": 2.2}  # paper: bold = test error


def sorted_layer_std(layer_std: pd.DataFrame) -> pd.DataFrame:
    """Add `rank` (1 = largest std; ties: network order) within each model (and seed, when a
    `seed` column is present), for Figure 7's bottom panel. Rows come back sorted by model,
    seed, rank."""
    _require(layer_std, ["layer", "std"], "layer_std")
    keys = [c for c in RUN_KEYS if c in layer_std.columns]
    df = layer_std.sort_values(
        keys + ["std", "layer"], ascending=[True] * len(keys) + [False, True], kind="stable"
    )
    if keys:
        df = df.assign(rank=df.groupby(keys, sort=False).cumcount() + 1)
    else:
        df = df.assign(rank=np.arange(1, len(df) + 1))
    return df.reset_index(drop=True)


def _mean_curve(
    metrics: pd.DataFrame, model: str, x: str = "iteration"
) -> tuple[pd.DataFrame, int, bool]:
    """Mean train/test error over the seeds of a model per iteration. Diverged runs are left
    out when the model has an ok run; if all diverged they are drawn (and flagged)."""
    rows = metrics[metrics["model"] == model]
    status = final_rows(rows)[["seed", "status"]]
    ok_seeds = set(status.loc[status["status"] == "ok", "seed"])
    all_diverged = not ok_seeds
    if not all_diverged:
        rows = rows[rows["seed"].isin(ok_seeds)]
    curve = rows.groupby(x, sort=True)[["train_error_pct", "test_error_pct"]].mean().reset_index()
    return curve, rows["seed"].nunique(), all_diverged


def _fig6_panel(
    ax,
    metrics: pd.DataFrame,
    models: list[str],
    colors: dict,
    title: str,
    empty_text: str,
    ylim: tuple[float, float],
    by_epoch: bool = False,
) -> None:
    """One panel of Figure 6; against iterations / 1e4 as in the paper, or against epochs
    (`by_epoch`, the ImageNet-style family, whose recipe counts epochs)."""
    handles, notes = [], []
    for model in models:
        arch, depth = parse_model_name(model)
        curve, n_seeds, all_diverged = _mean_curve(
            metrics, model, "epoch" if by_epoch else "iteration"
        )
        x = (
            curve["epoch"].to_numpy(dtype=float)
            if by_epoch
            else curve["iteration"].to_numpy(dtype=float) / ITER_UNIT
        )
        label = model_label(model)
        color = colors[depth]
        ax.plot(
            x,
            curve["train_error_pct"].to_numpy(dtype=float),
            color=color,
            label=f"_{label} train",
            **TRAIN_STYLE,
        )
        (line,) = ax.plot(
            x, curve["test_error_pct"].to_numpy(dtype=float), color=color, label=label, **TEST_STYLE
        )
        handles.append(line)
        final = curve["test_error_pct"].dropna()
        if all_diverged:
            notes.append(f"{label}: diverged")
        if final.empty:
            notes.append(f"{label}: no test error")
        elif final.iloc[-1] > ylim[1]:
            notes.append(
                f"{label}: error > {ylim[1]:g}%, off the chart "
                f"(final test error {final.iloc[-1]:.1f}%)"
            )
    ax.set_title(title)
    ax.set_xlabel("epoch" if by_epoch else ITER_LABEL)
    ax.set_ylabel("error (%)")
    ax.set_ylim(*ylim)
    ax.set_xlim(left=0)
    if not models:
        empty_panel(ax, empty_text)
        return
    style_keys = [
        Line2D([], [], color="0.35", label="train (dashed)", **TRAIN_STYLE),
        Line2D([], [], color="0.35", label="test (bold)", **TEST_STYLE),
    ]
    ax.legend(
        handles=handles + style_keys,
        loc="best" if by_epoch else "upper right",
        fontsize=8,
        frameon=True,
    )
    corner_note(ax, notes, top=False)  # early (high) errors fill the upper left


def figure6(metrics: pd.DataFrame, ylim: tuple[float, float] = FIG6_YLIM) -> Figure:
    """The paper's Figure 6 from our per-epoch metrics.

    Panels: (left) plain nets, (middle) ResNets except ResNet-1202, and (right) ResNet-110 vs
    ResNet-1202, drawn only when a resnet1202 run exists (else the figure has 2 axes). When
    ImageNet-style nets are present (the second study family) they get a panel of their own
    after these, and the plain/ResNet panels are drawn only if they have runs. Per model
    two lines in its depth colour: training error dashed/thin, then test error solid/bold (in
    this order in `ax.lines`), against iterations / 1e4, y on `ylim` (0-20% as in the paper).
    Several seeds: the mean per iteration over the ok runs (diverged runs left out unless all
    diverged, which a note says). A curve whose final test error is above the chart gets a note
    in its panel (the paper leaves plain-110, > 60%, off its chart).
    """
    models = sort_models(metrics["model"].unique()) if len(metrics) else []
    arch_depth = {m: parse_model_name(m) for m in models}
    plain = [m for m in models if arch_depth[m][0] == "plain"]
    res = [m for m in models if arch_depth[m][0] == "resnet" and arch_depth[m][1] != 1202]
    right = [m for m in ("resnet110", "resnet1202") if m in models]
    has_1202 = "resnet1202" in models
    imnet = [m for m in models if arch_depth[m][0] == IMAGENET_ARCH]
    colors = depth_colors(d for _, d in arch_depth.values())
    n_seeds = metrics.groupby("model")["seed"].nunique() if len(metrics) else pd.Series()
    spec = [(plain, "plain networks", "no plain-net runs"), (res, "ResNets", "no ResNet runs")]
    if imnet:  # a study of the second family: its panel, and the paper's only if trained
        spec = [p for p in spec if p[0]]
    if has_1202:
        spec.append((right, "ResNet-110 vs ResNet-1202", ""))
    if imnet:
        spec.append((imnet, "ImageNet-style ResNets", ""))
    with figure_style():
        panels = len(spec)
        fig = Figure(figsize=(max(5.0 * panels, 8.0), 4.3), layout="constrained")
        axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
        for ax, (panel_models, title, empty_text) in zip(axes, spec):
            _fig6_panel(
                ax,
                metrics,
                panel_models,
                colors,
                title,
                empty_text,
                ylim,
                by_epoch=panel_models is imnet,
            )
        axes[0].yaxis.set_tick_params(labelleft=True)
        seeds_text = "mean over seeds" if len(n_seeds) and n_seeds.max() > 1 else "one seed each"
        what = (
            "In the style of Figure 6: ImageNet-style ResNets on CIFAR-10,"
            if imnet and not (plain or res)
            else "Redraw of He et al. 2015, Figure 6: CIFAR-10"
        )
        fig.suptitle(
            f"{what} training error (dashed) and test error (bold); our runs, {seeds_text}"
        )
    return fig


def _fig7_panels(
    top, bottom, layer_std: pd.DataFrame, wanted: list[str], colors: dict
) -> list[str]:
    """Draw Figure 7's two panels for `wanted` models present in `layer_std`; return the
    absent ones."""
    present = set(layer_std["model"]) if len(layer_std) else set()
    drawn = [m for m in wanted if m in present]
    ranked = sorted_layer_std(layer_std[layer_std["model"].isin(drawn)]) if drawn else None
    for model in drawn:
        arch, depth = parse_model_name(model)
        kw = {
            "color": colors[depth],
            "linestyle": ARCH_LINESTYLE[arch],
            "linewidth": 1.6,
            "label": model_label(model),
        }
        rows = layer_std[layer_std["model"] == model]
        by_layer = rows.groupby("layer", sort=True)["std"].mean()
        top.plot(by_layer.index.to_numpy(), by_layer.to_numpy(dtype=float), **kw)
        by_rank = ranked[ranked["model"] == model].groupby("rank", sort=True)["std"].mean()
        bottom.plot(by_rank.index.to_numpy(), by_rank.to_numpy(dtype=float), **kw)
    top.set_title("layer responses in network order")
    top.set_xlabel("layer index (original)")
    bottom.set_title("layer responses sorted by magnitude")
    bottom.set_xlabel("layer index (sorted by magnitude)")
    for ax in (top, bottom):
        ax.set_ylabel("std")
        ax.set_xlim(left=0)
        if drawn:
            ax.legend(loc="upper right", fontsize=8)
        else:
            empty_panel(ax, "no layer responses for the requested models")
    absent = [m for m in wanted if m not in present]
    if absent:
        corner_note(top, [f"not in the data: {', '.join(model_label(m) for m in absent)}"])
    return absent


def figure7(layer_std: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """The paper's Figure 7 from layer-response stds (LAYER_STD_SCHEMA rows, several models).

    Top: std per layer in network order; bottom: the same stds sorted in descending order
    (vs rank). One line per model of `models` present in `layer_std` (default: all present),
    mean over seeds where several (bottom: mean of each seed's sorted curve). Plain nets dashed,
    ResNets solid, colour by depth as in `figure6`. Models asked for but absent are named in a
    note.
    """
    present = set(layer_std["model"]) if len(layer_std) else set()
    wanted = list(models) if models is not None else sort_models(present)
    with figure_style():
        fig = Figure(figsize=(7.5, 7.5), layout="constrained")
        top, bottom = fig.subplots(2, 1)
        drawn = [m for m in wanted if m in present]
        _fig7_panels(
            top, bottom, layer_std, wanted, depth_colors(parse_model_name(m)[1] for m in wanted)
        )
        if any(parse_model_name(m)[0] == IMAGENET_ARCH for m in drawn):
            fig.suptitle(
                "Figure 7 style: std of layer responses (after BN, before "
                "ReLU/addition; ResNet-50's 1x1 layers included)"
            )
        else:
            fig.suptitle(
                "Redraw of He et al. 2015, Figure 7: std of 3x3 layer responses "
                "(after BN, before ReLU/addition)"
            )
    return fig


def figure7_groups(groups: Mapping[str, pd.DataFrame], title: str) -> Figure:
    """Figure 7 once per group of nets, side by side (one column per group, same axes ranges
    and colours), e.g. the published checkpoints of each reproduction: `groups` maps a column
    title to LAYER_STD_SCHEMA rows, whose models are all drawn."""
    models = {
        label: sort_models(set(df["model"])) if len(df) else [] for label, df in groups.items()
    }
    colors = depth_colors(parse_model_name(m)[1] for ms in models.values() for m in ms)
    with figure_style():
        fig = Figure(figsize=(5.5 * max(len(groups), 1), 7.5), layout="constrained")
        axes = fig.subplots(2, max(len(groups), 1), squeeze=False, sharey="row")
        for col, (label, df) in enumerate(groups.items()):
            top, bottom = axes[0, col], axes[1, col]
            _fig7_panels(top, bottom, df, models[label], colors)
            top.set_title(f"{label}\nlayer responses in network order")
            bottom.set_title(f"{label}\nlayer responses sorted by magnitude")
        fig.suptitle(title)
    return fig
