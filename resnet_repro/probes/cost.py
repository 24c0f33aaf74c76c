"""How much work a probe is and roughly how long it takes on a CPU, so that a probe whose size
will take long there says so at its start, with the config keys that shrink it (the k-block
lesions of a ResNet-56 at the defaults, 30 values of k x 10 draws over 10,000 test images,
take hours on two cores).

The work is counted in image passes through the whole net (a deleted block's share saved, a
backward pass to the input counted as two forward ones) and timed with the CPU rate of
`engine.devices.estimated_cpu_seconds_forward`: a rough figure, meant to tell minutes from
hours.
"""

from __future__ import annotations

from torch import nn

from ..config import AnalysisConfig
from ..engine.cpu_cost import estimated_cpu_seconds_forward
from ..nets.cifar_nets import forward_macs, named_blocks, removable
from .lesions import k_lesion_sets

# The config keys that set each probe's size.
SIZE_KEYS = {
    "lesions": ("probe_images",),
    "lesions_k": ("lesion_k_points", "lesion_draws", "probe_images"),
    "paths": ("path_samples", "path_batches", "path_batch_size"),
    "branches": ("probe_images",),
}
# A probe is said to be long from this many estimated seconds on.
LONG_SECONDS = 600.0


def image_passes(kind: str, model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net passes of one image that the probe makes on `test_images` test images."""
    blocks = named_blocks(model)
    n = len(blocks)
    images = min(a.probe_images, test_images)
    if kind == "lesions":
        return (1 + sum(removable(b) for _, b in blocks)) * images
    if kind == "lesions_k":
        sets = k_lesion_sets(model, a.lesion_draws, a.probe_seed, a.lesion_k_points)
        return images * (1 + sum(1 - len(gone) / n for _, _, gone in sets))
    if kind == "paths":
        paths_images = min(a.path_batches * a.path_batch_size, test_images)
        return (n + 1) * a.path_samples * paths_images * 3.0  # forward + backward to the input
    return 2.0 * images  # branches: each block's output, and its branch again


def estimated_cpu_seconds(
    kind: str, model: nn.Module, a: AnalysisConfig, test_images: int, threads: int
) -> float:
    return estimated_cpu_seconds_forward(
        forward_macs(model), image_passes(kind, model, a, test_images), threads
    )


def long_probe_warning(
    kind: str, name: str, model: nn.Module, a: AnalysisConfig, test_images: int, threads: int
) -> str | None:
    """The warning for a probe that takes long on this CPU: its estimated time and the keys
    (with their values) that shrink it; None for a short one."""
    seconds = estimated_cpu_seconds(kind, model, a, test_images, threads)
    if seconds < LONG_SECONDS:
        return None
    keys = ", ".join(f"analysis.{k} ({getattr(a, k)})" for k in SIZE_KEYS[kind])
    took = f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.0f} minutes"
    return (
        f"the {kind} probe of {name} takes roughly {took} on this CPU ({threads} threads); "
        f"to make it smaller, lower {keys} in a config file of your own"
    )
