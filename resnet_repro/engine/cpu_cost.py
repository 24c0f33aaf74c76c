"""Rough times for training and for forward passes on the CPU, scaled from one measured
reference: meant to tell minutes from hours (the trainer's warning before a long CPU run, the
probes' cost estimate), not to predict."""

from __future__ import annotations

# The measured reference of the estimates below (README, Performance): ResNet-20, whose
# forward pass is 41M multiply-accumulates per image, trains at 270 images/s with 2 threads
# on an AMD EPYC.
_REFERENCE_RATE, _REFERENCE_MACS, _REFERENCE_THREADS = 270.0, 40.8e6, 2


def estimated_cpu_hours(forward_macs: int, images: int, threads: int) -> float:
    """A rough time for training on `images` images on the CPU, scaled from the measured
    reference by the work per image and the thread count."""
    rate = (
        _REFERENCE_RATE * (_REFERENCE_MACS / forward_macs) * (max(1, threads) / _REFERENCE_THREADS)
    )
    return images / rate / 3600.0


def estimated_cpu_seconds_forward(forward_macs: int, images: float, threads: int) -> float:
    """A rough time for `images` forward passes in eval mode on the CPU (a probe's work),
    taken as half a training step's time on the reference above (a step adds the backward
    pass and the update; the factor is a round guess, meant to tell minutes from hours)."""
    return estimated_cpu_hours(forward_macs, int(images), threads) * 3600.0 / 2.0
