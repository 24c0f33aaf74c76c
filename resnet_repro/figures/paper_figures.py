"""Figures 6 and 7 of the paper, redrawn from our results: DataFrame in, matplotlib Figure out
(styling and file writing in `style`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.lines import Line2D

from ..nets.families import family_of, model_label, parse_model_name
from ..results import LAYER_STD_STATISTICS, ResultError, epoch_rows, window_rows
from ..tables.runs import RUN_KEYS, final_rows, require, sort_models
from .style import (
    ARCH_LINESTYLE,
    corner_note,
    depth_colors,
    empty_panel,
    figure_style,
)

FIG6_YLIM = (0.0, 20.0)  # the paper's Figure 6 y range (error %)
TRAIN_STYLE = {"linestyle": "--", "linewidth": 1.0}  # paper: dashed = training error
TEST_STYLE = {"linestyle": "-", "linewidth": 2.2}  # paper: bold = test error


def iteration_unit(max_iteration: float) -> tuple[float, str]:
    """(divisor, axis label) for an iteration axis ending at `max_iteration`: the paper's
    "iter. (1e4)" from 20,000 iterations on, thousands from 2,000, plain counts below, so the
    ticks read as whole numbers whatever the study's length (never "0.12 (1e4)")."""
    if max_iteration >= 20_000:
        return 1e4, "iterations (1e4)"
    if max_iteration >= 2_000:
        return 1e3, "iterations (1e3)"
    return 1.0, "iterations"


def sorted_layer_std(layer_std: pd.DataFrame) -> pd.DataFrame:
    """Add `rank` (1 = largest std; ties: network order) within each model (and seed, when a
    `seed` column is present), for Figure 7's bottom panel. Rows come back sorted by model,
    seed, rank."""
    require(layer_std, ["layer", "std"], "the layer responses")
    keys = [c for c in RUN_KEYS if c in layer_std.columns]
    df = layer_std.sort_values(
        keys + ["std", "layer"], ascending=[True] * len(keys) + [False, True], kind="stable"
    )
    if keys:
        df = df.assign(rank=df.groupby(keys, sort=False).cumcount() + 1)
    else:
        df = df.assign(rank=np.arange(1, len(df) + 1))
    return df.reset_index(drop=True)


def _ok_runs(rows: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """The rows of a model's ok runs (diverged runs left out when the model has an ok run; if
    all diverged they are kept), and whether all diverged."""
    status = final_rows(epoch_rows(rows))[["seed", "status"]]
    ok_seeds = set(status.loc[status["status"] == "ok", "seed"])
    if not ok_seeds:
        return rows, True
    return rows[rows["seed"].isin(ok_seeds)], False


def _training_x(rows: pd.DataFrame, by_epoch: bool) -> pd.Series:
    """Where a training row is drawn: the middle of the iterations it averages (a window's
    centre; an epoch row of a file without windows at its end, as before), in iterations or,
    `by_epoch`, in epochs (iterations / the run's steps per epoch)."""
    span = rows["window_iterations"].astype("Float64").fillna(0).astype(float)
    windows = (rows["kind"] == "window").to_numpy() if "kind" in rows.columns else False
    x = rows["iteration"].astype(float) - np.where(windows, span / 2.0, 0.0)
    if not by_epoch:
        return x
    return x / rows["steps_per_epoch"].astype(float)


def _curves(metrics: pd.DataFrame, model: str, by_epoch: bool):
    """(train, test, seeds, all_diverged, windowed): the mean training curve over the ok seeds of a
    model, from its training-window rows where every such seed has them and they outnumber
    the epoch rows (else its epoch rows),
    and the mean test curve from its epoch rows, each as a frame with columns x and error."""
    rows, all_diverged = _ok_runs(metrics[metrics["model"] == model])
    epochs = epoch_rows(rows)
    steps = epochs.sort_values("iteration").groupby("seed")["iteration"].first()
    rows = rows.assign(steps_per_epoch=rows["seed"].map(steps).astype(float))
    epochs = epoch_rows(rows)
    windows = window_rows(rows)
    seeds = set(epochs["seed"])
    # the windows where every seed has them and they are finer than the epochs (a run
    # shorter than one window has a single window row)
    windowed = bool(len(windows)) and set(windows["seed"]) == seeds and len(windows) > len(epochs)
    train = windows if windowed else epochs
    train = (
        train.assign(x=_training_x(train, by_epoch))
        .groupby("x", sort=True)["train_error_pct"]
        .mean()
        .reset_index()
        .rename(columns={"train_error_pct": "error"})
    )
    xcol = "epoch" if by_epoch else "iteration"
    test = (
        epochs.groupby(xcol, sort=True)["test_error_pct"]
        .mean()
        .reset_index()
        .rename(columns={xcol: "x", "test_error_pct": "error"})
    )
    return train, test, len(seeds), all_diverged, windowed


def _fig6_panel(
    ax,
    metrics: pd.DataFrame,
    models: list[str],
    colors: dict,
    title: str,
    empty_text: str,
    ylim: tuple[float, float],
    by_epoch: bool = False,
    unit: tuple[float, str] = (1e4, "iterations (1e4)"),
) -> bool:
    """One panel of Figure 6; against iterations (in `unit`) as in the paper, or against
    epochs (`by_epoch`, the ImageNet-style family, whose recipe counts epochs). Returns
    whether its training curves come from training windows."""
    handles, notes, from_windows = [], [], []
    scale = 1.0 if by_epoch else unit[0]
    for model in models:
        arch, depth = parse_model_name(model)
        train, test, n_seeds, all_diverged, windowed = _curves(metrics, model, by_epoch)
        from_windows.append(windowed)
        label = model_label(model)
        color = colors[depth]
        ax.plot(
            train["x"].to_numpy(dtype=float) / scale,
            train["error"].to_numpy(dtype=float),
            color=color,
            label=f"_{label} train",
            **TRAIN_STYLE,
        )
        (line,) = ax.plot(
            test["x"].to_numpy(dtype=float) / scale,
            test["error"].to_numpy(dtype=float),
            color=color,
            label=label,
            **TEST_STYLE,
        )
        handles.append(line)
        final = test["error"].dropna()
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
    ax.set_xlabel("epoch" if by_epoch else unit[1])
    ax.set_ylabel("error (%)")
    ax.set_ylim(*ylim)
    ax.set_xlim(left=0)
    if not models:
        empty_panel(ax, empty_text)
        return False
    style_keys = [
        Line2D([], [], color="0.35", label="train (dashed)", **TRAIN_STYLE),
        Line2D([], [], color="0.35", label="test (bold)", **TEST_STYLE),
    ]
    # Below the panel, where it cannot cover a curve.
    ax.legend(
        handles=handles + style_keys,
        loc="upper center",
        bbox_to_anchor=(0.5, -0.2),
        ncol=3,
        fontsize=8,
        frameon=False,
    )
    corner_note(ax, notes, top=False)  # early (high) errors fill the upper left
    return all(from_windows)


def figure6(metrics: pd.DataFrame, ylim: tuple[float, float] = FIG6_YLIM) -> Figure:
    """The paper's Figure 6 from our metrics (epoch rows, and training-window rows where the
    runs have them).

    Panels: (left) plain nets, (middle) ResNets except ResNet-1202, and (right) ResNet-110 vs
    ResNet-1202, drawn only when a resnet1202 run exists (else the figure has 2 axes). When
    ImageNet-style nets are present (the second study family) they get a panel of their own
    after these, and the plain/ResNet panels are drawn only if they have runs. Per model
    two lines in its depth colour: training error dashed/thin, then test error solid/bold (in
    this order in `ax.lines`), against iterations in `iteration_unit`'s unit, y on `ylim`
    (0-20% as in the paper). The training error is the mean over each fixed window of
    iterations, drawn at the window's centre, where the runs logged windows (else the
    epoch means, at each epoch's end); the test error is evaluated at each epoch's end. The
    legend sits under each panel, off the curves.
    Several seeds: the mean per iteration over the ok runs (diverged runs left out unless all
    diverged, which a note says). A curve whose final test error is above the chart gets a note
    in its panel (the paper leaves plain-110, > 60%, off its chart).
    """
    models = sort_models(metrics["model"].unique()) if len(metrics) else []
    if len(metrics) and "kind" not in metrics.columns:
        metrics = metrics.assign(kind="epoch", window_iterations=pd.NA)
    unit = iteration_unit(float(metrics["iteration"].max()) if len(metrics) else 0.0)
    arch_depth = {m: parse_model_name(m) for m in models}
    paper = {m: family_of(m) for m in models if family_of(m).paper}
    plain = [m for m, f in paper.items() if not f.residual]
    res = [m for m, f in paper.items() if f.residual and arch_depth[m][1] != 1202]
    right = [m for m in ("resnet110", "resnet1202") if m in models]
    has_1202 = "resnet1202" in models
    imnet = [m for m in models if not family_of(m).paper]  # the ImageNet-style family
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
        fig = Figure(figsize=(max(5.5 * panels, 9.0), 5.2), layout="constrained")
        axes = fig.subplots(1, panels, sharey=True, squeeze=False)[0]
        windowed = []
        for ax, (panel_models, title, empty_text) in zip(axes, spec):
            windowed.append(
                _fig6_panel(
                    ax,
                    metrics,
                    panel_models,
                    colors,
                    title,
                    empty_text,
                    ylim,
                    by_epoch=panel_models is imnet,
                    unit=unit,
                )
            )
        axes[0].yaxis.set_tick_params(labelleft=True)
        seeds_text = "mean over seeds" if len(n_seeds) and n_seeds.max() > 1 else "one seed each"
        what = (
            "In the style of Figure 6: ImageNet-style ResNets trained on CIFAR-10"
            if imnet and not (plain or res)
            else "Redraw of He et al. 2015, Figure 6: training on CIFAR-10"
        )
        drawn_panels = [w for w, (m, _, _) in zip(windowed, spec) if m]
        train_text = (
            f"dashed: training error, mean over windows of {_window_text(metrics)} iterations"
            if drawn_panels and all(drawn_panels)
            else "dashed: training error, mean over each epoch"
        )
        fig.suptitle(
            f"{what}\n({train_text}; bold: test error at each epoch's end; our runs, {seeds_text})"
        )
    return fig


def _window_text(metrics: pd.DataFrame) -> str:
    """The training windows' length(s), the last (shorter) window of a run left out."""
    w = window_rows(metrics)
    if not len(w):
        return "?"
    lengths = w["window_iterations"].dropna().astype(int)
    common = lengths.mode()
    return str(int(common.iloc[0])) if len(common) else "?"


# Figure 7's statistics (analysis.figure7_statistic): axis label and caption words.
FIG7_STATISTICS = {
    "pooled": ("std (pooled)", "std pooled over images, positions and channels"),
    "per_channel": (
        "mean per-channel std",
        "per-channel std over images and positions, averaged over channels",
    ),
}


def select_statistic(layer_std: pd.DataFrame, statistic: str) -> pd.DataFrame:
    """`layer_std` with its `std` column replaced by the chosen statistic's values
    (results.LAYER_STD_STATISTICS), so that both panels and the ranking draw that one. Raises
    ResultError naming the models whose rows lack it (files written before it existed)."""
    if statistic not in LAYER_STD_STATISTICS:
        raise ResultError(
            f"Figure 7 statistic {statistic!r} is not one of {sorted(LAYER_STD_STATISTICS)}"
        )
    column = LAYER_STD_STATISTICS[statistic]
    if column == "std" or not len(layer_std):
        return layer_std
    lacking = sorted(set(layer_std.loc[layer_std[column].isna(), "model"]))
    if lacking:
        raise ResultError(
            f"the layer responses of {', '.join(lacking)} lack the {statistic} statistic "
            f"({column}; files written before it existed): delete those layer-std files and "
            "rerun snakemake, or draw the pooled std"
        )
    return layer_std.assign(std=layer_std[column])


def _fig7_panels(
    top,
    bottom,
    layer_std: pd.DataFrame,
    wanted: list[str],
    colors: dict,
    ylabel: str = FIG7_STATISTICS["pooled"][0],
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
        ax.set_ylabel(ylabel)
        ax.set_xlim(left=0)
        if drawn:
            ax.legend(loc="upper right", fontsize=8)
        else:
            empty_panel(ax, "no layer responses for the requested models")
    absent = [m for m in wanted if m not in present]
    if absent:
        corner_note(top, [f"not in the data: {', '.join(model_label(m) for m in absent)}"])
    return absent


def figure7(
    layer_std: pd.DataFrame, models: Sequence[str] | None = None, statistic: str = "pooled"
) -> Figure:
    """The paper's Figure 7 from layer-response stds (LAYER_STD_SCHEMA rows, several models).

    Top: the statistic per layer in network order; bottom: the same values sorted in
    descending order (vs rank). `statistic` (analysis.figure7_statistic) is "pooled" (the
    `std` column: one std over images, positions and channels) or "per_channel" (the
    `channel_std_mean` column); the title and axis name it. One line per model of `models`
    present in `layer_std` (default: all present), mean over seeds where several (bottom: mean
    of each seed's sorted curve). Plain nets dashed, ResNets solid, colour by depth as in
    `figure6`. Models asked for but absent are named in a note.
    """
    layer_std = select_statistic(layer_std, statistic)
    label, words = FIG7_STATISTICS[statistic]
    present = set(layer_std["model"]) if len(layer_std) else set()
    wanted = list(models) if models is not None else sort_models(present)
    with figure_style():
        fig = Figure(figsize=(7.5, 7.5), layout="constrained")
        top, bottom = fig.subplots(2, 1)
        drawn = [m for m in wanted if m in present]
        _fig7_panels(
            top,
            bottom,
            layer_std,
            wanted,
            depth_colors(parse_model_name(m)[1] for m in wanted),
            label,
        )
        if any(not family_of(m).paper for m in drawn):  # ImageNet-style nets drawn
            fig.suptitle(
                "Figure 7 style: layer responses (after BN, before ReLU/addition; "
                f"ResNet-50's 1x1 layers included)\n{words}"
            )
        else:
            fig.suptitle(
                "Redraw of He et al. 2015, Figure 7: 3x3 layer responses "
                f"(after BN, before ReLU/addition)\n{words}"
            )
    return fig


def figure7_groups(
    groups: Mapping[str, pd.DataFrame], title: str, statistic: str = "pooled"
) -> Figure:
    """Figure 7 once per group of nets, side by side (one column per group, same axes ranges
    and colours), e.g. the published checkpoints of each reproduction: `groups` maps a column
    title to LAYER_STD_SCHEMA rows, whose models are all drawn. `statistic` as in `figure7`;
    the title gets its words on a second line."""
    groups = {label: select_statistic(df, statistic) for label, df in groups.items()}
    ylabel, words = FIG7_STATISTICS[statistic]
    models = {
        label: sort_models(set(df["model"])) if len(df) else [] for label, df in groups.items()
    }
    colors = depth_colors(parse_model_name(m)[1] for ms in models.values() for m in ms)
    with figure_style():
        fig = Figure(figsize=(5.5 * max(len(groups), 1), 7.5), layout="constrained")
        axes = fig.subplots(2, max(len(groups), 1), squeeze=False, sharey="row")
        for col, (label, df) in enumerate(groups.items()):
            top, bottom = axes[0, col], axes[1, col]
            _fig7_panels(top, bottom, df, models[label], colors, ylabel)
            top.set_title(f"{label}\nlayer responses in network order")
            bottom.set_title(f"{label}\nlayer responses sorted by magnitude")
        fig.suptitle(f"{title}\n{words}")
    return fig
