"""What every figure of the package shares: colours per depth, legend labels, notes, the
seaborn style and the one file writer, `save_figure`.

Figures are built with `matplotlib.figure.Figure` directly, not through pyplot, so no GUI
backend is involved and nothing is kept in pyplot's figure registry (no need to close them).
PNG and PDF are rendered by matplotlib's Agg and PDF writers whatever backend pyplot uses,
so the package does not call matplotlib.use() (which would switch a notebook's backend).
Seaborn styling is applied inside a context manager, so importing this module changes no
global matplotlib settings.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Sequence
from pathlib import Path

import seaborn as sns
from matplotlib.figure import Figure

from ..nets.families import BY_ARCH
from ..results import atomic_path

# Depths in the paper, in a fixed order: each keeps its colour whatever else is drawn.
CANONICAL_DEPTHS = (20, 32, 44, 56, 110, 1202)
PALETTE = "colorblind"
ARCH_LINESTYLE = {f.arch: f.linestyle for f in BY_ARCH.values()}  # ResNets solid, plain dashed
DPI = 200


@contextlib.contextmanager
def figure_style():
    """Seaborn styling for the figures built inside the `with` block only."""
    with sns.axes_style("whitegrid"), sns.plotting_context("paper", font_scale=1.2):
        yield


def depth_colors(depths: Iterable[int]) -> dict[int, tuple[float, float, float]]:
    """A colour per depth that depends on the depth alone, so it is the same in every figure
    whatever else is drawn: the paper's depths (CANONICAL_DEPTHS) take the first colours of the
    seaborn "colorblind" palette; any other depth 6n+2 gets a husl hue from n (golden-ratio
    spacing, so nearby depths differ)."""
    base = sns.color_palette(PALETTE, len(CANONICAL_DEPTHS))
    out = {}
    for d in sorted(set(int(d) for d in depths)):
        if d in CANONICAL_DEPTHS:
            out[d] = tuple(base[CANONICAL_DEPTHS.index(d)])
        else:
            hue = ((d - 2) // 6 * 0.618034) % 1.0
            out[d] = tuple(sns.husl_palette(1, h=hue, l=0.55)[0])
    return out


def corner_note(ax, lines: Sequence[str], top: bool = True) -> None:
    """A boxed note in a corner of `ax` (upper or lower left)."""
    if lines:
        y, va = (0.98, "top") if top else (0.02, "bottom")
        ax.text(
            0.02,
            y,
            "\n".join(lines),
            transform=ax.transAxes,
            ha="left",
            va=va,
            fontsize=8,
            color="0.15",
            zorder=10,
            bbox={
                "boxstyle": "round,pad=0.3",
                "facecolor": "white",
                "edgecolor": "0.6",
                "alpha": 0.9,
            },
        )


def empty_panel(ax, text: str) -> None:
    ax.text(
        0.5, 0.5, text, transform=ax.transAxes, ha="center", va="center", fontsize=10, color="0.3"
    )


def save_figure(fig: Figure, path_png: str | Path, dpi: int = DPI) -> tuple[Path, Path]:
    """Write `fig` as PNG at `path_png` (dpi >= 150) and as PDF beside it (same stem), each
    atomically (temporary file + rename). Returns (png_path, pdf_path)."""
    png = Path(path_png)
    if png.suffix.lower() != ".png":
        raise ValueError(f"save_figure: {png} must end in .png (a PDF is written beside it)")
    if dpi < 150:
        raise ValueError(f"save_figure: dpi {dpi} is below 150")
    pdf = png.with_suffix(".pdf")
    with atomic_path(png) as tmp:
        fig.savefig(tmp, format="png", dpi=dpi, bbox_inches="tight", metadata={"Software": None})
    with atomic_path(pdf) as tmp:
        fig.savefig(
            tmp,
            format="pdf",
            bbox_inches="tight",
            metadata={"CreationDate": None, "Creator": None, "Producer": None},
        )
    return png, pdf
