"""Figures of the probes of trained nets, redrawn like Veit, Wilber, Belongie 2016
(arXiv:1605.06431): DataFrame (the probes' Parquet rows) in, matplotlib Figure out.

Colours and line styles follow `style`: colour by depth, ResNets solid, plain nets dashed.
The only file I/O is `style.save_figure`, called by the command line.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.figure import Figure
from matplotlib.ticker import MaxNLocator

from ..nets.families import family_of, model_label, parse_model_name
from ..tables.runs import sort_models
from .style import ARCH_LINESTYLE, corner_note, depth_colors, empty_panel, figure_style

# Panels by whether the family has shortcuts: residual nets first.
PANEL_TITLE = {True: "residual nets", False: "plain nets"}
SPLIT_WORDS = {"train": "training", "test": "test"}


def _models(df: pd.DataFrame, models: Sequence[str] | None) -> tuple[list[str], list[str]]:
    """(drawn, absent): the asked-for models (default: all present) with and without rows.
    Only each model's first seed is drawn (the probes run on the first seed)."""
    present = set(df["model"]) if len(df) else set()
    wanted = list(models) if models is not None else sort_models(present)
    return [m for m in wanted if m in present], [m for m in wanted if m not in present]


def _first_seed(df: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = df[df["model"] == model]
    return rows[rows["seed"] == rows["seed"].min()]


def _style_of(model: str, colors: dict) -> dict:
    arch, depth = parse_model_name(model)
    return {"color": colors[depth], "linestyle": ARCH_LINESTYLE[arch], "label": model_label(model)}


def _images_note(df: pd.DataFrame) -> str:
    counts = sorted(set(int(v) for v in df["images"])) if len(df) else []
    return f"{', '.join(str(c) for c in counts)} test images" if counts else ""


def _residual_only(models) -> list[str]:
    """The residual nets among `models` (a plain net has one path, and no block change
    from the identity to measure)."""
    return [m for m in models if family_of(m).residual]


def _panels(fig: Figure, drawn: list[str]) -> dict:
    """One panel per kind of net drawn, residual nets first: {residual: axes}."""
    kinds = [r for r in PANEL_TITLE if any(family_of(m).residual == r for m in drawn)] or [True]
    axes = np.atleast_1d(fig.subplots(1, len(kinds), squeeze=False)[0])
    return dict(zip(kinds, axes))


def _block_axis(ax, rows: pd.DataFrame) -> None:
    """Integer ticks over every block of the deepest drawn net, deletable or not."""
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    if len(rows):
        ax.set_xlim(0.5, float(rows["block"].max()) + 0.5)


def _mark_unmeasured(ax, rows: pd.DataFrame, color, first: bool) -> bool:
    """Grey crosses on the x axis at the blocks a plain net cannot delete / measure."""
    if not len(rows):
        return first
    ax.plot(
        rows["block"],
        np.zeros(len(rows)),
        linestyle="none",
        marker="x",
        markersize=7,
        color=color,
        clip_on=False,
        zorder=5,
        label="changes the shape: not measurable" if first else None,
    )
    return False


def _finish(
    fig: Figure,
    axes,
    drawn: list[str],
    absent: list[str],
    title: str,
    note: str,
    legend_below: bool = False,
) -> None:
    """Legends (in each panel, or with `legend_below` one for the figure under its panels,
    off every curve), the absent models' note and the title."""
    for ax in axes:
        if not ax.get_legend_handles_labels()[0]:
            empty_panel(ax, "no results for the requested models")
        elif not legend_below:
            ax.legend(loc="best", fontsize=8)
    if legend_below and axes[0].get_legend_handles_labels()[0]:
        handles, labels = axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncol=len(labels), fontsize=9)
    if absent:
        corner_note(
            axes[0], [f"not in the data: {', '.join(model_label(m) for m in absent)}"], top=False
        )
    # The images used go under the title, where no curve can hide them.
    fig.suptitle(f"{title}\n({note})" if note else title)


def figure_lesions(df: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """Veit et al. Fig. 3: test error with each single block deleted (markers; hollow where
    the block changes the resolution), the intact net's error as a horizontal line. Residual
    and plain nets in separate panels; plain blocks that cannot be deleted are left out."""
    drawn, absent = _models(df, models)
    colors = depth_colors(parse_model_name(m)[1] for m in drawn + absent)
    with figure_style():
        fig = Figure(figsize=(11, 4.5), layout="constrained")
        panels = _panels(fig, drawn)
        first = True
        for model in drawn:
            rows = _first_seed(df, model).sort_values("block")
            ax = panels[family_of(model).residual]
            kw = _style_of(model, colors)
            ax.plot(
                rows["block"],
                rows["test_error_pct"],
                marker="o",
                markersize=3.5,
                linewidth=1.2,
                **kw,
            )
            wide = rows[rows["changes_shape"] & rows["removable"]]
            ax.plot(
                wide["block"],
                wide["test_error_pct"],
                linestyle="none",
                marker="o",
                markersize=8,
                markerfacecolor="none",
                color=kw["color"],
            )
            ax.axhline(
                float(rows["intact_error_pct"].iloc[0]),
                color=kw["color"],
                linestyle=":",
                linewidth=1.2,
            )
            first = _mark_unmeasured(ax, rows[~rows["removable"]], kw["color"], first)
        for residual, ax in panels.items():
            shown = [m for m in drawn if family_of(m).residual == residual]
            _block_axis(ax, df[df["model"].isin(shown)])
            ax.set_title(f"{PANEL_TITLE[residual]}: one block deleted (dotted: intact net)")
            ax.set_xlabel("deleted block (network order; ring: downsampling block)")
            ax.set_ylabel("test error (%)")
            ax.set_ylim(0, 100)
        _finish(
            fig,
            list(panels.values()),
            drawn,
            absent,
            "Redraw of Veit et al. 2016, Figure 3: deleting single blocks",
            _images_note(df[df["model"].isin(drawn)]),
        )
    return fig


def figure_lesions_k(df: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """Veit et al. Fig. 5a: test error against the number k of deleted blocks, mean over the
    seeded draws with a band of +-1 std; k = 0 is the intact net."""
    drawn, absent = _models(df, models)
    colors = depth_colors(parse_model_name(m)[1] for m in drawn + absent)
    with figure_style():
        fig = Figure(figsize=(7, 4.8), layout="constrained")
        ax = fig.subplots()
        for model in drawn:
            rows = _first_seed(df, model)
            g = rows.groupby("k", sort=True)["test_error_pct"]
            k = np.concatenate([[0], g.mean().index.to_numpy()])
            mean = np.concatenate([[rows["intact_error_pct"].iloc[0]], g.mean().to_numpy()])
            std = np.concatenate([[0.0], g.std(ddof=0).fillna(0).to_numpy()])
            kw = _style_of(model, colors)
            ax.plot(k, mean, marker="o", markersize=3, linewidth=1.5, **kw)
            ax.fill_between(k, mean - std, mean + std, color=kw["color"], alpha=0.15, linewidth=0)
        ax.set_xlabel("number of deleted blocks k")
        ax.set_ylabel("test error (%)")
        ax.set_ylim(0, 100)
        ax.set_xlim(left=0)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        draws = int(df["draw"].max()) + 1 if len(df) else 0
        note = _images_note(df[df["model"].isin(drawn)])
        _finish(
            fig,
            [ax],
            drawn,
            absent,
            "Redraw of Veit et al. 2016, Figure 5a: deleting k random blocks",
            f"{note}; up to {draws} draws per k (band: +-1 std)" if note else "",
        )
    return fig


def _band(ax, x, mean, half, color, log: bool) -> None:
    """A light band mean +- half; on a log axis its lower edge stays above a tenth of the
    mean (a standard error near the mean itself would otherwise plunge to 0)."""
    low = mean - half
    if log:
        low = np.maximum(low, mean / 10)
    ax.fill_between(x, low, mean + half, color=color, alpha=0.2, linewidth=0)


def figure_paths(df: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """Veit et al. Fig. 6: (a) the fraction of paths of each length, (b) the gradient norm at
    the network's input (the image) through a path of that length, mean over (image, path)
    pairs with a band of +-1 standard error of the mean (over the images), (c) the share of
    the total gradient magnitude that paths of each length carry, C(n,k) g_k / sum_j C(n,j)
    g_j, a distribution over lengths that compares nets of any depth on one axis (Veit et al.
    draw C(n,k) g_k, the same curve up to a constant per net). Residual nets only (a plain net
    has one path): plain models are ignored."""
    if models is not None:
        models = _residual_only(models)
    drawn, absent = _models(df, models)
    colors = depth_colors(parse_model_name(m)[1] for m in drawn + absent)
    rows = df[df["model"].isin(drawn)]
    log_b = bool(len(rows)) and bool((rows["grad_norm_mean"] > 0).all())
    with figure_style():
        fig = Figure(figsize=(14, 4.3), layout="constrained")
        axes = fig.subplots(1, 3)
        for model in drawn:
            r = _first_seed(df, model).sort_values("length")
            kw = _style_of(model, colors)
            k = r["length"].to_numpy(dtype=float)
            mean = r["grad_norm_mean"].to_numpy(dtype=float)
            half = r["grad_norm_sem"].fillna(0).to_numpy(dtype=float)
            frac = r["path_fraction"].to_numpy(dtype=float)
            total = float(np.sum(frac * mean))
            share = frac * mean / total if total > 0 else np.zeros_like(mean)
            axes[0].plot(k, frac, marker="o", markersize=2.5, **kw)
            axes[1].plot(k, mean, marker="o", markersize=2.5, **kw)
            _band(axes[1], k, mean, half, kw["color"], log_b)
            axes[2].plot(k, share, marker="o", markersize=2.5, **kw)
            if total > 0:
                _band(axes[2], k, share, frac * half / total, kw["color"], False)
        titles = [
            "(a) distribution of path length",
            "(b) gradient magnitude per path",
            "(c) total gradient magnitude per path length",
        ]
        ylabels = [
            "fraction of paths  C(n,k) / 2^n",
            "gradient norm at the input image",
            "share of the total  C(n,k) g_k / sum",
        ]
        for ax, title, ylabel in zip(axes, titles, ylabels):
            ax.set_title(title)
            ax.set_xlabel("path length k (residual branches on the path)")
            ax.set_ylabel(ylabel)
            ax.set_xlim(left=0)
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        if log_b:
            axes[1].set_yscale("log")
        note = ""
        if len(rows):
            images = sorted(set(int(v) for v in rows["images"]))
            draws = sorted(set((rows["samples"] // rows["images"].clip(lower=1)).astype(int)))
            splits = sorted(set(SPLIT_WORDS.get(str(v), str(v)) for v in rows["image_split"]))
            note = (
                f"{', '.join(map(str, images))} {' and '.join(splits)} images x "
                f"{', '.join(map(str, draws))} random path(s) of each length per image; "
                "band: +-1 standard error of the mean"
            )
        _finish(
            fig,
            list(axes),
            drawn,
            absent,
            "Redraw of Veit et al. 2016, Figure 6: path lengths and the gradient at the input "
            "per length",
            note,
        )
    return fig


def _relative_position(rows: pd.DataFrame) -> np.ndarray:
    """Block centres on 0..1: (block - 0.5) / blocks, so nets of every depth share one axis."""
    return (rows["block"].to_numpy(dtype=float) - 0.5) / rows["blocks"].to_numpy(dtype=float)


def figure_branches(df: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
    """How much each residual block changes its input, for every ResNet depth on one axis of
    relative block position: (left) ||y - x|| / ||x||, the block's output against its input
    (y after the final ReLU), (right) ||F(x)|| / ||x||, what the residual branch adds. Mean
    over the test images, with a light band of +-1 std over the images. Downsampling blocks
    are not measured (their output has another shape; option A zero-pads half of it) and are
    marked with crosses on the x axis, as the lesion figure marks what it cannot delete.
    Plain nets are not drawn (their rows, if any, are ignored)."""
    models = _residual_only(models if models is not None else sort_models(set(df["model"])))
    drawn, absent = _models(df, models)
    colors = depth_colors(parse_model_name(m)[1] for m in drawn + absent)
    panels = [
        ("change", "what the block changes", "||y - x|| / ||x||  (y after the final ReLU)"),
        ("branch", "what the residual branch adds", "||F(x)|| / ||x||  (F before the addition)"),
    ]
    with figure_style():
        fig = Figure(figsize=(12, 4.6), layout="constrained")
        axes = fig.subplots(1, 2, sharey=True)
        crossed = False
        for model in drawn:
            rows = _first_seed(df, model).sort_values("block")
            kw = _style_of(model, colors)
            pos = _relative_position(rows)
            for ax, (what, _, _) in zip(axes, panels):
                mean = rows[f"{what}_mean"].to_numpy(dtype=float)  # NaN breaks the line
                std = rows[f"{what}_std"].to_numpy(dtype=float)
                ax.plot(pos, mean, marker="o", markersize=3, linewidth=1.4, **kw)
                ax.fill_between(pos, mean - std, mean + std, color=kw["color"], alpha=0.12, lw=0)
            gone = ~rows["measurable"].astype(bool).to_numpy()
            for ax in axes:
                ax.plot(
                    pos[gone],
                    np.zeros(int(gone.sum())),
                    linestyle="none",
                    marker="x",
                    markersize=7,
                    color=kw["color"],
                    clip_on=False,
                    zorder=5,
                )
            crossed = crossed or bool(gone.any())
        if crossed:  # one grey key for the crosses of every depth, after the nets
            for ax in axes:
                ax.plot(
                    [],
                    [],
                    linestyle="none",
                    marker="x",
                    markersize=7,
                    color="0.4",
                    label="downsampling block: not measured",
                )
        for ax, (_, title, ylabel) in zip(axes, panels):
            ax.set_title(title)
            ax.set_ylabel(ylabel)
            ax.set_xlabel("relative block position (block - 1/2) / blocks")
            ax.set_xlim(0, 1)
            ax.set_ylim(bottom=0)
            for b in (1 / 3, 2 / 3):  # the three stages have n blocks each
                ax.axvline(b, color="0.75", linewidth=0.8, linestyle=":")
        axes[1].yaxis.set_tick_params(labelleft=True)
        _finish(
            fig,
            list(axes),
            drawn,
            absent,
            "How much each residual block changes its input (0: it passes its input on); "
            "stages split at the dotted lines",
            _images_note(df[df["model"].isin(drawn)]) + ("; band: +-1 std over the images"),
            legend_below=True,
        )
    return fig
