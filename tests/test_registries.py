"""The two registries: every net family described once (nets/families.py) and every probe
described once (probes/registry.py), and what the rest of the package reads from them."""

import pytest
import torch
import yaml

from resnet_repro.basics import resolve
from resnet_repro.config import SCHEMA_PATH, ConfigError, load_schema, study_from_dict
from resnet_repro.nets import families as F
from resnet_repro.nets.anatomy import forward_with_modes, named_blocks, removable, run_block
from resnet_repro.probes import registry as R
from resnet_repro.probes.context import ProbeContext
from resnet_repro.progressbar import NULL


def test_the_schema_allows_exactly_the_registered_families():
    schema = load_schema()["properties"]
    archs = schema["study"]["properties"]["archs"]["items"]["enum"]
    assert tuple(archs) == F.ALL_ARCHS
    assert tuple(schema["study"]["properties"]["shortcut"]["enum"]) == F.SHORTCUTS
    assert SCHEMA_PATH.is_file()


@pytest.mark.parametrize(
    "model, arch, depth, label",
    [
        ("plain20", "plain", 20, "plain-20"),
        ("resnet1202", "resnet", 1202, "ResNet-1202"),
        ("imagenet-resnet50", "imagenet-resnet", 50, "ResNet-50 (ImageNet-style)"),
    ],
)
def test_a_model_name_finds_its_family(model, arch, depth, label):
    assert F.parse_model_name(model) == (arch, depth)
    assert F.family_of(model).arch == arch and F.model_label(model) == label
    assert F.model_name(arch, depth) == model
    net = F.build_model(model, width=4 if F.family_of(model).takes_width else None)
    assert net.arch == arch and net.depth == depth


def test_family_rules_replace_the_name_tests():
    imagenet = F.family("imagenet-resnet")
    assert imagenet.shortcut("A") == "B" and imagenet.takes_width and not imagenet.paper
    assert F.family("resnet").shortcut("C") == "C" and not F.family("plain").residual
    assert F.paper_arch(residual=True) == "resnet" and F.paper_arch(residual=False) == "plain"
    study = study_from_dict(
        {"study": {"archs": ["imagenet-resnet"], "depths": [18], "shortcut": "B", "width": 8}}
    )
    assert study.model_shortcut("imagenet-resnet18") == "B"
    assert study.model_width("imagenet-resnet18") == 8
    with pytest.raises(ConfigError, match=r"study.shortcut.*\['B'\]"):
        study_from_dict({"study": {"archs": ["imagenet-resnet"], "depths": [18]}})
    with pytest.raises(ConfigError, match=r"study.width.*\['imagenet-resnet'\]"):
        study_from_dict({"study": {"width": 8}})
    # the rough cost status uses: the 6n+2 nets linear in depth, a narrowed net quadratic
    assert F.model_mmacs("resnet110") == pytest.approx(41.0 * 108 / 18)
    assert F.model_mmacs("imagenet-resnet18", 32) == pytest.approx(555.0 / 4)


@pytest.mark.parametrize("depth, blocks", [(18, 8), (50, 16)])
def test_block_probes_run_on_the_imagenet_style_family(depth, blocks):
    """Its BasicBlocks and Bottlenecks are blocks like the paper's: listed in order, deletable
    (replaced by their shortcut) and run in every mode, so the block-level probes measure
    them."""
    torch.manual_seed(0)
    net = F.build_model(f"imagenet-resnet{depth}", width=4).eval()
    found = named_blocks(net)
    assert len(found) == blocks and all(removable(b) for _, b in found)
    x = torch.randn(3, 3, 32, 32)
    with torch.no_grad():
        full = forward_with_modes(net, x, ["full"] * blocks)
        torch.testing.assert_close(full, net(x))
        _, first = found[0]
        h = net.stem(x)
        torch.testing.assert_close(run_block(first, h, "branch"), first(h))
    images = torch.randn(8, 3, 32, 32), torch.randint(0, 10, (8,))
    study = study_from_dict(
        {
            "study": {"archs": ["imagenet-resnet"], "depths": [depth], "shortcut": "B"},
            "train": {"eval_batch_size": 4},
            "analysis": {"probe_images": 8, "lesion_draws": 1, "path_samples": 1},
        }
    )
    ctx = ProbeContext(
        study=study,
        model=net,
        identity={"model": f"imagenet-resnet{depth}", "seed": 0},
        device=torch.device("cpu"),
        bar=NULL,
        log=lambda line: None,
        images=lambda split, n: (images[0][:n], images[1][:n]),
    )
    for name in ("lesions", "branches", "layer_std"):
        probe = R.probe(name)
        assert probe.why_not(f"imagenet-resnet{depth}") is None
        rows, summary = probe.run(ctx)
        assert len(rows) and "8 test images" in summary
    lesions, _ = R.probe("lesions").run(ctx)
    assert len(lesions) == blocks and lesions["test_error_pct"].notna().all()


def test_a_residual_only_probe_says_in_one_line_why_not():
    assert R.probe("paths").why_not("plain20") == (
        "the paths probe needs a residual net; plain20 is plain (it has one path only)"
    )
    assert R.probe("lesions").why_not("plain20") is None
    assert R.probe("paths").why_not("imagenet-resnet18") is None


def test_the_workflow_reads_which_nets_and_settings_from_the_registry():
    study = study_from_dict(
        {
            "study": {"archs": ["plain", "resnet"], "depths": [8, 14]},
            "analysis": {"figure7_models": ["resnet8", "resnet110"], "probe_images": 7},
        }
    )
    assert R.probe("paths").models(study) == ["resnet8", "resnet14"]
    assert R.probe("lesions").models(study) == ["plain8", "plain14", "resnet8", "resnet14"]
    assert R.LAYER_STD.models(study) == ["resnet8"]  # Figure 7's models that are trained
    assert R.probe("lesions").settings_of(study) == {
        "analysis.probe_images": 7,
        "data.test_subset": None,
    }
    assert R.LANDSCAPE.settings_of(study)["analysis.landscape_range"] == [-1.0, 1.0]
    # the ImageNet-style study's nets get Figure 7's probe, not the degradation probes
    imagenet = study_from_dict(
        {
            "study": {"archs": ["imagenet-resnet"], "depths": [18], "shortcut": "B"},
            "analysis": {"figure7_models": ["imagenet-resnet18"]},
        }
    )
    assert R.LAYER_STD.models(imagenet) == ["imagenet-resnet18"]
    assert R.probe("lesions").models(imagenet) == [] and R.LANDSCAPE.models(imagenet) == []


def test_every_probe_names_real_files_and_config_keys():
    package = SCHEMA_PATH.parents[2] / "resnet_repro"
    report = SCHEMA_PATH.parents[1] / "report"
    for probe in R.PROBES:
        assert all((package / f).is_file() for f in probe.code), probe.name
        for ref in (probe.measure, probe.passes, probe.figure and probe.figure.draw):
            assert ref is None or callable(resolve(ref)), (probe.name, ref)
        if probe.figure is not None:
            assert all((package / f).is_file() for f in probe.figure.code + R.FIGURE_CODE)
            assert (report / f"{probe.name}.rst").is_file(), probe.name
        assert probe.schema.names[:4] == ["model", "arch", "depth", "seed"]
    with pytest.raises(ConfigError, match="allowed values"):
        R.probe("lesion")


def test_the_schema_yaml_is_the_one_place_of_the_defaults():
    """The typed config has no defaults of its own: an empty config is the schema's."""
    schema = yaml.safe_load(SCHEMA_PATH.read_text())["properties"]
    study = study_from_dict({})
    assert (
        study.train.window_iterations
        == schema["train"]["properties"]["window_iterations"]["default"]
    )
    analysis = schema["analysis"]["properties"]
    assert study.analysis.path_split == analysis["path_split"]["default"]
    assert list(study.analysis.landscape_range) == analysis["landscape_range"]["default"]
    import dataclasses

    from resnet_repro import config as C

    for cls in (C.DataConfig, C.TrainConfig, C.AnalysisConfig, C.TrackingConfig, C.Study):
        assert all(f.default is dataclasses.MISSING for f in dataclasses.fields(cls)), cls


def test_reading_the_registry_imports_no_probe_torch_or_matplotlib():
    """Every resnet-repro command and every Snakemake start read it: its functions are
    imported when first called."""
    import subprocess
    import sys

    code = (
        "import sys; import resnet_repro.probes.registry; "
        "print(sorted(m for m in ('torch', 'matplotlib', 'resnet_repro.probes.lesions') "
        "if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.stdout.strip() == "[]", out.stdout + out.stderr
