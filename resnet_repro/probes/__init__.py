"""Probes of trained nets: measurements that take a trained model and never train it, each
described once in the registry (`registry.PROBES`: name, measure, schema, which nets, config
keys, code files, figure), which the command line, the cost estimate and the rules read.

- `layer_responses`: std of every 3x3 layer's response (He et al. 2015, Figure 7);
- `lesions`: test error with one or k blocks deleted (Veit et al. 2016, arXiv:1605.06431,
  Figs. 3 and 5a);
- `paths`: path lengths and the gradient per path length at the input (Veit et al., Fig. 6);
- `branches`: how much each residual block changes its input, ||y - x|| / ||x||, and what
  its branch adds, ||F(x)|| / ||x||;
- `landscape`: the training-loss landscape around the trained weights (Li et al. 2018,
  arXiv:1712.09913) and the interpolation from the initial ones.

Each module's `measure(ctx)` takes a `context.ProbeContext` (the trained net, the study's
images) and returns a DataFrame; `cli/probes.py` reads and writes the files, the registry's
figure functions (figures/) draw them. The helpers below are shared by all of them; this
module imports none of the probes, which import it.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from typing import TYPE_CHECKING

from ..nets.families import parse_model_name

if TYPE_CHECKING:  # imported by the functions that use them: the registry imports this
    import pandas as pd
    import pyarrow as pa
    from torch import nn


@contextlib.contextmanager
def eval_mode(model: nn.Module) -> Iterator[nn.Module]:
    """The model in eval mode (BN with its running statistics, as at test time), with every
    module's train/eval flag restored afterwards, also on error."""
    modes = {m: m.training for m in model.modules()}
    model.eval()
    try:
        yield model
    finally:
        for m, training in modes.items():
            m.training = training


def block_table(model: nn.Module) -> pd.DataFrame:
    """One row per block in network order: block (1-based), name, stage (1..3), residual,
    changes_shape, removable."""
    import pandas as pd

    from ..nets.anatomy import changes_shape, is_residual, named_blocks, removable

    rows = []
    for i, (name, block) in enumerate(named_blocks(model)):
        stage = int(name.split(".")[0].removeprefix("stage"))
        rows.append(
            {
                "block": i + 1,
                "name": name,
                "stage": stage,
                "residual": is_residual(block),
                "changes_shape": changes_shape(block),
                "removable": removable(block),
            }
        )
    return pd.DataFrame(rows)


def label_run(df: pd.DataFrame, model: str, seed: int, schema: pa.Schema) -> pd.DataFrame:
    """Add model/arch/depth/seed to a probe's rows, in the column order of `schema`."""
    arch, depth = parse_model_name(model)
    out = df.assign(model=model, arch=arch, depth=depth, seed=int(seed))
    return out[schema.names].reset_index(drop=True)
