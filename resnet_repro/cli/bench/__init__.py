"""The benchmark subcommands on the command line, one module each: `throughput` (bench),
`study` (bench-study), `landscape` (bench-landscape), and the `options` they share."""

from .landscape import add_landscape_arguments, run_landscape_from_args
from .options import DEFAULT_TRAIN_IMAGES, study_from_args
from .study import add_study_arguments, run_study_from_args, study_projection_text
from .throughput import add_arguments, run_from_args

__all__ = [
    "DEFAULT_TRAIN_IMAGES",
    "add_arguments",
    "add_landscape_arguments",
    "add_study_arguments",
    "run_from_args",
    "run_landscape_from_args",
    "run_study_from_args",
    "study_from_args",
    "study_projection_text",
]
