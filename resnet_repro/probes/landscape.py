"""The loss landscape of a trained net, as Li, Xu, Taylor, Studer and Goldstein draw it in
"Visualizing the Loss Landscape of Neural Nets" (NeurIPS 2018, arXiv:1712.09913), plus the
linear interpolation from the initial to the trained weights of Goodfellow, Vinyals and Saxe,
"Qualitatively characterizing neural network optimization problems" (ICLR 2015).

- **Directions** (Li et al., section 4): two random Gaussian directions d1, d2 shaped like the
  net's parameters, drawn on the CPU from a generator seeded with `seed` (so they are the same
  on every device). A tensor with at most one dimension (BN scale and shift, the linear
  layer's bias) gets a zero direction; every other tensor's direction is rescaled filter by
  filter, each slice along the output dimension to the norm of the same slice of the trained
  weights ("filter normalisation"). The BN running statistics are buffers, not parameters:
  they stay as trained. The directions follow from the trained weights and the seed alone,
  so nothing is cached.
- **Surface**: the training loss and error at theta + a*d1 + b*d2 on a points x points grid
  of (a, b) over [lo, hi]^2 (Li et al. Fig. 5: ResNet-56 with and without skip connections);
  **direction**: the 1-D curve theta + a*d1; **interpolation**: theta(t) = (1 - t) theta0 +
  t theta1 for t in [0, 1], theta0 the run's initial net (Goodfellow et al.). On the surface
  and the 1-D curve only the parameters move and the BN running statistics are the trained
  ones; the interpolation moves the running statistics too (from their initial 0 and 1 to
  the trained values), so that t = 0 is the initial net as it evaluates in eval mode and
  t = 1 the trained one. (With the trained statistics kept throughout, the interpolation
  from a He initialisation to wooyeolBaek's trained plain-56 overflowed: no finite loss
  up to t = 0.8.)
- Every point is evaluated in eval mode and fp32 on the first N training images (unaugmented),
  already on the device and normalised once, in large batches, with one host read per point
  (`engine.evaluation.loss_and_error`). The trained point itself is computed with the trained
  weights bit for bit (coefficients of zero add nothing), so the grid's centre is the trained
  net's loss.

`landscape_rows` returns the rows of `results.LANDSCAPE_SCHEMA` (less the run columns) and
`measure` (the registry's entry) adds what the file records of the grid and the images;
`cli/probes.py` reads the model and the images and writes the file, `figures/landscape.py`
draws it.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from ..config import ConfigError
from ..engine.evaluation import loss_and_error
from ..engine.run_setup import initial_model
from . import eval_mode
from .context import ProbeContext

KINDS = ("surface", "direction", "interpolation")
# How the interpolation's start was made: the run's own initialisation, rebuilt from its seed,
# or (an imported checkpoint, whose initialisation is not published) a fresh initialisation
# of the same net by our code with that seed.
INIT_SOURCES = ("run", "ours")

Direction = dict[str, torch.Tensor]
Evaluate = Callable[[nn.Module], tuple[float, float]]


def grid(lo: float, hi: float, points: int) -> np.ndarray:
    """`points` evenly spaced coordinates from lo to hi (both included); ConfigError in one
    line for fewer than 2 points or a range that is empty or inverted."""
    if isinstance(points, bool) or not isinstance(points, (int, np.integer)) or points < 2:
        raise ConfigError(
            f"analysis.landscape_points: {points!r} grid points per axis; give at least 2"
        )
    if not (math.isfinite(lo) and math.isfinite(hi) and lo < hi):
        raise ConfigError(
            f"analysis.landscape_range: [{lo}, {hi}] is not a range: give [min, max] with "
            "min < max, such as [-1.0, 1.0]"
        )
    return np.linspace(float(lo), float(hi), int(points))


def filter_normalize(direction: torch.Tensor, weight: torch.Tensor) -> torch.Tensor:
    """`direction` rescaled so that each filter (slice along dim 0) has the norm of the same
    filter of `weight`; a tensor with at most one dimension gets zeros (Li et al., section
    4: biases and BN parameters are not perturbed)."""
    if weight.dim() <= 1:
        return torch.zeros_like(weight)
    d = direction.reshape(direction.shape[0], -1)
    w = weight.detach().reshape(weight.shape[0], -1)
    scale = w.norm(dim=1) / d.norm(dim=1).clamp_min(torch.finfo(d.dtype).tiny)
    return (d * scale[:, None]).reshape(weight.shape)


def random_directions(model: nn.Module, seed: int, count: int = 2) -> list[Direction]:
    """`count` filter-normalised random directions over the model's parameters (name ->
    tensor on the parameter's device, fp32), drawn in parameter order, one direction after
    the other, from a CPU generator seeded with `seed`."""
    g = torch.Generator().manual_seed(int(seed))
    out = []
    for _ in range(count):
        d: Direction = {}
        for name, p in model.named_parameters():
            w = p.detach().to("cpu", torch.float32)
            raw = torch.randn(w.shape, generator=g) if w.dim() > 1 else torch.zeros(w.shape)
            d[name] = filter_normalize(raw, w).to(p.device)
        out.append(d)
    return out


def movable(model: nn.Module) -> dict[str, torch.Tensor]:
    """Every floating-point tensor of the net by name: its parameters, then its floating
    buffers (the BN running means and variances)."""
    out = dict(model.named_parameters())
    out.update((n, b) for n, b in model.named_buffers() if b.is_floating_point())
    return out


def difference(a: nn.Module, b: nn.Module) -> Direction:
    """a - b for every floating-point tensor (parameters and BN running statistics) of two
    nets of the same shape, on a's devices: the direction from b to a."""
    mine, theirs = movable(a), movable(b)
    if {n: t.shape for n, t in mine.items()} != {n: t.shape for n, t in theirs.items()}:
        raise ValueError("the two nets' tensors differ in names or shapes")
    return {
        name: t.detach().float() - theirs[name].detach().to(t.device, torch.float32)
        for name, t in mine.items()
    }


def is_finite(model: nn.Module) -> bool:
    """Every parameter and floating buffer (BN statistics) finite: what a diverged run lacks."""
    tensors = [*model.parameters(), *(b for b in model.buffers() if b.is_floating_point())]
    return all(bool(torch.isfinite(t).all()) for t in tensors)


def sweep(
    model: nn.Module,
    evaluate: Evaluate,
    directions: Sequence[Direction],
    coefficients: Sequence[Sequence[float]],
    on_point: Callable[[int], None] | None = None,
) -> list[tuple[float, float, float]]:
    """(loss, error %, seconds) at theta + sum_k c_k d_k for each row c of `coefficients`
    (one coefficient per direction). The tensors moved are those the directions name (the
    random directions name the parameters only, so the BN running statistics stay as
    trained); every one is restored afterwards, also on error. A zero coefficient adds
    nothing, so a row of zeros evaluates theta exactly."""
    tensors = movable(model)
    names = [n for n in tensors if any(n in d for d in directions)]
    base = {n: tensors[n].detach().clone() for n in names}
    out = []
    try:
        with torch.no_grad():
            for i, coefs in enumerate(coefficients):
                for name in names:
                    t = tensors[name]
                    t.copy_(base[name])
                    for c, d in zip(coefs, directions):
                        if c != 0 and name in d:
                            t.add_(d[name].to(t.dtype), alpha=float(c))
                t0 = time.perf_counter()
                loss, error = evaluate(model)
                out.append((loss, error, time.perf_counter() - t0))
                if on_point is not None:
                    on_point(i + 1)
    finally:
        with torch.no_grad():
            for name in names:
                tensors[name].copy_(base[name])
    return out


def dataset_evaluator(x: torch.Tensor, y: torch.Tensor, batch_size: int) -> Evaluate:
    """Mean cross-entropy and top-1 error (%) over x (the net's inputs, already normalised and
    on its device) and labels y, in eval mode and strict fp32, `batch_size` images per
    forward pass, one host read."""
    if len(y) == 0:
        raise ConfigError("the loss landscape needs at least one training image")
    return lambda model: loss_and_error(model, x, y, batch_size, lambda xb: xb)


def landscape_rows(
    model: nn.Module,
    evaluate: Evaluate,
    lo: float,
    hi: float,
    points: int,
    seed: int,
    initial: nn.Module | None = None,
    log: Callable[[str], None] | None = None,
) -> pd.DataFrame:
    """The surface (points x points), the 1-D curve along d1 (points) and, with `initial`,
    the interpolation from it to the trained weights (points values of t in [0, 1]).
    Columns: kind, alpha, beta, loss, error_pct, status, point_seconds, note. alpha is the
    coordinate along d1 (for the interpolation: t, 0 the initial weights, 1 the trained
    ones), beta along d2 (0 on the 1-D curves). A model with non-finite weights, or whose loss
    at the trained weights is not finite, gets one row at (0, 0) with status "diverged" and
    a note that says why."""
    coords = grid(lo, hi, points)
    with eval_mode(model):
        if not is_finite(model):
            return _diverged("the weights are not finite")
        (centre,) = sweep(model, evaluate, [], [()])
        if not math.isfinite(centre[0]):
            return _diverged(f"the loss at the trained weights is {centre[0]}")
        d1, d2 = random_directions(model, seed)
        plan = [
            (
                "surface",
                [d1, d2],
                [(a, b) for b in coords for a in coords],
                [(a, b) for b in coords for a in coords],
            ),
            ("direction", [d1], [(a,) for a in coords], [(a, 0.0) for a in coords]),
        ]
        if initial is not None:
            ts = np.linspace(0.0, 1.0, int(points))
            # theta(t) = theta1 + (1 - t)(theta0 - theta1): t = 1 is theta1 bit for bit.
            back = difference(initial.to(next(model.parameters()).device), model)
            plan.append(("interpolation", [back], [(1.0 - t,) for t in ts], [(t, 0.0) for t in ts]))
        total = sum(len(c) for _, _, c, _ in plan)
        progress = _progress(total, log)
        rows, done = [], 0
        for kind, dirs, coefs, where in plan:
            values = sweep(model, evaluate, dirs, coefs, lambda i, s=done: progress(s + i))
            done += len(coefs)
            rows += [
                {
                    "kind": kind,
                    "alpha": float(a),
                    "beta": float(b),
                    "loss": loss,
                    "error_pct": error,
                    "status": "ok",
                    "point_seconds": seconds,
                    "note": None,
                }
                for (a, b), (loss, error, seconds) in zip(where, values)
            ]
    return pd.DataFrame(rows)


def _diverged(why: str) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "kind": "surface",
                "alpha": 0.0,
                "beta": 0.0,
                "loss": math.nan,
                "error_pct": math.nan,
                "status": "diverged",
                "point_seconds": 0.0,
                "note": why,
            }
        ]
    )


def _progress(total: int, log: Callable[[str], None] | None) -> Callable[[int], None]:
    """Logs about every tenth of the points with the time left, so a long grid shows life."""
    t0 = time.perf_counter()
    step = max(1, total // 10)

    def report(done: int) -> None:
        if log is not None and (done % step == 0 or done == total):
            spent = time.perf_counter() - t0
            left = spent / done * (total - done)
            log(f"  {done}/{total} points, {spent:.0f} s, about {left:.0f} s left")

    return report


def describe(rows: pd.DataFrame) -> str:
    """One line on what the rows hold, for the log."""
    if (rows["status"] == "diverged").any():
        return "diverged: one row that says so"
    counts = rows["kind"].value_counts()
    parts = [f"{int(counts.get(k, 0))} {k} points" for k in KINDS if counts.get(k, 0)]
    return ", ".join(parts)


__all__ = [
    "INIT_SOURCES",
    "KINDS",
    "describe",
    "difference",
    "filter_normalize",
    "grid",
    "is_finite",
    "landscape_rows",
    "measure",
    "movable",
    "random_directions",
    "sweep",
    "dataset_evaluator",
]


# ---------------------------------------------------------------- the registry's entry


def measure(ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
    """The net's landscape and its interpolation from the initial weights, on the first
    analysis.landscape_images training images; a bad grid or too few images fail in one line
    before any point is evaluated."""
    started = time.perf_counter()
    a, batch = ctx.analysis, ctx.study.train.eval_batch_size
    lo, hi = a.landscape_range
    grid(lo, hi, a.landscape_points)
    x, y = ctx.images("train", a.landscape_images)
    if len(y) < a.landscape_images:
        raise ConfigError(
            f"analysis.landscape_images: {a.landscape_images} training images asked for, but "
            f"the study's training set holds {len(y)} (data.train_subset, data.val_size); "
            f"allowed: 1 .. {len(y)}"
        )
    source = ctx.identity.get("source")
    # Our runs start from the initialisation their seed rebuilds (engine/train.py); an
    # imported net's own is not published, so ours of the same net stands in, flagged.
    initial = initial_model(
        ctx.name, ctx.identity.get("shortcut", "A"), ctx.seed, ctx.identity.get("width")
    ).to(device=ctx.device, dtype=torch.float32)
    ctx.log(
        f"{ctx.name} seed {ctx.seed}: loss landscape, {a.landscape_points} x "
        f"{a.landscape_points} grid over [{lo}, {hi}]^2, direction seed {a.landscape_seed}, "
        f"{len(y)} training images in batches of {batch}"
    )
    rows = landscape_rows(
        ctx.model,
        dataset_evaluator(x, y, batch),
        lo,
        hi,
        a.landscape_points,
        a.landscape_seed,
        initial=initial,
        log=ctx.log,
    )
    wall = time.perf_counter() - started
    rows = rows.assign(
        source=source["name"] if source else "run",
        init_source=[
            ("ours" if source else "run") if k == "interpolation" else None for k in rows["kind"]
        ],
        direction_seed=a.landscape_seed,
        range_min=lo,
        range_max=hi,
        points=a.landscape_points,
        images=len(y),
        batch_size=batch,
        wall_seconds=wall,
    )
    if (rows["status"] == "diverged").any():
        return rows, f"diverged ({rows['note'].iloc[0]}); one row says so"
    evaluated = int((rows["status"] == "ok").sum())
    return rows, (
        f"{describe(rows)} on {len(y)} training images in {wall:.1f} s "
        f"({evaluated * len(y) / wall:,.0f} images/s overall)"
    )
