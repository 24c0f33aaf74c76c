# The CIFAR-10 degradation study of He et al. 2015, section 4.2, as a Snakemake workflow.
# All logic lives in the resnet_repro package; the rules call its `resnet-repro` command.
#
#   snakemake --cores 8 --resources gpu=2                     # the full study
#   snakemake --cores 2 --configfile workflow/configs/smoke.yaml   # a CPU smoke study

from snakemake.utils import min_version, validate

min_version("9.0")

from resnet_repro.config import ConfigError, read_yaml

try:
    # Snakemake's own message for a broken YAML file names neither the line nor the column.
    read_yaml("config.yaml")
except ConfigError as e:
    raise WorkflowError(f"bad config: {e}")


configfile: "config.yaml"


report: "workflow/report/workflow.rst"


include: "workflow/rules/common.smk"
include: "workflow/rules/data.smk"
include: "workflow/rules/train.smk"
include: "workflow/rules/analysis.smk"
include: "workflow/rules/figures.smk"
include: "workflow/rules/published.smk"
include: "workflow/rules/probes.smk"


rule all:
    default_target: True
    input:
        all_targets(),
