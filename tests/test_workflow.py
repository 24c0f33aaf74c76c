"""The Snakemake workflow, run for real on a tiny CPU study: first one target, then the
whole study, reruns after deletions and edits, an interruption, the report, lint, bad
configs and the SLURM profile."""

import json
import os
import re
import shutil
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from conftest import NO_SLURM, need_system_tools

import resnet_repro
from resnet_repro.results import read_metrics

ROOT = Path(__file__).resolve().parents[1]
PACKAGE = Path(resnet_repro.__file__).resolve().parent

TINY = {
    "data": {"source": "synthetic", "download": False, "train_subset": 64, "test_subset": 32},
    "study": {"archs": ["plain", "resnet"], "depths": [8], "seeds": [0]},
    "train": {"batch_size": 32, "iterations": 4, "lr_milestones": [2], "eval_batch_size": 64},
    "device": {"device": "cpu"},
    "analysis": {
        "layer_std_images": 32,
        "figure7_models": ["plain8", "resnet8"],
        "probe_images": 32,
        "lesion_draws": 2,
        "path_samples": 2,
        "path_batches": 1,
        "path_batch_size": 8,
        "probe_figure_models": ["plain8", "resnet8"],
        "landscape_points": 3,
        "landscape_images": 16,
    },
}
PROBES = ("lesions", "lesions_k", "paths", "branches")


def make_project(path: Path, study: dict = TINY) -> Path:
    """A copy of the workflow and of the package (imported from there through PYTHONPATH, so
    that tests may edit its code), with the tiny study in tiny.yaml."""
    path.mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "Snakefile", path)
    shutil.copy(ROOT / "config.yaml", path)
    shutil.copytree(ROOT / "workflow", path / "workflow")
    shutil.copytree(PACKAGE, path / "resnet_repro", ignore=shutil.ignore_patterns("__pycache__"))
    (path / "tiny.yaml").write_text(yaml.safe_dump(study))
    return path


def env(cwd: Path, slurm: bool = False) -> dict[str, str]:
    """The environment of a test's Snakemake and resnet-repro processes: the project copy's
    package first on the path; SLURM's own configuration for the SLURM test only (`slurm`),
    an empty one for local runs (conftest.NO_SLURM: no Snakemake start waits on scontrol)."""
    return {**os.environ, "PYTHONPATH": str(cwd), **({} if slurm else NO_SLURM)}


def smk(
    cwd: Path, *args: str, config: str | None = "tiny.yaml", check: bool = True, **kw
) -> subprocess.CompletedProcess:
    cmd = ["snakemake", "--cores", "2", "--scheduler", "greedy", *args]
    if config:
        cmd += ["--configfile", config]
    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env(cwd), **kw)
    if check:
        assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    return r


def planned(cwd: Path, *args: str, config: str | None = "tiny.yaml") -> Counter:
    """What a dry run would execute: Counter of 'rule' or 'rule:model=..,seed=..'."""
    r = smk(cwd, "-n", *args, config=config)
    out = r.stdout + r.stderr
    jobs: Counter = Counter()
    for block in re.split(r"\n(?=(?:local)?rule \w+:)", out):
        m = re.match(r"(?:local)?rule (\w+):", block.strip())
        if not m or m.group(1) == "all":
            continue
        w = re.search(r"wildcards: (.*)", block)
        jobs[m.group(1) + (":" + w.group(1).replace(" ", "") if w else "")] += 1
    if "Nothing to be done" in out:
        assert not jobs
    return jobs


def mtimes(cwd: Path, pattern: str) -> dict[str, float]:
    return {str(p.relative_to(cwd)): p.stat().st_mtime_ns for p in cwd.glob(pattern)}


@pytest.fixture(scope="module")
def completed(tmp_path_factory):
    """A tiny study that was first run for one target, then completed; and a copy of the
    complete project taken before any test changed it."""
    cwd = make_project(tmp_path_factory.mktemp("study"))
    smk(cwd, "results/runs/resnet8/seed0/metrics.parquet")
    single = sorted(
        p.relative_to(cwd).as_posix() for p in cwd.glob("results/runs/*/*/*") if p.is_file()
    )
    first = mtimes(cwd, "results/runs/resnet8/seed0/*")
    smk(cwd)
    pristine = tmp_path_factory.mktemp("pristine") / "p"
    shutil.copytree(cwd, pristine, symlinks=True)  # copy2: modification times kept
    return cwd, single, first, pristine


@pytest.fixture(scope="module")
def study(completed):
    """The tiny study's project (tests change it, in file order), the result files of its
    first, single-target run, and that run's modification times."""
    return completed[:3]


@pytest.fixture
def complete_project(completed, tmp_path):
    """A complete tiny study of this test's own, copied (it takes a minute to compute)."""
    return Path(shutil.copytree(completed[3], tmp_path / "p", symlinks=True))


def test_single_target_trains_only_that_run(study):
    cwd, single, _ = study
    assert single == [
        "results/runs/resnet8/seed0/metrics.parquet",
        "results/runs/resnet8/seed0/model.pt",
        "results/runs/resnet8/seed0/run.json",
    ]


def test_complete_study_writes_every_result_and_reuses_the_finished_run(study):
    cwd, _, first = study
    for model in ("plain8", "resnet8"):
        run = cwd / "results/runs" / model / "seed0"
        df = read_metrics(run / "metrics.parquet")
        assert df.iteration.max() == 4 and (df.status == "ok").all()
        assert (run / "model.pt").is_file() and (run / "run.json").is_file()
        # no resume state; the outputs kept where Snakemake never deletes them (engine.resume)
        assert not (run / "checkpoint" / "state.pt").exists()
        assert sorted(p.name for p in (run / "checkpoint" / "finished").iterdir()) == [
            "identity_hash",
            "metrics.parquet",
            "model.pt",
            "run.json",
        ]
        assert (cwd / f"results/analysis/layer_std/{model}_seed0.parquet").is_file()
    for name in ("table6", "plain_vs_residual", "runs"):
        assert (cwd / f"results/tables/{name}.csv").is_file()
        md = (cwd / f"results/tables/{name}.md").read_text()
        assert re.search(r"\|\s+8\s+\|", md) if name == "plain_vs_residual" else "resnet8" in md
    for fig in ("figure6", "figure7"):
        for ext in ("png", "pdf"):
            assert (cwd / f"figures/{fig}.{ext}").stat().st_size > 1000
    assert mtimes(cwd, "results/runs/resnet8/seed0/*") == first  # not retrained
    table = pd.read_csv(cwd / "results/tables/runs.csv")
    assert sorted(table.model) == ["plain8", "resnet8"] and (table.status == "ok").all()


def test_nothing_to_do_after_a_complete_run(study):
    cwd, _, _ = study
    assert planned(cwd) == Counter()


def test_status_with_the_workflows_config_files_sees_every_run_done(study):
    """`resnet-repro status --configfile` reads the folder's config.yaml and then the file,
    as Snakemake does, and compares the runs' data by the workflow's prepared.json."""
    cwd, _, _ = study
    r = subprocess.run(
        ["resnet-repro", "status", "--configfile", "tiny.yaml", "--json"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env(cwd),
    )
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout)
    assert [(x["model"], x["state"]) for x in out["rows"]] == [
        ("plain8", "done"),
        ("resnet8", "done"),
    ]
    assert "content fingerprint (from results/data/prepared.json)" in out["data_check"]


def test_editing_plot_code_reruns_figures_only(study):
    cwd, _, _ = study
    plots = cwd / "resnet_repro" / "figures" / "style.py"
    original = plots.read_text()
    plots.write_text(original + "\n# an edit\n")
    # the probe figures use the same styling
    assert planned(cwd) == Counter(
        {
            "figure6": 1,
            "figure7": 1,
            "figure_landscape": 1,
            **{f"figure_{k}": 1 for k in PROBES},
        }
    )
    smk(cwd)
    assert planned(cwd) == Counter()


def test_editing_a_caption_reruns_nothing(study):
    cwd, _, _ = study
    caption = cwd / "workflow/report/figure6.rst"
    caption.write_text(caption.read_text() + "\nEdited.\n")
    assert planned(cwd) == Counter()


def test_adding_a_seed_trains_only_the_new_runs(study):
    cwd, _, _ = study
    (cwd / "seeds.yaml").write_text("study: {seeds: [0, 1]}\n")
    jobs = planned(cwd, "--configfile", "tiny.yaml", "seeds.yaml", config=None)
    trained = {k for k in jobs if k.startswith("train:")}
    assert trained == {"train:model=plain8,seed=1", "train:model=resnet8,seed=1"}
    assert "prepare_data" not in jobs


def test_changing_the_recipe_retrains(study):
    cwd, _, _ = study
    (cwd / "lr.yaml").write_text("train: {lr: 0.05}\n")
    jobs = planned(cwd, "--configfile", "tiny.yaml", "lr.yaml", config=None)
    assert {k for k in jobs if k.startswith("train:")} == {
        "train:model=plain8,seed=0",
        "train:model=resnet8,seed=0",
    }


def test_deleting_one_run_retrains_it_and_rederives_its_dependents_only(study):
    cwd, _, _ = study
    other = mtimes(cwd, "results/runs/resnet8/seed0/*")
    # The run's folder: its outputs alone would be put back from checkpoint/finished/.
    shutil.rmtree(cwd / "results/runs/plain8/seed0")
    residual_only = ("paths", "branches")
    probes = {f"probe:kind={k},model=plain8,seed=0": 1 for k in PROBES if k not in residual_only}
    figures = {f"figure_{k}": 1 for k in PROBES if k not in residual_only}
    assert planned(cwd) == Counter(
        {
            "train:model=plain8,seed=0": 1,
            "layer_std:model=plain8,seed=0": 1,
            "tables": 1,
            "figure6": 1,
            "figure7": 1,
            **probes,
            **figures,
            "landscape:model=plain8,seed=0": 1,
            "figure_landscape": 1,
        }
    )
    smk(cwd)
    assert (cwd / "results/runs/plain8/seed0/metrics.parquet").is_file()
    assert "| epoch 1 |" in (cwd / "logs/train/plain8_seed0.log").read_text()  # trained
    assert mtimes(cwd, "results/runs/resnet8/seed0/*") == other
    assert planned(cwd) == Counter()


def test_report_holds_every_figure_and_table(study):
    cwd, _, _ = study
    smk(cwd, "--report", "results/report.html")
    html = (cwd / "results/report.html").read_text(errors="replace")
    for name in (
        "figure6.png",
        "figure7.png",
        "table6.html",
        "plain_vs_residual.html",
        "runs.html",
    ) + tuple(f"{k}.png" for k in PROBES + ("landscape",)):
        assert name in html, name
    for caption_words in (
        "Figure 6",
        "Figure 7",
        "Table 6",
        "Figure 3",
        "Figure 5a",
        "Figure 6 (a-c)",
        "identity",
        "Veit",
        "Visualizing the Loss Landscape of Neural Nets",
        "Figure 5",
        "direction seed 0",
    ):
        assert caption_words in html
    # the captions say how many images: the config values are filled in
    # (a caption's line breaks are stored as the two characters backslash, n)
    assert "min(32, size of the test set)" in html
    assert re.search(r"batch\(es\) of(\s|\\n)+8 images", html)
    assert "windows of" in html and "pooled std" in html  # Figure 6's and 7's statistics
    # the landscape's caption names the grid and the images
    assert re.search(r"3 x(\s|\\n)+3 grid", html)
    assert re.search(r"first(\s|\\n)+16(\s|\\n)+training(\s|\\n)+images", html)


def test_probes_write_every_result_and_figure(study):
    cwd, _, _ = study
    from resnet_repro.probes.registry import probe

    for kind in PROBES:
        models = ["resnet8"] if kind in ("paths", "branches") else ["plain8", "resnet8"]
        files = [cwd / f"results/analysis/{kind}/{m}_seed0.parquet" for m in models]
        df = probe(kind).read_all(files)
        assert sorted(set(df["model"])) == models and (df["images"] > 0).all()
        for ext in ("png", "pdf"):
            assert (cwd / f"figures/{kind}.{ext}").stat().st_size > 1000
    lesions = probe("lesions").read_all([cwd / "results/analysis/lesions/resnet8_seed0.parquet"])
    assert list(lesions["block"]) == [1, 2, 3] and (lesions["images"] == 32).all()


def test_landscapes_are_written_for_every_net_and_drawn(study):
    cwd, _, _ = study
    from resnet_repro.results import read_all_landscape

    files = [cwd / f"results/analysis/landscape/{m}_seed0.parquet" for m in ("plain8", "resnet8")]
    df = read_all_landscape(files)
    assert sorted(set(df["model"])) == ["plain8", "resnet8"]
    for _, rows in df.groupby("model"):
        assert rows["kind"].value_counts().to_dict() == {
            "surface": 9,
            "direction": 3,
            "interpolation": 3,
        }
        assert (rows["images"] == 16).all() and (rows["seed"] == 0).all()
        assert (rows["status"] == "ok").all() and (rows["wall_seconds"] > 0).all()
        assert set(rows["init_source"].dropna()) == {"run"}
    for ext in ("png", "pdf"):
        assert (cwd / f"figures/landscape.{ext}").stat().st_size > 1000


def test_editing_the_landscape_reruns_it_and_its_figure_only(study):
    cwd, _, _ = study
    plots = cwd / "resnet_repro" / "figures" / "landscape.py"
    plots.write_text(plots.read_text() + "\n# an edit\n")
    assert planned(cwd) == Counter({"figure_landscape": 1})
    code = cwd / "resnet_repro" / "probes" / "landscape.py"
    code.write_text(code.read_text() + "\n# an edit\n")
    assert planned(cwd) == Counter(
        {
            "landscape:model=plain8,seed=0": 1,
            "landscape:model=resnet8,seed=0": 1,
            "figure_landscape": 1,
        }
    )
    smk(cwd)
    assert planned(cwd) == Counter()


def test_editing_a_probe_reruns_that_probe_and_its_figure_only(study):
    cwd, _, _ = study
    code = cwd / "resnet_repro" / "probes" / "branches.py"
    code.write_text(code.read_text() + "\n# an edit\n")
    assert planned(cwd) == Counter(
        {
            "probe:kind=branches,model=resnet8,seed=0": 1,
            "figure_branches": 1,
        }
    )
    plots = cwd / "resnet_repro" / "figures" / "probes.py"
    plots.write_text(plots.read_text() + "\n# an edit\n")
    assert planned(cwd)["figure_lesions"] == 1
    assert not any(k.startswith(("train", "layer_std")) for k in planned(cwd))
    # the tables and Figure 7's layer-response probe live in separate modules
    tables = cwd / "resnet_repro" / "tables" / "comparison.py"
    tables.write_text(tables.read_text() + "\n# an edit\n")
    jobs = planned(cwd)
    assert jobs["tables"] == 1 and not any(k.startswith("layer_std") for k in jobs)
    probe = cwd / "resnet_repro" / "probes" / "layer_responses.py"
    probe.write_text(probe.read_text() + "\n# an edit\n")
    assert planned(cwd)["layer_std:model=resnet8,seed=0"] == 1
    smk(cwd)
    assert planned(cwd) == Counter()


def test_a_local_snakemake_start_never_waits_for_a_slurm_controller(tmp_path, monkeypatch):
    """A SLURM configuration whose controller does not answer (as after tools/slurm-one-node
    stop) costs local runs nothing: the `scontrol show config` that Snakemake's SLURM plugin
    runs at every start (conftest.NO_SLURM) returns at once in their environment, where it
    would wait about 10 s."""
    need_system_tools(("scontrol", "sinfo"), "the SLURM start-up test")
    gone = tmp_path / "slurm.conf"
    gone.write_text("ClusterName=gone\nSlurmctldHost=localhost\n")
    monkeypatch.setenv("SLURM_CONF", str(gone))
    started = time.monotonic()
    subprocess.run(
        ["scontrol", "show", "config"], env=env(tmp_path), capture_output=True, timeout=8
    )
    assert time.monotonic() - started < 3


def test_lint_is_clean():
    r = subprocess.run(
        ["snakemake", "--lint"], cwd=ROOT, capture_output=True, text=True, env=env(ROOT)
    )
    assert r.returncode == 0, r.stdout + r.stderr
    assert "Lints for" not in r.stdout + r.stderr


@pytest.mark.parametrize(
    "bad, words",
    [
        ({"study": {"depths": [21]}}, ["study.depths", "21", "6n+2"]),
        ({"train": {"lrr": 0.1}}, ["train.lrr", "allowed keys"]),
        ({"train": {"lr_milestones": [5]}}, ["train.lr_milestones", "5"]),
        ({"study": {"archs": ["vgg"]}}, ["study.archs", "plain", "resnet"]),
        # a batch larger than the training set (64 images in the tiny study)
        ({"train": {"batch_size": 128}}, ["train.batch_size = 128", "64 training images"]),
    ],
)
def test_bad_config_fails_before_any_job(tmp_path, bad, words):
    cwd = make_project(tmp_path / "p")
    (cwd / "bad.yaml").write_text(yaml.safe_dump(bad))
    r = smk(cwd, "--configfile", "tiny.yaml", "bad.yaml", config=None, check=False)
    assert r.returncode != 0
    msg = r.stdout + r.stderr
    assert "bad config:" in msg
    for w in words:
        assert w in msg
    assert not (cwd / "results" / "runs").exists()


def test_values_given_with_dash_dash_config_are_refused(tmp_path):
    cwd = make_project(tmp_path / "p")
    r = smk(cwd, "-n", "--config", "data={'root': 'elsewhere'}", check=False)
    assert r.returncode != 0
    assert "--configfile" in r.stdout + r.stderr


def test_slurm_profile_asks_one_gpu_per_training_job(tmp_path):
    cwd = make_project(tmp_path / "p")
    r = subprocess.run(
        ["snakemake", "-n", "--profile", "workflow/profiles/slurm"],
        cwd=cwd,
        capture_output=True,
        text=True,
        env=env(cwd),
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    blocks = re.split(r"\n(?=rule \w+:)", r.stdout)
    train = [b for b in blocks if b.startswith("rule train:")]
    assert len(train) == 10  # the full study: plain and resnet at five depths
    for b in train:
        resources = re.search(r"resources: (.*)", b).group(1)
        assert re.search(r"\bgpu=1\b", resources), resources
    others = [b for b in blocks if re.match(r"rule (tables|figure6|layer_std):", b)]
    assert others and all("gpu=" not in b for b in others)


def sigint_at_default() -> None:
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def sigint_ignored() -> None:
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def test_ctrl_c_stops_resnet_repro_even_while_importing_and_when_started_ignoring_it(tmp_path):
    """A job started with SIGINT ignored (a parent's `&`, nohup) still stops on Ctrl-C, and a
    SIGINT while it is still importing its libraries ends in one line, not a traceback."""
    cwd = make_project(tmp_path / "p")
    importing = tmp_path / "importing"
    # An import that takes long enough to be interrupted (the training commands' module).
    slow = cwd / "resnet_repro" / "cli" / "train.py"
    head = "from __future__ import annotations\n"
    slow.write_text(
        slow.read_text().replace(
            head,
            head + f"import pathlib, time\npathlib.Path({str(importing)!r}).touch()\n"
            "time.sleep(60)\n",
            1,
        )
    )
    proc = subprocess.Popen(
        [shutil.which("resnet-repro"), "check-config", "--config", "tiny.yaml"],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env(cwd),
        preexec_fn=sigint_ignored,
    )
    try:
        deadline = time.monotonic() + 60
        while not importing.exists():
            assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
            time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 130, err
    assert err.strip() == "resnet-repro: interrupted", err


def test_interrupted_study_resumes_and_retrains_nothing_finished(tmp_path):
    # One job at a time; the second training job is long enough to be caught mid-run.
    long = {
        **TINY,
        "data": {**TINY["data"], "train_subset": 640},
        "train": {**TINY["train"], "iterations": 200, "lr_milestones": [100]},
    }
    cwd = make_project(tmp_path / "p", long)
    cmd = [
        "snakemake",
        "--cores",
        "1",
        "--scheduler",
        "greedy",
        "results/runs/plain8/seed0/metrics.parquet",
        "results/runs/resnet8/seed0/metrics.parquet",
        "--configfile",
        "tiny.yaml",
    ]
    proc = subprocess.Popen(
        cmd,
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
        env=env(cwd),
        # Snakemake as a terminal starts it, whatever started this test (a shell's `&` or
        # nohup pass SIGINT on ignored, and Python then installs no KeyboardInterrupt).
        preexec_fn=sigint_at_default,
    )
    try:
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline:
            done = list(cwd.glob("results/runs/*/seed0/metrics.parquet"))
            ckpt = [
                c
                for c in cwd.glob("results/runs/*/seed0/checkpoint/state.pt")
                if not (c.parent.parent / "metrics.parquet").exists()
            ]
            if done and ckpt:
                break
            assert proc.poll() is None, "the study ended before it could be interrupted"
            time.sleep(0.05)
        else:
            pytest.fail("no second training job started")
        # Ctrl-C in a terminal: SIGINT to Snakemake and its jobs.
        os.killpg(proc.pid, signal.SIGINT)
        proc.wait(timeout=120)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    finished = done[0].parent
    interrupted = ckpt[0].parent.parent
    assert finished != interrupted
    kept = mtimes(cwd, f"{finished.relative_to(cwd)}/*")
    assert not (interrupted / "metrics.parquet").exists()

    r = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True, env=env(cwd))
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    log = (cwd / f"logs/train/{interrupted.parent.name}_seed0.log").read_text()
    assert "resuming" in log
    assert mtimes(cwd, f"{finished.relative_to(cwd)}/*") == kept
    assert read_metrics(interrupted / "metrics.parquet").iteration.max() == 200


def test_a_run_that_finished_after_snakemake_was_killed_is_not_trained_again(tmp_path):
    """Only Snakemake is killed (kill -9): its training job trains to the end on its own, but
    Snakemake never hears of it and calls the outputs incomplete. `--rerun-incomplete` then
    deletes them and starts the job again, which puts the finished run back as it was
    (checkpoint/finished/, same identity) instead of training it from iteration 0."""
    long = {
        **TINY,
        "data": {**TINY["data"], "train_subset": 640},
        "train": {**TINY["train"], "iterations": 100, "lr_milestones": [50]},
    }
    cwd = make_project(tmp_path / "p", long)
    target = "results/runs/resnet8/seed0/metrics.parquet"
    run = cwd / "results/runs/resnet8/seed0"
    log = cwd / "logs/train/resnet8_seed0.log"
    proc = subprocess.Popen(
        ["snakemake", "--cores", "1", target, "--configfile", "tiny.yaml"],
        cwd=cwd,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        env=env(cwd),
        preexec_fn=sigint_at_default,
    )
    try:
        deadline = time.monotonic() + 300
        while not (run / "checkpoint" / "state.pt").exists():  # training, past epoch 1
            assert proc.poll() is None, "the run ended before Snakemake could be killed"
            assert time.monotonic() < deadline, "the training job did not start"
            time.sleep(0.05)
        proc.kill()  # Snakemake alone; its job goes on
        proc.wait()
        while f"-> {run.relative_to(cwd)}" not in log.read_text():  # the job's last line
            assert time.monotonic() < deadline, log.read_text()[-2000:]
            time.sleep(0.2)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    trained = read_metrics(run / "metrics.parquet")
    assert trained.iteration.max() == 100
    weights = (run / "model.pt").read_bytes()

    smk(cwd, "--unlock", target)
    r = smk(cwd, "--rerun-incomplete", target)
    assert "incomplete" in (r.stdout + r.stderr).lower()  # Snakemake did rerun the job...
    again = log.read_text()
    assert "without training" in again and "| epoch" not in again  # ...which trained nothing
    pd.testing.assert_frame_equal(read_metrics(run / "metrics.parquet"), trained)
    assert (run / "model.pt").read_bytes() == weights
    assert planned(cwd, target) == Counter()


def test_smoke_study_runs_on_real_cifar_batches(tmp_path, make_cifar_root):
    cwd = make_project(tmp_path / "p")
    root = make_cifar_root(tmp_path / "data", n_train=520, n_test=260)
    (cwd / "real.yaml").write_text(
        yaml.safe_dump({"data": {"source": "cifar10", "root": str(root)}})
    )
    smk(
        cwd,
        "results/runs/resnet8/seed0/metrics.parquet",
        "--configfile",
        "workflow/configs/smoke.yaml",
        "real.yaml",
        config=None,
    )
    info = (cwd / "results/runs/resnet8/seed0/run.json").read_text()
    assert '"source": "cifar10"' in info and '"n_train": 512' in info
    df = read_metrics(cwd / "results/runs/resnet8/seed0/metrics.parquet")
    assert df.iteration.max() == 80 and (df.status == "ok").all()


# ------------------------------------------------------------------ results never go stale


def trains(jobs: Counter) -> set[str]:
    return {k for k in jobs if k.startswith("train:")}


def test_a_project_copied_to_another_folder_has_nothing_to_do(complete_project):
    assert planned(complete_project) == Counter()


def test_a_data_change_retrains_in_the_same_run_and_nothing_after(complete_project):
    cwd = complete_project
    before = read_metrics(cwd / "results/runs/resnet8/seed0/metrics.parquet")
    # Other data (a larger training subset) and a new seed, in the same folder: one run
    # retrains the runs whose numbers change, trains the missing ones, redraws the rest.
    other = {
        **TINY,
        "data": {**TINY["data"], "train_subset": 96},
        "study": {**TINY["study"], "seeds": [0, 1]},
    }
    (cwd / "other.yaml").write_text(yaml.safe_dump(other))
    r = smk(cwd, config="other.yaml")
    done = r.stdout + r.stderr
    for model in ("plain8", "resnet8"):
        for seed in (0, 1):
            info = (cwd / f"results/runs/{model}/seed{seed}/run.json").read_text()
            assert '"n_train": 96' in info, (model, seed, done[-2000:])
    after = read_metrics(cwd / "results/runs/resnet8/seed0/metrics.parquet")
    assert not after.train_loss.equals(before.train_loss)
    assert "resnet8" in (cwd / "results/tables/table6.md").read_text()
    assert planned(cwd, config="other.yaml") == Counter()


def test_losing_the_data_record_retrains_nothing_finished(complete_project):
    cwd = complete_project
    (cwd / "results/data/prepared.json").unlink()
    (cwd / "results/runs/plain8/seed0/metrics.parquet").unlink()
    jobs = planned(cwd)
    assert trains(jobs) == {"train:model=plain8,seed=0"}
    assert jobs["prepare_data"] == 1


def test_same_data_elsewhere_retrains_nothing_other_content_retrains(tmp_path, make_cifar_root):
    cwd = make_project(tmp_path / "p")
    here = make_cifar_root(tmp_path / "here", n_train=80, n_test=40)
    study = {
        **TINY,
        "data": {
            "source": "cifar10",
            "root": str(here),
            "download": False,
            "train_subset": 64,
            "test_subset": 32,
        },
    }
    (cwd / "real.yaml").write_text(yaml.safe_dump(study))
    # The two runs and the table that reads them (the rest of the study reads the same files).
    targets = [f"results/runs/{m}/seed0/metrics.parquet" for m in ("plain8", "resnet8")]
    targets.append("results/tables/table6.md")
    smk(cwd, *targets, config="real.yaml")
    kept = mtimes(cwd, "results/runs/*/seed0/*")
    # The same images in another folder, and another evaluation batch: nothing to do.
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(here, elsewhere)
    moved = {
        **study,
        "data": {**study["data"], "root": str(elsewhere)},
        "train": {**study["train"], "eval_batch_size": 7},
    }
    (cwd / "moved.yaml").write_text(yaml.safe_dump(moved))
    assert planned(cwd, *targets, config="moved.yaml") == Counter()
    # Other images in that folder: the runs retrain, and the table that reads them is redone.
    make_cifar_root(elsewhere, n_train=80, n_test=40, seed=1)
    jobs = planned(cwd, *targets, config="moved.yaml")
    assert trains(jobs) == {"train:model=plain8,seed=0", "train:model=resnet8,seed=0"}
    assert "tables" in jobs
    assert mtimes(cwd, "results/runs/*/seed0/*") == kept


def test_a_yaml_syntax_error_names_the_file_line_and_column(tmp_path):
    cwd = make_project(tmp_path / "p")
    (cwd / "config.yaml").write_text("train:\n  lr: 0.1\n   momentum: 0.9\n")
    r = smk(cwd, "-n", config=None, check=False)
    assert r.returncode != 0
    msg = r.stdout + r.stderr
    assert "config.yaml, line 3, column 12" in msg, msg[-2000:]


@pytest.mark.parametrize("value", ['train={"lr": 0.2}', "train=0.2", "data=null"])
def test_values_given_with_dash_dash_config_are_refused_whatever_their_form(tmp_path, value):
    cwd = make_project(tmp_path / "p")
    r = smk(cwd, "-n", "--config", value, check=False)
    assert r.returncode != 0
    msg = r.stdout + r.stderr
    assert "values given with --config do not reach the jobs" in msg, msg[-2000:]


# The ImageNet-style family's CPU smoke study on top of the shipped recipe and smoke configs,
# cut further so that the test stays short: 64 training images, 2 epochs.
IMAGENET_TINY = {
    "data": {"train_subset": 64, "test_subset": 32, "val_size": 32},
    "train": {"batch_size": 32, "epochs": 2, "eval_batch_size": 64},
    "analysis": {"layer_std_images": 32},
}
IMAGENET_CONFIGS = (
    "workflow/configs/imagenet-style.yaml",
    "workflow/configs/smoke-imagenet-style.yaml",
    "imagenet-tiny.yaml",
)


def test_imagenet_style_study_runs_beside_the_papers_study(tmp_path):
    """One workflow, two studies: the paper's resnet8 first, then the ImageNet-style smoke
    study in the same folder, end to end (train, tables, Figure-6/7-style figures, layer std),
    with its tables and figures in their own folders and the paper's run shown beside it."""
    cwd = make_project(tmp_path / "p")
    (cwd / "imagenet-tiny.yaml").write_text(yaml.safe_dump(IMAGENET_TINY))
    smk(cwd, "results/runs/resnet8/seed0/metrics.parquet")
    paper_run = mtimes(cwd, "results/runs/resnet8/seed0/*")

    jobs = planned(cwd, "--configfile", *IMAGENET_CONFIGS, config=None)
    assert jobs["train:model=imagenet-resnet18,seed=0"] == 1
    assert jobs["train:model=imagenet-resnet50,seed=0"] == 1
    assert not [j for j in jobs if j.startswith("train:model=resnet")]  # never retrained here
    smk(cwd, "--configfile", *IMAGENET_CONFIGS, config=None)

    for model in ("imagenet-resnet18", "imagenet-resnet50"):
        df = read_metrics(cwd / f"results/runs/{model}/seed0/metrics.parquet")
        assert df.epoch.max() == 2 and (df.status == "ok").all()
        assert df.val_error_pct.notna().all()  # the smoke study has a validation split
        assert (df.lr.iloc[0], df.lr.iloc[1]) == (0.1, pytest.approx(0.05))  # cosine by epoch
        std = pd.read_parquet(cwd / f"results/analysis/layer_std/{model}_seed0.parquet")
        assert len(std) == {"imagenet-resnet18": 17, "imagenet-resnet50": 49}[model]
    tables = cwd / "results/tables/imagenet-style"
    im = pd.read_csv(tables / "imagenet_style.csv").set_index("model")
    assert list(im.index) == ["imagenet-resnet18", "imagenet-resnet50"]
    assert im["final_test_error_pct"].notna().all()
    assert im["test_error_at_best_val_pct"].notna().all()
    assert im.loc["imagenet-resnet18", "writeup_test_error_pct"] == pytest.approx(4.49)
    assert "selected on the test set" in (tables / "imagenet_style.md").read_text()
    fam = pd.read_csv(tables / "families.csv").set_index("model")
    assert list(fam.index) == ["resnet8", "imagenet-resnet18", "imagenet-resnet50"]
    assert (fam["status"] == "ok").all() and (fam["images_per_second"] > 0).all()
    assert fam["params_millions"].notna().all()
    for fig in ("figure6", "figure7"):
        assert (cwd / f"figures/imagenet-style/{fig}.png").stat().st_size > 1000
    assert not (cwd / "results/tables/table6.csv").exists()  # the paper's tables untouched
    assert mtimes(cwd, "results/runs/resnet8/seed0/*") == paper_run
    assert not planned(cwd, "--configfile", *IMAGENET_CONFIGS, config=None)


# A probe of our own, added the way the README's layout section says: one module in probes/
# and one entry in the registry, nothing else.
TOY_PROBE = '''"""A toy probe: the mean logit on the first analysis.probe_images test images."""

import pandas as pd
import pyarrow as pa
import torch

SCHEMA = pa.schema(
    [
        ("model", pa.string()),
        ("arch", pa.string()),
        ("depth", pa.int32()),
        ("seed", pa.int32()),
        ("mean_logit", pa.float64()),
        ("images", pa.int32()),
    ]
)


def measure(ctx):
    x, _ = ctx.images("test", ctx.analysis.probe_images)
    ctx.model.eval()
    with torch.no_grad():
        mean = float(ctx.model(x).mean())
    return pd.DataFrame({"mean_logit": [mean], "images": [len(x)]}), f"mean logit of {len(x)}"
'''
TOY_ENTRY = """    Probe(
        name="toy",
        help="the mean logit on a few test images",
        measure="probes.toy:measure",
        schema=toy.SCHEMA,
        code=("probes/toy.py",),
        settings=("analysis.probe_images",),
        rebuild="delete it and rerun snakemake",
    ),
"""


def test_a_probe_is_one_module_and_one_registry_entry(complete_project):
    cwd = complete_project
    (cwd / "resnet_repro" / "probes" / "toy.py").write_text(TOY_PROBE)
    registry = cwd / "resnet_repro" / "probes" / "registry.py"
    text = registry.read_text()
    text = text.replace("\nif TYPE_CHECKING:", "from . import toy\n\nif TYPE_CHECKING:", 1)
    text = text.replace(
        "PROBES: tuple[Probe, ...] = (\n", "PROBES: tuple[Probe, ...] = (\n" + TOY_ENTRY, 1
    )
    registry.write_text(text)
    # the new probe on every trained net of the study, and nothing else (the registry itself
    # is no probe's code: the other probes stay as they are)
    assert planned(cwd) == Counter(
        {"probe:kind=toy,model=plain8,seed=0": 1, "probe:kind=toy,model=resnet8,seed=0": 1}
    )
    smk(cwd)
    files = [cwd / f"results/analysis/toy/{m}_seed0.parquet" for m in ("plain8", "resnet8")]
    rows = pd.concat([pd.read_parquet(f) for f in files], ignore_index=True)
    assert list(rows["model"]) == ["plain8", "resnet8"] and (rows["images"] == 32).all()
    assert rows["mean_logit"].notna().all()
    # its config value reruns it alone
    (cwd / "images.yaml").write_text("analysis: {probe_images: 16}\n")
    jobs = planned(cwd, "--configfile", "tiny.yaml", "images.yaml", config=None)
    assert jobs["probe:kind=toy,model=plain8,seed=0"] == 1
    assert not any(k.startswith(("train", "layer_std", "landscape", "tables")) for k in jobs)
    help_text = subprocess.run(
        ["resnet-repro", "probe", "--help"], cwd=cwd, capture_output=True, text=True, env=env(cwd)
    ).stdout
    assert "toy: the mean logit on a few test images" in help_text
