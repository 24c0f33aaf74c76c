"""Importing published checkpoints: the imported net computes the same function as the
foreign one, carries the input normalisation it was trained with, and bad files get one line."""

import json
import pickle
import random
import subprocess
import sys

import pandas as pd
import pytest
import torch
import yaml
from foreign_layouts import AkaNet, WyNet, randomize, save_akamaster, save_wooyeolbaek

from resnet_repro.engine.evaluation import evaluate
from resnet_repro.nets import normalization
from resnet_repro.nets.modelfile import load_model_file
from resnet_repro.published.checkpoints import FORMAT_HELP, import_checkpoint, stage_permutations
from resnet_repro.published.table import published_table
from resnet_repro.results import ResultError
from resnet_repro.tables import paper


def cli(*args):
    return subprocess.run(
        [sys.executable, "-m", "resnet_repro", *map(str, args)], capture_output=True, text=True
    )


def one_line_error(r):
    assert r.returncode == 2, r.stderr
    lines = r.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("resnet-repro: error:"), r.stderr
    return lines[0]


def a_mean():
    """What import_checkpoint asks for a wooyeolbaek net: a training mean and what it is."""
    return torch.linspace(0.2, 0.6, 3 * 32 * 32).reshape(3, 32, 32), "a test mean"


def assert_same_function(foreign, ours):
    x = torch.randn(6, 3, 32, 32, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        want, got = foreign(x), ours.eval()(x)
    assert want.std() > 0.1  # logits that differ between images and classes
    torch.testing.assert_close(got, want, rtol=1e-4, atol=1e-4)


@pytest.mark.parametrize("depth", [8, 14])
def test_akamaster_import_computes_the_same_logits(tmp_path, depth):
    foreign = randomize(AkaNet(depth), seed=depth)
    save_akamaster(foreign, tmp_path / "net.th")
    ours, identity, norm = import_checkpoint(tmp_path / "net.th", "akamaster", "aka")
    assert identity["model"] == f"resnet{depth}" and identity["source"]["format"] == "akamaster"
    assert_same_function(foreign, ours)
    assert norm["kind"] == "per_channel"
    assert norm["mean"] == list(normalization.IMAGENET_MEAN)
    assert norm["std"] == list(normalization.IMAGENET_STD)


@pytest.mark.parametrize("arch", ["resnet", "plain"])
@pytest.mark.parametrize("depth", [8, 14])
def test_wooyeolbaek_import_computes_the_same_logits(tmp_path, arch, depth):
    foreign = randomize(WyNet(depth, residual=arch == "resnet"), seed=depth + 1)
    their_name = f"{'plainnet' if arch == 'plain' else 'resnet'}{depth}"  # as in config.json
    run = tmp_path / "run"
    run.mkdir()
    save_wooyeolbaek(foreign, run / "last.pth")
    (run / "config.json").write_text(json.dumps({"model_name": their_name}))
    ours, identity, norm = import_checkpoint(run / "last.pth", "wooyeolbaek", "wy", None, a_mean)
    assert identity["model"] == f"{arch}{depth}"
    assert_same_function(foreign, ours)
    assert norm["kind"] == "per_pixel_mean" and torch.equal(norm["mean"], a_mean()[0])
    assert "a test mean" in norm["note"]
    with pytest.raises(ResultError, match="no data was given"):
        import_checkpoint(run / "last.pth", "wooyeolbaek", "wy")


def test_wrong_channel_order_would_be_caught(tmp_path):
    """The exactness test can fail: without the stage permutation the logits differ."""
    foreign = randomize(AkaNet(8), seed=3)
    save_akamaster(foreign, tmp_path / "net.th")
    ours, _, _ = import_checkpoint(tmp_path / "net.th", "akamaster", "aka")
    state = ours.state_dict()
    perm = stage_permutations([16, 32, 64], residual=True)[1]
    assert not torch.equal(perm, torch.arange(32))
    state["stage2.0.bn2.bias"] = state["stage2.0.bn2.bias"][perm.argsort()]
    ours.load_state_dict(state)
    with pytest.raises(AssertionError):
        assert_same_function(foreign, ours)


def test_option_a_permutation_puts_the_identity_first():
    p2, p3 = stage_permutations([16, 32, 64], residual=True)[1:]
    assert p2[:16].tolist() == list(range(8, 24))  # foreign identity channels 8..23
    assert sorted(p2.tolist()) == list(range(32))
    assert p3[:32].tolist() == [16 + int(c) for c in p2]
    assert sorted(p3.tolist()) == list(range(64))


def test_wooyeolbaek_model_from_the_run_folder_or_asked_for(tmp_path):
    run = tmp_path / "plainnet8_A_230623_001026"
    run.mkdir()
    save_wooyeolbaek(randomize(WyNet(8, residual=False), 0), run / "last.pth")
    imported = import_checkpoint(run / "last.pth", "wooyeolbaek", "wy", train_mean=a_mean)
    assert imported[1]["model"] == "plain8"
    save_wooyeolbaek(randomize(WyNet(8, residual=False), 0), tmp_path / "last.pth")
    with pytest.raises(ResultError, match="give its model"):
        import_checkpoint(tmp_path / "last.pth", "wooyeolbaek", "wy")
    _, identity, _ = import_checkpoint(tmp_path / "last.pth", "wooyeolbaek", "wy", "plain8", a_mean)
    assert identity["model"] == "plain8"
    with pytest.raises(ResultError, match="holds a plain8"):
        import_checkpoint(tmp_path / "last.pth", "wooyeolbaek", "wy", "plain14")


def test_import_cli_writes_a_model_file_that_every_reader_loads(tmp_path):
    foreign = randomize(AkaNet(8), seed=5)
    save_akamaster(foreign, tmp_path / "net.th")
    r = cli(
        "import",
        "--format",
        "akamaster",
        "--file",
        tmp_path / "net.th",
        "--name",
        "aka8",
        "--out",
        tmp_path / "aka8/model.pt",
    )
    assert r.returncode == 0, r.stderr
    model, identity, norm = load_model_file(tmp_path / "aka8/model.pt")
    assert identity["source"]["name"] == "aka8" and norm["kind"] == "per_channel"
    assert_same_function(foreign, model)


def test_a_foreign_or_malformed_file_gets_one_line_naming_it_and_the_formats(tmp_path):
    save_wooyeolbaek(randomize(WyNet(8, residual=True), 0), tmp_path / "last.pth")
    r = cli(
        "import",
        "--format",
        "akamaster",
        "--file",
        tmp_path / "last.pth",
        "--name",
        "x",
        "--out",
        tmp_path / "x.pt",
    )
    line = one_line_error(r)
    assert "last.pth is not a checkpoint in the akamaster format" in line
    assert "it has no 'state_dict' entry" in line and "wooyeolbaek" in line
    # Random bytes, and a pickle (protocol 4, which torch warns about) of something that is no
    # state dict: one whole line each, without torch's warning or its advice on versions.
    (tmp_path / "junk.th").write_bytes(b"not a checkpoint")
    (tmp_path / "random.th").write_bytes(
        bytes(random.Random(0).randrange(256) for _ in range(4096))
    )
    with open(tmp_path / "pickle.th", "wb") as f:
        pickle.dump([1, 2, {3}], f, protocol=4)
    cases = [
        ("junk.th", "akamaster"),
        ("random.th", "akamaster"),
        ("pickle.th", "akamaster"),
        ("pickle.th", "wooyeolbaek"),
    ]
    runs = [  # side by side: each command's start-up (torch's import) is most of its time
        subprocess.Popen(
            [sys.executable, "-m", "resnet_repro", "import", "--format", fmt, "--file"]
            + [str(tmp_path / name), "--name", "x", "--out", str(tmp_path / f"{fmt}-{name}.pt")],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name, fmt in cases
    ]
    for (name, fmt), proc in zip(cases, runs):
        out, err = proc.communicate(timeout=300)
        line = one_line_error(subprocess.CompletedProcess(proc.args, proc.returncode, out, err))
        assert line == (
            f"resnet-repro: error: {tmp_path / name} is not a checkpoint in the {fmt} format "
            f"(it is not a PyTorch state dict); formats we read: {FORMAT_HELP}"
        )
    assert not list(tmp_path.glob("*.pt"))
    # The foreign file given where our model.pt is expected: one line saying to import it.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump({"data": {"source": "synthetic", "train_subset": 8, "test_subset": 8}})
    )
    line = one_line_error(
        cli(
            "evaluate",
            "--config",
            cfg,
            "--model-file",
            tmp_path / "last.pth",
            "--out",
            tmp_path / "e.json",
        )
    )
    assert "last.pth" in line and "resnet-repro import" in line


def test_normalize_applies_each_kind():
    x = torch.full((2, 3, 32, 32), 51, dtype=torch.uint8)  # 0.2 on a 0..1 scale
    data_mean = torch.full((3, 32, 32), 0.05)
    pc = normalization.per_channel((0.1, 0.2, 0.3), (0.5, 0.5, 0.25), "test")
    out = normalization.normalize(x, pc, None)
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([0.2, 0.0, -0.4]))
    out = normalization.normalize(x, normalization.per_pixel_mean(None), data_mean)
    torch.testing.assert_close(out, torch.full_like(out, 0.15))
    # A stored mean wins over the data's.
    stored = normalization.per_pixel_mean(torch.full((3, 32, 32), 0.1))
    out = normalization.normalize(x, stored, data_mean)
    torch.testing.assert_close(out, torch.full_like(out, 0.1))
    with pytest.raises(ValueError):
        normalization.check({"kind": "per_channel", "mean": [0.1], "std": [1.0]})


def test_old_model_files_without_a_stored_mean_still_load_with_a_warning_naming_them(tmp_path):
    """Files written before the record (or before its mean) existed are fed the training
    mean of the data at hand, as then, and every reader says so, naming the file."""
    from resnet_repro.nets.families import build_model

    net = build_model("resnet8")
    old = {"model": net.state_dict(), "identity": {"model": "resnet8", "shortcut": "A", "seed": 0}}
    torch.save(old, tmp_path / "no-record.pt")
    torch.save(
        {**old, "normalization": {"kind": "per_pixel_mean", "mean": None, "note": "old"}},
        tmp_path / "no-mean.pt",
    )
    for name in ("no-record.pt", "no-mean.pt"):
        with pytest.warns(UserWarning, match=f"model file {tmp_path / name} stores no input mean"):
            _, _, norm = load_model_file(tmp_path / name)
        assert normalization.needs_data_mean(norm)
    said = []
    load_model_file(tmp_path / "no-mean.pt", warn=said.append)
    assert len(said) == 1 and "no-mean.pt" in said[0]
    # The command line prints it as one warning line and goes on.
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump({"data": {"source": "synthetic", "train_subset": 8, "test_subset": 8}})
    )
    r = cli(
        "evaluate",
        "--config",
        cfg,
        "--model-file",
        tmp_path / "no-record.pt",
        "--out",
        tmp_path / "e.json",
    )
    assert r.returncode == 0, r.stderr
    (line,) = [x for x in r.stderr.splitlines() if x.strip()]
    assert line.startswith("warning: model file") and "no-record.pt" in line


def test_evaluate_uses_the_stored_normalisation():
    """Same net, same images: the per-channel record changes the inputs, hence the loss."""
    from resnet_repro.nets.families import build_model

    net = randomize(build_model("resnet8"), 1)
    g = torch.Generator().manual_seed(0)
    x = torch.randint(0, 256, (20, 3, 32, 32), dtype=torch.uint8, generator=g)
    y = torch.randint(0, 10, (20,), generator=g)
    mean = x.float().div(255).mean(0)
    a = evaluate(net, x, y, normalization.per_pixel_mean(mean), None, 8)
    b = evaluate(net, x, y, normalization.per_channel((0.5,) * 3, (0.25,) * 3, "t"), mean, 8)
    with torch.no_grad():
        logits = net(normalization.normalize(x, normalization.per_pixel_mean(None), mean))
    assert a[1] == pytest.approx(100.0 * (logits.argmax(1) != y).float().mean().item())
    assert a[0] != pytest.approx(b[0])


def test_published_table_compares_with_the_reported_errors():
    evals = [
        {
            "name": "aka20",
            "format": "akamaster",
            "model": "resnet20",
            "test_error_pct": 9.0,
            "test_images": 100,
        },
        {
            "name": "wy-plain56",
            "format": "wooyeolbaek",
            "model": "plain56",
            "test_error_pct": 12.0,
            "test_images": 100,
        },
        {
            "name": "wy-resnet110",
            "format": "wooyeolbaek",
            "model": "resnet110",
            "test_error_pct": 7.0,
            "test_images": 100,
        },
    ]
    df = published_table(evals).set_index("name")
    assert (
        df.loc["aka20", "reported_error_pct"]
        == paper.reported_error("akamaster", "resnet20").test_error_pct
    )
    assert df.loc["aka20", "difference_pct"] == pytest.approx(
        9.0 - df.loc["aka20", "reported_error_pct"]
    )
    assert (
        df.loc["wy-plain56", "reported_error_pct"]
        == paper.reported_error("wooyeolbaek", "plain56").test_error_pct
    )
    assert df.loc["wy-plain56", "reported_source"].startswith("wooyeolBaek")
    # akamaster's numbers are its best epoch, chosen on the test set; wooyeolBaek's the last
    assert df.loc["aka20", "reported_selection"] == paper.SELECTED_ON_TEST
    assert "91.78" in df.loc["aka20", "reported_note"]  # what the file itself stores
    assert df.loc["wy-plain56", "reported_selection"] == "last epoch"
    assert pd.isna(df.loc["wy-resnet110", "reported_error_pct"])
    assert pd.isna(df.loc["wy-resnet110", "difference_pct"])


def test_our_runs_record_their_normalisation_and_evaluate_matches_training(tmp_path):
    """A run's model.pt says how it was fed; `evaluate` of it gives the final test error
    that training logged (same images, same normalisation, eval mode)."""
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "train_subset": 64, "test_subset": 40},
                "study": {"depths": [8]},
                "device": {"device": "cpu"},
                "train": {
                    "batch_size": 32,
                    "iterations": 4,
                    "lr_milestones": [2],
                    "eval_batch_size": 16,
                },
            }
        )
    )
    r = cli("train", "--config", cfg, "--model", "resnet8", "--seed", 0, "--out", tmp_path / "r")
    assert r.returncode == 0, r.stderr
    _, identity, norm = load_model_file(tmp_path / "r/model.pt")
    assert norm["kind"] == "per_pixel_mean" and identity["model"] == "resnet8"
    # The mean it trained with, stored in the file: that of its 64 training images.
    from resnet_repro import data
    from resnet_repro.config import load_study

    train_x = data.load_arrays(load_study(cfg).data).train_x
    want = data.per_pixel_mean(torch.from_numpy(train_x))
    assert norm["mean"].dtype == torch.float32 and torch.equal(norm["mean"], want)
    r = cli(
        "evaluate",
        "--config",
        cfg,
        "--model-file",
        tmp_path / "r/model.pt",
        "--out",
        tmp_path / "e.json",
    )
    assert r.returncode == 0, r.stderr
    record = json.loads((tmp_path / "e.json").read_text())
    logged = pd.read_parquet(tmp_path / "r/metrics.parquet").iloc[-1]
    assert record["test_images"] == 40 and record["format"] is None
    assert record["test_error_pct"] == pytest.approx(logged["test_error_pct"])
    assert record["test_loss"] == pytest.approx(logged["test_loss"], rel=1e-5)
    # Another study (another training subset, the same test images) reads the same file the
    # same way: the stored mean, not that study's.
    other = tmp_path / "other.yaml"
    other.write_text(cfg.read_text().replace("train_subset: 64", "train_subset: 32"))
    assert "train_subset: 32" in other.read_text()
    r = cli(
        "evaluate",
        "--config",
        other,
        "--model-file",
        tmp_path / "r/model.pt",
        "--out",
        tmp_path / "e2.json",
    )
    assert r.returncode == 0, r.stderr
    again = json.loads((tmp_path / "e2.json").read_text())
    assert (again["test_loss"], again["test_error_pct"]) == (
        record["test_loss"],
        record["test_error_pct"],
    )


def test_training_writes_model_pt_through_the_one_writer_that_checks_it(tmp_path, monkeypatch):
    """`train` writes model.pt through `modelfile.payload`, as `import` does: a normalisation
    record that payload's check refuses stops the run before a model file exists, instead of
    a file that every reader would then feed wrongly."""
    from resnet_repro.cli.main import main
    from resnet_repro.engine import train as engine_train

    wrong = {"kind": "per_pixel_mean", "mean": torch.zeros(3, 8, 8), "note": "a wrong shape"}
    monkeypatch.setattr(engine_train, "input_normalization", lambda dd: wrong)
    cfg = tmp_path / "c.yaml"
    cfg.write_text(
        yaml.safe_dump(
            {
                "data": {"source": "synthetic", "train_subset": 32, "test_subset": 16},
                "study": {"depths": [8]},
                "device": {"device": "cpu"},
                "train": {"batch_size": 16, "iterations": 2, "lr_milestones": [1]},
            }
        )
    )
    out = tmp_path / "r"
    argv = ["train", "--config", str(cfg), "--model", "resnet8", "--seed", "0", "--out", str(out)]
    with pytest.raises(ValueError, match=r"\[3, 32, 32\] mean"):
        main(argv)
    assert (out / "metrics.parquet").is_file() and not (out / "model.pt").exists()


def test_a_wooyeolbaek_import_stores_the_mean_of_every_training_image(tmp_path, cifar_root):
    """Its authors fed it the per-pixel mean of their training images: the import stores that
    of all the data's training images (500 here), whatever subset the study uses, and any
    study evaluates the file the same way."""
    from resnet_repro import data

    run = tmp_path / "resnet8_A_0"
    run.mkdir()
    save_wooyeolbaek(randomize(WyNet(8, residual=True), 4), run / "last.pth")
    configs = {}
    for subset in (64, 128):
        configs[subset] = tmp_path / f"c{subset}.yaml"
        configs[subset].write_text(
            yaml.safe_dump(
                {
                    "data": {
                        "source": "cifar10",
                        "root": str(cifar_root),
                        "download": False,
                        "train_subset": subset,
                    }
                }
            )
        )
    r = cli(
        "import",
        "--config",
        configs[64],
        "--format",
        "wooyeolbaek",
        "--file",
        run / "last.pth",
        "--name",
        "wy",
        "--out",
        tmp_path / "wy/model.pt",
    )
    assert r.returncode == 0, r.stderr
    assert "all 500 training images" in r.stdout
    _, _, norm = load_model_file(tmp_path / "wy/model.pt")
    every = data.read_cifar10(cifar_root).train_x
    assert len(every) == 500
    assert torch.equal(norm["mean"], data.per_pixel_mean(torch.from_numpy(every)))
    results = []
    for subset, cfg in configs.items():
        out = tmp_path / f"e{subset}.json"
        r = cli("evaluate", "--config", cfg, "--model-file", tmp_path / "wy/model.pt", "--out", out)
        assert r.returncode == 0, r.stderr
        e = json.loads(out.read_text())
        results.append((e["test_loss"], e["test_error_pct"]))
    assert results[0] == results[1]
