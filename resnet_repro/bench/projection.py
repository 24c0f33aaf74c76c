"""How long a whole study takes, projected from measured training rates.

Each run lasts its training steps at its model's measured rate (`run_seconds`); the runs are
then laid out on the slots (GPUs x jobs per GPU), longest first (`longest_first`), as
Snakemake does when the longest jobs start first. The result is the study's training wall
time; the per-epoch evaluations, the analyses and Python start-up come on top (the CLI says
so beside the figure).
"""

from __future__ import annotations

import heapq
from collections.abc import Mapping, Sequence
from typing import Any


def run_seconds(images_per_second: float, iterations: int, batch_size: int) -> float:
    """Seconds of training steps for one run at a measured rate."""
    if images_per_second <= 0:
        raise ValueError(f"rate must be > 0 images/s, got {images_per_second}")
    return iterations * batch_size / images_per_second


def longest_first(durations: Mapping[str, float], slots: int) -> tuple[float, list[list[str]]]:
    """Lay the jobs out on `slots` identical slots, longest first, each on the slot that
    frees first (LPT; its makespan is within 4/3 of the best possible). Returns the makespan
    and the jobs of each slot in their order."""
    if slots < 1:
        raise ValueError(f"slots must be >= 1, got {slots}")
    order = sorted(durations, key=lambda job: (-durations[job], job))
    heap = [(0.0, i) for i in range(slots)]
    lanes: list[list[str]] = [[] for _ in range(slots)]
    for job in order:
        busy_until, i = heapq.heappop(heap)
        lanes[i].append(job)
        heapq.heappush(heap, (busy_until + durations[job], i))
    return max(t for t, _ in heap), lanes


def project_study(
    rates: Mapping[str, float],
    runs: Sequence[tuple[str, int]],
    iterations: int,
    batch_size: int,
    slots: int,
) -> dict[str, Any]:
    """The projected training wall time of `runs` ((model, seed) pairs) with `rates` (images/s
    per model) on `slots` slots, and the lower bound no order can beat: the longest run, or
    all the work spread evenly over the slots."""
    seconds = {
        f"{model}/seed{seed}": run_seconds(rates[model], iterations, batch_size)
        for model, seed in runs
    }
    makespan, lanes = longest_first(seconds, slots)
    return {
        "run_seconds": seconds,
        "slots": slots,
        "makespan_seconds": makespan,
        "lower_bound_seconds": max(max(seconds.values()), sum(seconds.values()) / slots),
        "total_seconds": sum(seconds.values()),
        "lanes": lanes,
    }
