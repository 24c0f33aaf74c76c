"""The workflow's `published:` section, run for real on tiny fake checkpoints of both foreign
formats: import, evaluate, layer responses, the table and Figure 7 of the imported nets."""

import json
from collections import Counter

import pandas as pd
import pytest
from foreign_layouts import AkaNet, WyNet, randomize, save_akamaster, save_wooyeolbaek
from test_workflow import TINY, make_project, planned, smk

PUBLISHED = [
    {"name": "aka-resnet8", "format": "akamaster", "file": "ckpt/aka/resnet8-0000.th"},
    {"name": "wy-plain8", "format": "wooyeolbaek", "file": "ckpt/wy/plainnet8_A_0/last.pth"},
    {
        "name": "wy-resnet8",
        "format": "wooyeolbaek",
        "file": "ckpt/wy/run/last.pth",
        "model": "resnet8",
    },  # no config.json, no telling folder name: the model is given
]
TARGETS = (
    "results/tables/published.md",
    "figures/figure7_published.png",
    "figures/landscape_published.png",
)


def write_checkpoints(cwd):
    for entry in PUBLISHED:
        path = cwd / entry["file"]
        path.parent.mkdir(parents=True)
        if entry["format"] == "akamaster":
            save_akamaster(randomize(AkaNet(8), 1), path)
        else:
            save_wooyeolbaek(randomize(WyNet(8, residual="resnet" in entry["name"]), 2), path)


@pytest.fixture(scope="module")
def project(tmp_path_factory):
    cwd = make_project(tmp_path_factory.mktemp("published"), {**TINY, "published": PUBLISHED})
    write_checkpoints(cwd)
    return cwd


def test_published_section_adds_its_jobs_to_the_study(project):
    jobs = planned(project)
    assert {k: v for k, v in jobs.items() if "published" in k} == {
        "import_published:name=aka-resnet8": 1,
        "import_published:name=wy-plain8": 1,
        "import_published:name=wy-resnet8": 1,
        "evaluate_published:name=aka-resnet8": 1,
        "evaluate_published:name=wy-plain8": 1,
        "evaluate_published:name=wy-resnet8": 1,
        "layer_std_published:name=aka-resnet8": 1,
        "layer_std_published:name=wy-plain8": 1,
        "layer_std_published:name=wy-resnet8": 1,
        "published_table": 1,
        "figure7_published": 1,
        # the one twin: wooyeolBaek's plain-8 and ResNet-8 (akamaster's has no plain net)
        "landscape_published:name=wy-plain8": 1,
        "landscape_published:name=wy-resnet8": 1,
        "figure_landscape_published": 1,
    }
    assert any(k.startswith("train:") for k in jobs)


def test_published_checkpoints_run_end_to_end_without_training(project):
    smk(project, *TARGETS)
    assert not (project / "results/runs").exists()  # nothing was trained for them
    table = pd.read_csv(project / "results/tables/published.csv").set_index("name")
    assert sorted(table.index) == ["aka-resnet8", "wy-plain8", "wy-resnet8"]
    assert table.loc["wy-plain8", "model"] == "plain8"
    assert (table.test_images == TINY["data"]["test_subset"]).all()
    for name in table.index:
        record = json.loads((project / f"results/published/{name}/eval.json").read_text())
        assert record["test_error_pct"] == pytest.approx(table.loc[name, "our_error_pct"])
        ls = pd.read_parquet(project / f"results/published/{name}/layer_std.parquet")
        assert len(ls) == 7 and (ls["std"] > 0).all()  # 6n+1 responses for depth 8
    aka = json.loads((project / "results/published/aka-resnet8/eval.json").read_text())
    assert "per-channel" in aka["normalization"]
    for ext in ("png", "pdf"):
        assert (project / f"figures/figure7_published.{ext}").stat().st_size > 1000
        assert (project / f"figures/landscape_published.{ext}").stat().st_size > 1000
    assert not (project / "results/published/aka-resnet8/landscape.parquet").exists()
    land = pd.concat(
        pd.read_parquet(project / f"results/published/{n}/landscape.parquet")
        for n in ("wy-plain8", "wy-resnet8")
    )
    assert set(land["source"]) == {"wy-plain8", "wy-resnet8"}
    assert set(land["init_source"].dropna()) == {"ours"}  # not the checkpoints' own init
    assert (land["images"] == 16).all() and (land["status"] == "ok").all()
    assert planned(project, *TARGETS) == Counter()


def test_a_missing_checkpoint_fails_before_any_job(tmp_path):
    missing = [{**PUBLISHED[0], "file": "nowhere/resnet20.th"}]
    cwd = make_project(tmp_path / "p", {**TINY, "published": missing})
    r = smk(cwd, "-n", check=False)
    assert r.returncode != 0
    msg = r.stdout + r.stderr
    assert "bad config: published[0].file: nowhere/resnet20.th does not exist" in msg


@pytest.mark.parametrize(
    "entries, words",
    [
        (
            [{"name": "resnet8", "format": "akamaster", "file": "x.th"}],
            ["published[0].name", "resnet8", "model of the study"],
        ),
        (
            [{"name": "a", "format": "caffe", "file": "x.th"}],
            ["published.0.format", "akamaster", "wooyeolbaek"],
        ),
    ],
)
def test_bad_published_entries_are_refused(tmp_path, entries, words):
    cwd = make_project(tmp_path / "p", {**TINY, "published": entries})
    (cwd / "x.th").write_bytes(b"")
    r = smk(cwd, "-n", check=False)
    assert r.returncode != 0
    for w in words:
        assert w in r.stdout + r.stderr
