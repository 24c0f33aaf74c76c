"""The Parquet schemas of every result file, and how files of an older layout are read or
rebuilt: the contract between the workflow's rules."""

from __future__ import annotations

import pyarrow as pa

METRICS_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("arch", pa.string()),
        ("depth", pa.int32()),
        ("shortcut", pa.string()),
        ("seed", pa.int32()),
        ("epoch", pa.int32()),  # 1-based; the last row may be a partial epoch
        ("iteration", pa.int64()),  # iterations done at the end of this row's epoch
        ("lr", pa.float64()),  # learning rate of the last iteration of the epoch
        ("train_loss", pa.float64()),  # mean over the epoch's (augmented) training batches
        ("train_error_pct", pa.float64()),
        ("val_loss", pa.float64()),  # null without a validation split
        ("val_error_pct", pa.float64()),
        ("test_loss", pa.float64()),  # full test set, eval mode, original images
        ("test_error_pct", pa.float64()),
        ("epoch_seconds", pa.float64()),  # training + evaluation wall time of the epoch
        ("images_per_second", pa.float64()),  # training images per second of training time
        ("status", pa.string()),  # "ok" or "diverged"
        # "epoch": the row of an epoch's end (evaluation included); "window": the training
        # loss and error over one fixed window of `train.window_iterations` iterations (test,
        # val, seconds and throughput null). Files written before windows existed hold epoch
        # rows only and lack both columns: they read as kind "epoch".
        ("kind", pa.string()),
        # iterations the row's train_loss / train_error_pct average over (the window's length;
        # on epoch rows the epoch's steps); null in older files
        ("window_iterations", pa.int64()),
    ]
)

ROW_KINDS = ("epoch", "window")

LAYER_STD_SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("arch", pa.string()),
        ("depth", pa.int32()),
        ("seed", pa.int32()),
        ("layer", pa.int32()),  # 1-based index of the 3x3 conv layer in network order
        ("name", pa.string()),  # module name of the BN whose output is measured
        # Two statistics of the BN output (Figure 7; the paper does not say which it drew):
        ("std", pa.float64()),  # pooled: one std over all images, positions and channels
        # the std of each channel over images and positions, averaged over the channels (the
        # spread of the per-channel means, mostly BN's beta, left out); null in older files
        ("channel_std_mean", pa.float64()),
        ("images", pa.int32()),
    ]
)

# Figure 7's statistic (analysis.figure7_statistic) -> its LAYER_STD_SCHEMA column.
LAYER_STD_STATISTICS = {"pooled": "std", "per_channel": "channel_std_mean"}

# Probes of trained nets (Veit et al. 2016, arXiv:1605.06431, and the branch magnitudes): one
# file per (model, seed) under results/analysis/<kind>/. Every file starts with the run keys.
_RUN_COLUMNS = [
    ("model", pa.string()),
    ("arch", pa.string()),
    ("depth", pa.int32()),
    ("seed", pa.int32()),
]

LESION_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("block", pa.int32()),  # 1-based index of the block in network order
        ("name", pa.string()),  # module name, e.g. "stage2.0"
        ("stage", pa.int32()),  # 1..3
        ("changes_shape", pa.bool_()),  # stride 2 or width change (the stage's first block)
        ("removable", pa.bool_()),  # residual, or plain with equal input/output shapes
        ("intact_error_pct", pa.float64()),  # test error of the whole net
        ("test_error_pct", pa.float64()),  # with this block deleted; null when not removable
        ("images", pa.int32()),
    ]
)

LESION_K_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("k", pa.int32()),  # number of blocks deleted at once
        ("draw", pa.int32()),  # 0-based index of the seeded random draw for this k
        ("removed", pa.string()),  # the deleted blocks' 1-based indices, comma-separated
        ("removable_blocks", pa.int32()),  # how many blocks could be deleted
        ("intact_error_pct", pa.float64()),
        ("test_error_pct", pa.float64()),
        ("images", pa.int32()),
    ]
)

PATHS_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("blocks", pa.int32()),  # n residual blocks: 2^n paths
        ("length", pa.int32()),  # k: blocks whose residual branch the path goes through
        ("paths", pa.float64()),  # C(n, k), the number of paths of length k
        ("path_fraction", pa.float64()),  # C(n, k) / 2^n (Veit et al. Fig. 6a)
        # per-image norm of d loss / d image at the network's input (the normalised image),
        # through one random path of this length per (image, draw) (Fig. 6b): mean, std and
        # standard error of the mean over the `samples` (image, path) pairs
        ("grad_norm_mean", pa.float64()),
        ("grad_norm_std", pa.float64()),
        ("grad_norm_sem", pa.float64()),
        ("weighted_grad", pa.float64()),  # path_fraction * grad_norm_mean (Fig. 6c, normalised)
        ("samples", pa.int32()),  # (image, path) pairs averaged: images x draws
        ("images", pa.int32()),  # distinct images
        ("image_split", pa.string()),  # "train" (original training images) or "test"
    ]
)

# Residual nets only (a plain block's output channels need not match its input's, so
# ||y - x|| means nothing there). Per image, x the block's input, y its output (after the final
# ReLU), F(x) its residual branch (before the addition), norms over all channels and positions.
BRANCH_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("block", pa.int32()),
        ("name", pa.string()),
        ("stage", pa.int32()),
        ("blocks", pa.int32()),  # blocks of the net: relative position (block - 0.5) / blocks
        ("changes_shape", pa.bool_()),  # downsampling block (stride 2, width doubled)
        # False where y and x differ in shape (downsampling blocks: option A zero-pads half of
        # the output channels), so neither ratio is a distance from the identity: values null
        ("measurable", pa.bool_()),
        ("change_mean", pa.float64()),  # ||y - x|| / ||x||: what the block changes
        ("change_std", pa.float64()),  # population std over the images
        ("branch_mean", pa.float64()),  # ||F(x)|| / ||x||: what the residual branch adds
        ("branch_std", pa.float64()),
        ("images", pa.int32()),
    ]
)

# The loss landscape of a trained net (Li et al. 2018, arXiv:1712.09913; probes/landscape.py):
# one row per evaluated point, under results/analysis/landscape/ (ours) or
# results/published/{name}/landscape.parquet (imported checkpoints).
LANDSCAPE_SCHEMA = pa.schema(
    _RUN_COLUMNS
    + [
        ("source", pa.string()),  # "run" (ours) or the imported checkpoint's name
        # "surface": theta + alpha d1 + beta d2; "direction": theta + alpha d1 (beta 0);
        # "interpolation": (1 - alpha) theta0 + alpha theta1, theta0 the initial weights
        ("kind", pa.string()),
        ("alpha", pa.float64()),
        ("beta", pa.float64()),
        ("loss", pa.float64()),  # mean cross-entropy over the training images, eval mode, fp32
        ("error_pct", pa.float64()),  # top-1 training error there
        ("status", pa.string()),  # "ok", or "diverged" (one row, NaN loss: the run diverged)
        ("note", pa.string()),  # why a row says "diverged"; null otherwise
        # interpolation rows: "run" (the run's own initialisation, rebuilt from its seed) or
        # "ours" (an imported net: a fresh initialisation of the same net by our code); null else
        ("init_source", pa.string()),
        ("direction_seed", pa.int32()),  # seed of d1 and d2
        ("range_min", pa.float64()),  # the grid: points per axis over [range_min, range_max]
        ("range_max", pa.float64()),
        ("points", pa.int32()),
        ("images", pa.int32()),  # first N training images, unaugmented
        ("batch_size", pa.int32()),  # images per forward pass
        ("point_seconds", pa.float64()),  # wall time of this point's evaluation
        ("wall_seconds", pa.float64()),  # wall time of the whole probe (every row the same)
    ]
)

STATUSES = ("ok", "diverged")

# Columns added to a schema after files of it were written, and the value an older file gets.
OPTIONAL_COLUMNS = (
    (METRICS_SCHEMA, {"kind": "epoch", "window_iterations": None}),
    (LAYER_STD_SCHEMA, {"channel_std_mean": None}),
)

# How to rebuild a result file of an older layout (the readers' one-line refusal); the other
# probes' hints are their registry entries' (probes/registry.py), handed to the reader.
REBUILD = (
    (METRICS_SCHEMA, "retrain that run: delete its metrics.parquet and rerun snakemake"),
    (
        LAYER_STD_SCHEMA,
        "delete it and rerun snakemake (or resnet-repro layer-std --model-file MODEL.pt "
        "--out FILE)",
    ),
)


def optional_columns(schema: pa.Schema) -> dict:
    return next((dict(v) for s, v in OPTIONAL_COLUMNS if s.equals(schema)), {})


def rebuild_hint(schema: pa.Schema) -> str | None:
    return next((v for s, v in REBUILD if s.equals(schema)), None)
