"""Packing: K trainer measurements at once in K spawned processes on one device, and their
aggregate images per second, to show whether packing several training jobs on one GPU pays
when one job cannot fill it."""

from __future__ import annotations

import multiprocessing
import queue as queue_mod
from collections.abc import Callable
from typing import Any

import torch

from .. import data as data_mod
from ..config import Study
from ..engine.devices import Placement
from .timing import PeakMemory, without_clock_marks
from .variants import bench_arrays, measure_trainer


def _packed_job(rank: int, job: dict[str, Any], barrier, results) -> None:
    """One of K concurrent trainer measurements (a spawned process)."""
    try:
        torch.set_num_threads(job["threads"])
        placement: Placement = job["placement"]
        if placement.device.type == "cuda":
            torch.backends.cudnn.benchmark = job["cudnn_benchmark"]
        dd = data_mod.to_device(
            bench_arrays(job["study"].data), placement.device, job["study"].data.normalization
        )
        timing = measure_trainer(
            dd,
            job["model"],
            job["study"],
            placement,
            job["batch_size"],
            job["warmup_steps"],
            job["steps"],
            job["seed"],
            before_timing=barrier.wait,
        )
        timing.update(PeakMemory(placement.device).since_start())
        results.put(("ok", rank, timing))
    except BaseException as e:  # reported to the parent, which aborts the others
        results.put(("error", rank, f"{type(e).__name__}: {e}"))
        try:
            barrier.abort()
        except Exception:
            pass


def run_packed(
    study: Study,
    model_name: str,
    placement: Placement,
    jobs: int,
    batch_size: int,
    warmup_steps: int,
    steps: int,
    seed: int,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """K trainer measurements at once in K spawned processes on the same device. Each loads
    the data and warms up on its own; all start timing together (a barrier), and the
    aggregate rate is all images over the span from the first start to the last end.

    The K processes run under this process's GPU slot: they are one benchmark, not K jobs."""
    ctx = multiprocessing.get_context("spawn")
    barrier = ctx.Barrier(jobs)
    results = ctx.Queue()
    job = {
        "study": study,
        "model": model_name,
        "placement": placement,
        "batch_size": batch_size,
        "warmup_steps": warmup_steps,
        "steps": steps,
        "seed": seed,
        "threads": torch.get_num_threads(),
        "cudnn_benchmark": bool(torch.backends.cudnn.benchmark),
    }
    procs = [
        ctx.Process(
            target=_packed_job,
            args=(r, job, barrier, results),
            daemon=True,
            name=f"resnet-repro-bench-job{r}",
        )
        for r in range(jobs)
    ]
    log(f"packing: {jobs} trainer jobs at once on {placement.name}")
    got: dict[int, dict[str, Any]] = {}
    errors: list[str] = []
    finished = False
    try:
        for p in procs:
            p.start()
        while len(got) + len(errors) < jobs:
            try:
                status, rank, payload = results.get(timeout=1.0)
            except queue_mod.Empty:
                dead = [p for p in procs if p.exitcode not in (None, 0)]
                if dead and len(got) + len(errors) < jobs:
                    # A job died without a word (killed, out of memory): the others would
                    # wait at the barrier for ever.
                    try:
                        status, rank, payload = results.get(timeout=2.0)
                    except queue_mod.Empty:
                        barrier.abort()
                        errors.append(
                            f"job process {dead[0].name} exited with code {dead[0].exitcode}"
                        )
                        break
                else:
                    continue
            if status == "ok":
                got[rank] = payload
            else:
                errors.append(f"job {rank}: {payload}")
                barrier.abort()
        finished = True
    finally:
        for p in procs:
            p.join(timeout=30 if finished else 0)  # interrupted: stop the jobs at once
        for p in procs:
            if p.is_alive():
                p.terminate()
                p.join()
    if errors:
        # The first error is the cause; the rest are usually the broken barrier it left.
        cause = next((e for e in errors if "BrokenBarrierError" not in e), errors[0])
        return {"jobs": jobs, "error": cause}
    timings = [got[r] for r in range(jobs)]
    span = max(t["t1"] for t in timings) - min(t["t0"] for t in timings)
    images = sum(t["images"] for t in timings)
    out: dict[str, Any] = {
        "jobs": jobs,
        "images_per_second": images / span,
        "images": images,
        "seconds": span,
        "steps": steps,
        "warmup_steps": warmup_steps,
        "ms_per_step": 1000.0 * span / steps,  # per job: every job ran `steps` steps
        "per_job_images_per_second": [t["images_per_second"] for t in timings],
        "jobs_timing": [without_clock_marks(t) for t in timings],
    }
    if placement.device.type == "cuda":
        out["per_job_peak_memory_mb"] = [t.get("peak_memory_mb") for t in timings]
    return out
