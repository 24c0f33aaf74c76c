"""How fast the loss landscape (probes/landscape.py, Li et al. 2018) evaluates images, against
plain evaluation of the same net on the same images: the landscape sets the weights to a new
point before each pass over the images and normalises them once up front; plain evaluation
(`engine.evaluation.evaluate`, the test error of every run) normalises each batch. Both are
eval mode and fp32 on the same device, so their rates say what a grid point costs beyond a
plain pass, and project the full grid's time.

The measured work comes in as two callables (the command line builds them from the probe and
from the evaluation loop), so this module only times and reports: each returns the number of
images it evaluated, and is called `warmup` times untimed, then `repeats` times between two
device synchronisations.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import torch

VARIANTS = ("plain evaluation", "landscape")


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def time_images(
    work: Callable[[], int], device: torch.device, warmup: int, repeats: int
) -> dict[str, Any]:
    """images_per_second, images, seconds and calls of `repeats` timed calls of `work`."""
    if repeats < 1 or warmup < 0:
        raise ValueError(f"repeats ({repeats}) must be >= 1 and warm-up ({warmup}) >= 0")
    for _ in range(warmup):
        work()
    _sync(device)
    t0 = time.perf_counter()
    images = sum(work() for _ in range(repeats))
    _sync(device)
    seconds = time.perf_counter() - t0
    return {
        "images_per_second": images / seconds,
        "images": images,
        "seconds": seconds,
        "calls": repeats,
    }


def measure_landscape(
    plain: Callable[[], int],
    landscape: Callable[[], int],
    device: torch.device,
    warmup: int = 1,
    repeats: int = 3,
) -> dict[str, Any]:
    """Both rates, the landscape's as a fraction of plain evaluation's."""
    out = {
        "plain evaluation": time_images(plain, device, warmup, repeats),
        "landscape": time_images(landscape, device, warmup, repeats),
    }
    out["landscape_vs_plain"] = (
        out["landscape"]["images_per_second"] / out["plain evaluation"]["images_per_second"]
    )
    return out


def grid_seconds(rate: float, points: int, images: int) -> float:
    """Projected seconds of one net's landscape at `rate` images/s: the points x points
    surface, the 1-D curve and the interpolation (points each), `images` images per point."""
    return (points * points + 2 * points) * images / rate


def format_landscape_table(result: dict[str, Any]) -> str:
    """The two rates side by side, and the projected time of the configured grid."""
    s = result["settings"]
    lines = [
        f"{s['model']} on {result['machine']['device']}: {s['images']:,} training images per "
        f"point, batches of {s['batch_size']}, eval mode, fp32",
        f"{'variant':<20}{'images/s':>12}{'vs plain':>10}",
        "-" * 42,
    ]
    plain = result["plain evaluation"]["images_per_second"]
    for v in VARIANTS:
        rate = result[v]["images_per_second"]
        lines.append(f"{v:<20}{rate:>12,.0f}{rate / plain:>10.0%}")
    p = result["projection"]
    lines.append(
        f"projected: a {p['points']} x {p['points']} grid (+ 2 curves of {p['points']}) on "
        f"{p['images']:,} images per point takes {p['seconds'] / 60:.1f} min per net at the "
        "landscape's rate"
    )
    return "\n".join(lines)


__all__ = ["VARIANTS", "format_landscape_table", "grid_seconds", "measure_landscape", "time_images"]
