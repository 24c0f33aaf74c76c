"""How much work a probe is and roughly how long it takes on a CPU, so that a probe whose size
will take long there says so at its start, with the config keys that shrink it (the k-block
lesions of a ResNet-56 at the defaults, 30 values of k x 10 draws over 10,000 test images,
take hours on two cores).

The work is each probe's own count of image passes through the whole net (its registry
entry's `passes`: a deleted block's share saved, a backward pass to the input counted as two
forward ones), timed with the CPU rate of `engine.cpu_cost.estimated_cpu_seconds_forward`: a
rough figure, meant to tell minutes from hours.
"""

from __future__ import annotations

from torch import nn

from ..config import AnalysisConfig
from ..engine.cpu_cost import estimated_cpu_seconds_forward
from ..nets.anatomy import forward_macs
from .registry import probe

# A probe is said to be long from this many estimated seconds on.
LONG_SECONDS = 600.0


def image_passes(name: str, model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
    """Whole-net passes of one image that the probe makes on `test_images` test images (0 for
    a probe that counts none)."""
    return probe(name).image_passes(model, a, test_images)


def estimated_cpu_seconds(
    name: str, model: nn.Module, a: AnalysisConfig, test_images: int, threads: int
) -> float:
    return estimated_cpu_seconds_forward(
        forward_macs(model), image_passes(name, model, a, test_images), threads
    )


def long_probe_warning(
    name: str, model_name: str, model: nn.Module, a: AnalysisConfig, test_images: int, threads: int
) -> str | None:
    """The warning for a probe that takes long on this CPU: its estimated time and the keys
    (with their values) that shrink it; None for a short one."""
    if probe(name).passes is None:
        return None
    seconds = estimated_cpu_seconds(name, model, a, test_images, threads)
    if seconds < LONG_SECONDS:
        return None
    keys = ", ".join(f"analysis.{k} ({getattr(a, k)})" for k in probe(name).size_keys)
    took = f"{seconds / 3600:.1f} hours" if seconds >= 5400 else f"{seconds / 60:.0f} minutes"
    return (
        f"the {name} probe of {model_name} takes roughly {took} on this CPU ({threads} threads); "
        f"to make it smaller, lower {keys} in a config file of your own"
    )
