"""The loss landscapes of plain and residual nets, drawn like Li, Xu, Taylor, Studer and
Goldstein 2018 (arXiv:1712.09913, Fig. 5: ResNet-56 with and without skip connections):
DataFrame (the rows of `results.LANDSCAPE_SCHEMA`) in, matplotlib Figure out.

One row of panels per depth: the plain net's surface, the residual net's surface (filled
contours of the training loss on one log-scaled set of levels shared by every surface of the
figure, a star at the trained weights), the 1-D curves along the first direction of both nets
on one axis, and both interpolations from the initial to the trained weights (Goodfellow et
al. 2015) on one axis. Colour by depth, ResNets solid, plain nets dashed, as in every figure.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
import pandas as pd
from matplotlib.colors import LogNorm
from matplotlib.figure import Figure

from ..nets.families import PAPER_ARCHS, model_label, model_name, parse_model_name
from .style import ARCH_LINESTYLE, corner_note, depth_colors, empty_panel, figure_style

ARCHS = PAPER_ARCHS  # the paper's plain and residual twins, side by side
LEVELS = 21  # contour levels, evenly spaced in log(loss)
TOP_QUANTILE = 0.9  # the top level: this quantile of all surfaces' losses (above: top colour)
CMAP = "viridis"
DEFAULT_TITLE = (
    "Training-loss landscapes of plain and residual nets "
    "(after Li et al. 2018, Fig. 5; interpolation after Goodfellow et al. 2015)"
)


def _first_seed(df: pd.DataFrame, model: str) -> pd.DataFrame:
    rows = df[df["model"] == model]
    return rows[rows["seed"] == rows["seed"].min()]


def _surface(rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(alphas, betas, loss[beta, alpha]) of the surface rows, or None without them."""
    s = rows[(rows["kind"] == "surface") & (rows["status"] == "ok")]
    if not len(s):
        return None
    z = s.pivot_table(index="beta", columns="alpha", values="loss", aggfunc="first")
    return z.columns.to_numpy(float), z.index.to_numpy(float), z.to_numpy(float)


def shared_levels(
    surfaces: list[np.ndarray], n: int = LEVELS, top: float = TOP_QUANTILE
) -> np.ndarray | None:
    """n levels evenly spaced in log(loss) from the smallest finite positive loss over all
    `surfaces` to the `top` quantile of them, so that every contour plot of the figure uses
    the same ones. The few huge losses at the grid's far corners (hundreds, where the net is
    wrecked) would otherwise spend most levels on themselves; they take the top colour."""
    values = np.concatenate([z[np.isfinite(z) & (z > 0)].ravel() for z in surfaces] or [[]])
    if not len(values):
        return None
    lo, hi = float(values.min()), float(np.quantile(values, top))
    if hi <= lo * (1 + 1e-9):
        hi = lo * 1.01
    return np.logspace(math.log10(lo), math.log10(hi), n)


def bar_ticks(lo: float, hi: float, most: int = 8) -> list[float]:
    """Round loss values between lo and hi for the colour bar: 1-2-5 per decade, or fewer
    per decade when that would be more than `most` ticks."""
    for mantissas in ((1, 2, 5), (1, 3), (1,)):
        ticks = [
            m * 10.0**k
            for k in range(math.floor(math.log10(lo)), math.ceil(math.log10(hi)) + 1)
            for m in mantissas
            if lo <= m * 10.0**k <= hi
        ]
        if len(ticks) <= most:
            break
    return ticks or [lo, hi]


def _settings(df: pd.DataFrame) -> str:
    """The grid, images and direction seed behind the figure, for its subtitle."""
    ok = df[df["status"] == "ok"] if len(df) else df
    if not len(ok):
        return ""

    def values(col: str, fmt=str) -> str:
        return ", ".join(fmt(v) for v in sorted(set(ok[col])))

    ranges = sorted(set(zip(ok["range_min"], ok["range_max"])))
    grid = ", ".join(f"[{lo:g}, {hi:g}]" for lo, hi in ranges)
    pts = values("points", lambda v: f"{int(v)} x {int(v)}")
    return (
        f"grid {pts} over {grid} per axis; {values('images', lambda v: f'{int(v):,}')} "
        f"training images, eval mode, fp32; direction seed {values('direction_seed')}; "
        f"the same log-spaced loss levels in every contour plot, up to the "
        f"{TOP_QUANTILE:.0%} quantile of their losses"
    )


def _contour_panel(ax, model: str, rows: pd.DataFrame, levels, norm) -> object | None:
    label = model_label(model)
    ax.set_title(label)
    ax.set_xlabel(r"$\alpha$ (direction $\delta$)")
    ax.set_ylabel(r"$\beta$ (direction $\eta$)")
    if not len(rows):
        empty_panel(ax, f"no {label} in the data")
        return None
    if (rows["status"] == "diverged").any():
        empty_panel(ax, f"{label}: the run diverged")
        return None
    surface = _surface(rows)
    if surface is None or levels is None:
        empty_panel(ax, f"no surface of {label}")
        return None
    a, b, z = surface
    z = np.where(np.isfinite(z) & (z > 0), z, np.nan)
    filled = ax.contourf(a, b, z, levels=levels, norm=norm, cmap=CMAP, extend="both")
    ax.contour(a, b, z, levels=levels, norm=norm, colors="k", linewidths=0.35, alpha=0.6)
    if a.min() <= 0 <= a.max() and b.min() <= 0 <= b.max():
        ax.plot(
            [0],
            [0],
            marker="*",
            markersize=11,
            color="red",
            markeredgecolor="white",
            linestyle="none",
            label="trained weights",
        )
    ax.set_aspect("equal")
    centre = rows[(rows["kind"] == "surface") & (rows["alpha"] == 0) & (rows["beta"] == 0)]
    if len(centre):
        c = centre.iloc[0]
        corner_note(ax, [f"at the star: loss {c['loss']:.3g}, error {c['error_pct']:.1f}%"])
    return filled


def _curve_panel(ax, kind: str, pair: dict[str, pd.DataFrame], colors: dict) -> None:
    drawn = False
    notes = []
    for model, rows in pair.items():
        arch, depth = parse_model_name(model)
        label = model_label(model)
        if (rows["status"] == "diverged").any():
            notes.append(f"{label}: diverged")
            continue
        c = rows[rows["kind"] == kind].sort_values("alpha")
        if not len(c):
            continue
        ax.plot(
            c["alpha"],
            c["loss"],
            color=colors[depth],
            linestyle=ARCH_LINESTYLE[arch],
            linewidth=1.6,
            label=label,
        )
        drawn = True
        if kind == "interpolation" and (c["init_source"] == "ours").any():
            notes.append(f"{label}: start is our initialisation, not the checkpoint's own")
    if kind == "direction":
        ax.set_title(r"1-D: $\theta + \alpha\delta$")
        ax.set_xlabel(r"$\alpha$")
        ax.axvline(0, color="0.5", linewidth=0.8, linestyle=":")
    else:
        ax.set_title(r"from the initial weights: $(1-t)\theta_0 + t\theta$")
        ax.set_xlabel("t (0: initial, 1: trained)")
    ax.set_ylabel("training loss")
    if drawn:
        ax.set_yscale("log")
        ax.legend(loc="upper right", fontsize=8)
    else:
        empty_panel(ax, "no curves in the data")
    corner_note(ax, notes, top=False)


def figure_landscape(
    df: pd.DataFrame, models: Sequence[str] | None = None, title: str | None = None
) -> Figure:
    """The landscapes of every depth with rows in `df` (first seed of each model; with
    `models`, of those only): plain and residual surfaces side by side with shared
    log-scaled contour levels, then the 1-D curves and the interpolations of the pair."""
    if models is not None:
        df = df[df["model"].isin(list(models))]
    models = sorted(set(df["model"])) if len(df) else []
    depths = sorted({parse_model_name(m)[1] for m in models if parse_model_name(m)[0] in ARCHS})
    colors = depth_colors(depths)
    rows_of = {m: _first_seed(df, m) for m in models}
    surfaces = [s[2] for r in rows_of.values() if (s := _surface(r)) is not None]
    levels = shared_levels(surfaces)
    norm = LogNorm(vmin=levels[0], vmax=levels[-1]) if levels is not None else None
    n_rows = max(1, len(depths))
    with figure_style():
        fig = Figure(figsize=(18, 3.9 * n_rows + 0.9), layout="constrained")
        axes = fig.subplots(n_rows, 4, squeeze=False)
        filled = None
        for r, depth in enumerate(depths):
            pair = {}
            for col, arch in enumerate(ARCHS):
                model = model_name(arch, depth)
                rows = rows_of.get(model, df.iloc[0:0])
                f = _contour_panel(axes[r][col], model, rows, levels, norm)
                filled = filled or f
                if len(rows):
                    pair[model] = rows
            _curve_panel(axes[r][2], "direction", pair, colors)
            _curve_panel(axes[r][3], "interpolation", pair, colors)
        if not depths:
            for ax in axes[0]:
                empty_panel(ax, "no landscapes in the data")
        if filled is not None:
            bar = fig.colorbar(
                filled,
                ax=[axes[r][c] for r in range(n_rows) for c in (0, 1)],
                location="right",
                shrink=0.9,
                pad=0.02,
            )
            bar.set_ticks(bar_ticks(levels[0], levels[-1]))
            bar.set_ticklabels([f"{t:g}" for t in bar_ticks(levels[0], levels[-1])])
            bar.minorticks_off()
            bar.set_label("training loss")
        note = _settings(df)
        heading = title or DEFAULT_TITLE
        fig.suptitle(f"{heading}\n({note})" if note else heading)
    return fig


__all__ = ["DEFAULT_TITLE", "LEVELS", "bar_ticks", "figure_landscape", "shared_levels"]
