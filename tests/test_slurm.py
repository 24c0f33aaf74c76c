"""The smoke study on a real one-node SLURM cluster (tools/slurm-one-node, from Debian's
packages), run with the README's cluster command through the user's profile
(workflow/profiles/slurm), with only what a small test node needs layered on the command line;
every result must equal the local run's. The cluster builds one target of each kind of job
(training and Table 6, a probe, a loss landscape): every other job of the study goes through
the same executor the same way, and the local smoke study builds them all."""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from pathlib import Path

import pandas as pd
import pytest
import torch
from conftest import SMOKE_CONFIG, need_system_tools
from test_workflow import ROOT, env, make_project

SLURM_TOOLS = ("munged", "slurmctld", "slurmd", "sbatch", "squeue", "sinfo", "scontrol")
ONE_NODE = ROOT / "tools" / "slurm-one-node"

# What a 2-core test node needs on top of the README's command: the profile's training job
# asks for 4 CPUs and 16 GB, more than the node has; one thread per job, as in the local
# run, so that the numbers can be compared exactly; quick status polls, so the test is short.
TEST_NODE = [
    "--configfile",
    SMOKE_CONFIG,
    "--set-resources",
    "train:cpus_per_task=1",
    "train:mem_mb=3000",
    "--max-threads",
    "1",
    "--slurm-init-seconds-before-status-checks",
    "1",
    "--seconds-between-status-checks",
    "2",
]
# What the cluster builds: every training run (Table 6 needs them all), one probe (paths, a
# residual net's) and one landscape (a plain net's).
SLURM_TARGETS = [
    "results/tables/table6.md",
    "results/analysis/paths/resnet8_seed0.parquet",
    "results/analysis/landscape/plain8_seed0.parquet",
]

# Columns that measure time, which no two runs share.
TIMING = re.compile(r"seconds|per_second|wall|_s$|hours")


def readme_cluster_commands() -> list[str]:
    """The commands of the README's cluster section, comments removed."""
    text = (ROOT / "README.md").read_text()
    section = text.split("\n## On a SLURM cluster\n", 1)[1].split("\n## ", 1)[0]
    commands = []
    for block in re.findall(r"```bash\n(.*?)```", section, re.S):
        for line in block.splitlines():
            line = line.split("#", 1)[0].strip()
            if line:
                commands.append(line)
    return commands


@pytest.fixture(scope="module")
def cluster():
    need_system_tools(SLURM_TOOLS, "the SLURM test")
    if subprocess.run([ONE_NODE, "status"]).returncode == 0:
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("no SLURM node is up, and starting one needs root")
    subprocess.run([ONE_NODE, "start"], check=True, timeout=120)
    yield
    subprocess.run([ONE_NODE, "stop"], timeout=60)


def slurm_job(job_id: str) -> dict[str, str]:
    out = subprocess.run(
        ["scontrol", "show", "job", job_id], capture_output=True, text=True, check=True
    ).stdout
    return dict(re.findall(r"(\w+)=(\S*)", out))


def frame(path: Path) -> pd.DataFrame:
    df = pd.read_parquet(path) if path.suffix == ".parquet" else pd.read_csv(path)
    return df.drop(columns=[c for c in df.columns if TIMING.search(c)])


def result_files(cwd: Path) -> list[str]:
    patterns = ("results/**/*.parquet", "results/**/*.csv", "results/runs/**/model.pt")
    return sorted(str(p.relative_to(cwd)) for pat in patterns for p in cwd.glob(pat))


def test_readme_cluster_section_names_what_the_test_runs():
    commands = readme_cluster_commands()
    assert 'pip install -e ".[slurm]"' in commands
    assert "snakemake --profile workflow/profiles/slurm" in commands
    squeue = [c for c in commands if "--slurm-status-command squeue" in c]
    assert squeue == ["snakemake --profile workflow/profiles/slurm --slurm-status-command squeue"]
    # the README's override for small nodes uses the same mechanism as the test node
    assert any("--set-resources train:cpus_per_task=" in c for c in commands)


def test_smoke_study_on_slurm_equals_the_local_run(cluster, smoke_study, tmp_path):
    (command,) = [c for c in readme_cluster_commands() if "--slurm-status-command" in c]
    cwd = make_project(tmp_path / "slurm")
    r = subprocess.run(
        shlex.split(command) + TEST_NODE + SLURM_TARGETS,
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env(cwd, slurm=True),
        timeout=1200,
    )
    log = r.stdout + r.stderr
    assert r.returncode == 0, log[-4000:]

    # Every job went through SLURM, and each training, probe and loss-landscape job was granted
    # one GPU (a generic resource of the node), as on a GPU cluster; tables and figures asked
    # for none.
    submitted = dict(
        re.findall(r"Job \d+ has been submitted with SLURM jobid (\d+) \(log: (.*?)\)", log)
    )
    jobs = {job_id: slurm_job(job_id) for job_id in submitted}
    assert jobs and all(j["JobState"] == "COMPLETED" for j in jobs.values()), jobs
    GPU_RULES = ("rule_train", "rule_probe", "rule_landscape")
    train = {i: j for i, j in jobs.items() if j["Comment"].startswith("rule_train")}
    assert len(train) == 4  # plain/resnet at depths 8 and 14
    on_gpu = {i for i, j in jobs.items() if j["Comment"].startswith(GPU_RULES)}
    assert len(on_gpu) == len(train) + 2  # the probe and the landscape
    for i, j in jobs.items():
        assert (j.get("TresPerJob") == "gres:gpu:1") == (i in on_gpu), j["Comment"]

    built = result_files(cwd)
    assert set(built) <= set(result_files(smoke_study)), built
    assert {"results/tables/table6.csv", *SLURM_TARGETS[1:]} <= set(built), built
    for name in built:
        if name.endswith("model.pt"):
            a = torch.load(smoke_study / name, map_location="cpu", weights_only=False)
            b = torch.load(cwd / name, map_location="cpu", weights_only=False)
            for key, tensor in a["model"].items():
                assert torch.equal(tensor, b["model"][key]), (name, key)
        else:
            pd.testing.assert_frame_equal(frame(cwd / name), frame(smoke_study / name), obj=name)
    for run in smoke_study.glob("results/runs/*/*/run.json"):
        ours = json.loads((cwd / run.relative_to(smoke_study)).read_text())
        assert ours["identity"] == json.loads(run.read_text())["identity"]
