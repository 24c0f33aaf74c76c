"""What a probe gets to measure a trained net: the study, the net (fp32, on its device), the
model file's identity, the study's images fed the way the net was trained, a progress bar and
a log. The command line builds it (reading the files); a probe's `measure` only computes."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import AnalysisConfig, Study
from ..progressbar import Bar

Batch = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class ProbeContext:
    study: Study
    model: nn.Module  # fp32 on `device`; each probe sets the mode it measures in
    identity: Mapping[str, Any]  # the model file's: model, seed, shortcut, width, source, ...
    device: torch.device
    bar: Bar  # advanced as the probe goes (progressbar.NULL where nobody watches)
    log: Callable[[str], None]
    # (split, n) -> the first n images of the study's "train" or "test" split (fewer where
    # the split holds fewer), unaugmented, normalised the way the net was trained, fp32 on
    # `device`, with their labels.
    images: Callable[[str, int], Batch]

    @property
    def analysis(self) -> AnalysisConfig:
        return self.study.analysis

    @property
    def name(self) -> str:
        return str(self.identity["model"])

    @property
    def seed(self) -> int:
        return int(self.identity["seed"])

    def batches(self, split: str, n: int, batch_size: int | None = None) -> list[Batch]:
        """`images(split, n)` in batches of `batch_size` (default: train.eval_batch_size)."""
        size = batch_size or self.study.train.eval_batch_size
        x, y = self.images(split, n)
        return [(x[i : i + size], y[i : i + size]) for i in range(0, len(y), size)]

    def test_batches(self, n: int) -> list[Batch]:
        return self.batches("test", n)
