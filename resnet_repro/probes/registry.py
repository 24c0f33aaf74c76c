"""The probe registry: every measurement of trained nets described once, read by the command
line (`resnet-repro probe NAME`, its figure), the CPU cost warning, the result readers and
writers, and the Snakemake rules (which nets, which config values, which code files).

A probe is one module in this folder with a `measure(ctx) -> (rows, summary)` function
(`context.ProbeContext` in, a DataFrame of its schema less the run columns out) plus one
`Probe` entry in `PROBES` below. Its results land in
`results/analysis/{name}/{model}_seed{seed}.parquet`, one file per trained net (first seed),
and its figure, if it has one, in `figures/{name}.png` with the report caption
`workflow/report/{name}.rst`.

The entry names its functions as "module:function" (in the package, such as
"probes.lesions:measure_single"), imported when first called: every `resnet-repro` command and
every Snakemake start reads the registry, and neither should pay for torch, matplotlib and
every probe to do so (`basics.resolve`; `tests/test_registries.py` resolves each name).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd
import pyarrow as pa

from ..basics import resolve
from ..config import AnalysisConfig, ConfigError, DataConfig, Study
from ..nets.families import family_of
from ..results import (
    BRANCH_SCHEMA,
    LANDSCAPE_SCHEMA,
    LAYER_STD_SCHEMA,
    LESION_K_SCHEMA,
    LESION_SCHEMA,
    PATHS_SCHEMA,
    read_all,
    rebuild_hint,
    write_parquet,
)

if TYPE_CHECKING:
    from matplotlib.figure import Figure
    from torch import nn

    from .context import ProbeContext

# "module:function" in the package, or the function itself.
Ref = str | Callable[..., Any]
FIGURE_CODE = ("figures/style.py",)  # every figure's styling: an edit redraws them all


@dataclass(frozen=True)
class ProbeFigure:
    draw: Ref  # (rows, models to draw or None) -> matplotlib Figure
    label: str  # its label in the Snakemake report
    code: tuple[str, ...]  # its figure module(s), relative to the package
    # Draw every net the probe ran on, not only analysis.probe_figure_models (the block
    # changes compare every ResNet depth, He et al.'s reading of Figure 7).
    every_model: bool = False

    def make(self, rows: pd.DataFrame, models: Sequence[str] | None = None) -> Figure:
        return resolve(self.draw)(rows, models)


@dataclass(frozen=True)
class Probe:
    name: str  # the CLI's `probe NAME`, the results folder, the figure's file name
    help: str  # one line for --help
    measure: Ref  # (ProbeContext) -> (rows less the run columns, one-line summary)
    schema: pa.Schema  # its result file (the run columns first: results.schemas)
    code: tuple[str, ...]  # its module(s), relative to the package: an edit reruns it
    settings: tuple[str, ...]  # the config values its numbers depend on ("analysis.x")
    rebuild: str  # how to rebuild a file of an older layout
    # Why a net without shortcuts cannot be measured, for a probe of residual nets only.
    residual_only: str | None = None
    # Which of the study's nets it runs on, where not every one (Figure 7: its models).
    select: Callable[[Study], Sequence[str]] | None = None
    # For the CPU warning of a long probe: whole-net image passes and the keys that shrink it.
    passes: Ref | None = None  # (model, AnalysisConfig, test images) -> image passes
    size_keys: tuple[str, ...] = ()
    figure: ProbeFigure | None = None
    # The Snakemake rule that runs it: the shared "probe" rule, or one of its own named after
    # the probe (the report, the logs and users' --until know Figure 7's and the
    # landscape's rules by name).
    own_rule: bool = False
    # On the study's training device (a GPU slot where there is one), or on the CPU.
    training_device: bool = True

    def run(self, ctx: ProbeContext) -> tuple[pd.DataFrame, str]:
        return resolve(self.measure)(ctx)

    def image_passes(self, model: nn.Module, a: AnalysisConfig, test_images: int) -> float:
        """Whole-net image passes it makes on `test_images` test images (0: it counts none)."""
        return resolve(self.passes)(model, a, test_images) if self.passes else 0.0

    def why_not(self, model: str) -> str | None:
        """Why this probe cannot measure `model`, in words; None where it can."""
        if self.residual_only and not family_of(model).residual:
            return f"the {self.name} probe needs a residual net; {model} is plain " + (
                f"({self.residual_only})"
            )
        return None

    def models(self, study: Study) -> list[str]:
        """The study's nets the workflow runs it on (first seed)."""
        trained = study.models()
        if self.select is not None:
            chosen = [m for m in self.select(study) if m in trained]
        else:
            chosen = [m for m in trained if family_of(m).workflow_probes]
        return [m for m in chosen if self.why_not(m) is None]

    def figure_models(self, study: Study) -> list[str]:
        """The nets its figure draws: analysis.probe_figure_models that it ran on (all it
        ran on when none of those, or with `every_model`)."""
        ran = self.models(study)
        if self.figure is not None and self.figure.every_model:
            return ran
        return [m for m in study.analysis.probe_figure_models if m in ran] or ran

    def settings_of(self, study: Study) -> dict[str, object]:
        """The values of its settings: the plain view Snakemake tracks as the rule's param
        (a change reruns the probe, never training)."""
        out = {}
        for key in self.settings:
            section, name = key.split(".")
            value = getattr(getattr(study, section), name)
            out[key] = list(value) if isinstance(value, tuple) else value
        return out

    def write(self, rows: pd.DataFrame, path: str | Path) -> None:
        write_parquet(rows, path, self.schema)

    def read_all(self, paths: Sequence[str | Path]) -> pd.DataFrame:
        return read_all(paths, self.schema, rebuild=self.rebuild)


def _figure7_models(study: Study) -> Sequence[str]:
    return study.analysis.figure7_models


def _rebuild(name: str, more: str = "") -> str:
    return (
        f"delete it and rerun snakemake (or resnet-repro probe {name} --model-file MODEL.pt "
        f"--out FILE){more}"
    )


PROBES: tuple[Probe, ...] = (
    Probe(
        name="layer_std",
        help="Figure 7: std of every layer's response after BN (He et al. 2015, sec. 4.2)",
        measure="probes.layer_responses:measure",
        schema=LAYER_STD_SCHEMA,
        code=("probes/layer_responses.py",),
        settings=("analysis.layer_std_images", "data.test_subset"),
        rebuild=rebuild_hint(LAYER_STD_SCHEMA),
        select=_figure7_models,
        own_rule=True,
        training_device=False,  # a few eval batches: not worth a GPU slot
    ),
    Probe(
        name="lesions",
        help="test error with each block deleted (Veit et al. 2016, Fig. 3)",
        measure="probes.lesions:measure_single",
        schema=LESION_SCHEMA,
        code=("probes/lesions.py",),
        settings=("analysis.probe_images", "data.test_subset"),
        rebuild=_rebuild("lesions"),
        passes="probes.lesions:passes_single",
        size_keys=("probe_images",),
        figure=ProbeFigure(
            "figures.probes:figure_lesions",
            "Veit Fig. 3: single-block lesions",
            ("figures/probes.py",),
        ),
    ),
    Probe(
        name="lesions_k",
        help="test error with k random blocks deleted (Veit et al. 2016, Fig. 5a)",
        measure="probes.lesions:measure_k",
        schema=LESION_K_SCHEMA,
        code=("probes/lesions.py",),
        settings=(
            "analysis.probe_images",
            "analysis.lesion_draws",
            "analysis.lesion_k_points",
            "analysis.probe_seed",
            "data.test_subset",
        ),
        rebuild=_rebuild("lesions_k"),
        passes="probes.lesions:passes_k",
        size_keys=("lesion_k_points", "lesion_draws", "probe_images"),
        figure=ProbeFigure(
            "figures.probes:figure_lesions_k",
            "Veit Fig. 5a: k-block lesions",
            ("figures/probes.py",),
        ),
    ),
    Probe(
        name="paths",
        help="gradient at the input per path length (Veit et al. 2016, Fig. 6; residual nets)",
        measure="probes.paths:measure",
        schema=PATHS_SCHEMA,
        code=("probes/paths.py",),
        settings=(
            "analysis.path_samples",
            "analysis.path_batches",
            "analysis.path_batch_size",
            "analysis.path_split",
            "analysis.probe_seed",
            "data.test_subset",
        ),
        rebuild=_rebuild(
            "paths", "; the older layout measured the gradient at the first block's input"
        ),
        residual_only="it has one path only",
        passes="probes.paths:passes",
        size_keys=("path_samples", "path_batches", "path_batch_size"),
        figure=ProbeFigure(
            "figures.probes:figure_paths",
            "Veit Fig. 6: path lengths and gradients",
            ("figures/probes.py",),
        ),
    ),
    Probe(
        name="branches",
        help="||y-x||/||x|| and ||F(x)||/||x|| per residual block (residual nets)",
        measure="probes.branches:measure",
        schema=BRANCH_SCHEMA,
        code=("probes/branches.py",),
        settings=("analysis.probe_images", "data.test_subset"),
        rebuild=_rebuild("branches", "; the older layout measured ||F(x)|| / ||s(x)||"),
        residual_only="its output channels need not match its input's, so ||y - x|| / ||x|| "
        "is no distance from the identity",
        passes="probes.branches:passes",
        size_keys=("probe_images",),
        figure=ProbeFigure(
            "figures.probes:figure_branches",
            "block changes of residual nets",
            ("figures/probes.py",),
            every_model=True,
        ),
    ),
    Probe(
        name="landscape",
        help="training-loss landscape along two filter-normalised directions and the "
        "interpolation from the initial weights (Li et al. 2018)",
        measure="probes.landscape:measure",
        schema=LANDSCAPE_SCHEMA,
        code=("probes/landscape.py",),
        settings=(
            "analysis.landscape_range",
            "analysis.landscape_points",
            "analysis.landscape_images",
            "analysis.landscape_seed",
        ),
        rebuild=_rebuild("landscape"),
        figure=ProbeFigure(
            "figures.landscape:figure_landscape",
            "Li Fig. 5: loss landscapes",
            ("figures/landscape.py",),
            every_model=True,
        ),
        own_rule=True,
    ),
)

BY_NAME = {p.name: p for p in PROBES}
NAMES = tuple(BY_NAME)
# The two that other rules name: Figure 7 is drawn from the first, and the published
# checkpoints get both.
LAYER_STD = BY_NAME["layer_std"]
LANDSCAPE = BY_NAME["landscape"]


def probe(name: str) -> Probe:
    if name not in BY_NAME:
        raise ConfigError(f"probe {name!r} is not known; allowed values: {list(NAMES)}")
    return BY_NAME[name]


def _check_settings() -> None:
    """Every setting names a key of the config's analysis or data section (a typo fails at
    import, so in every test)."""
    known = {
        s: {f.name for f in fields(c)}
        for s, c in (("analysis", AnalysisConfig), ("data", DataConfig))
    }
    for p in PROBES:
        for key in p.settings:
            section, _, name = key.partition(".")
            if name not in known.get(section, ()):
                raise ValueError(f"probe {p.name}: setting {key!r} is no analysis.* or data.* key")


_check_settings()
