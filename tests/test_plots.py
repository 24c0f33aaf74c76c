"""paper_figures.py: Figures 6 and 7 on synthetic results, and save_figure."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
from test_analysis import ITERS_PER_EPOCH, make_metrics, make_run  # noqa: E402

from resnet_repro.config import parse_model_name  # noqa: E402
from resnet_repro.figures import paper_figures, style  # noqa: E402
from resnet_repro.nets.families import model_label  # noqa: E402
from resnet_repro.results import LAYER_STD_SCHEMA  # noqa: E402

PLAIN = ["plain20", "plain56", "plain110"]
RES = ["resnet20", "resnet56", "resnet110"]


@pytest.fixture
def figs():
    """Collects figures and closes them after the test."""
    made = []
    yield made
    for f in made:
        plt.close(f)


def curve(final: float, n: int = 6, start: float = 60.0) -> list[float]:
    return list(np.linspace(start, final, n))


def study_metrics(with_1202: bool = False, plain110_final: float = 70.0) -> pd.DataFrame:
    runs = []
    for model in PLAIN + RES:
        final = plain110_final if model == "plain110" else 9.0
        runs.append(make_run(model, 0, curve(final), train_errors=curve(final / 2)))
    if with_1202:
        runs.append(make_run("resnet1202", 0, curve(8.0), train_errors=curve(1.0)))
    return make_metrics(*runs)


def texts(ax) -> str:
    return "\n".join(t.get_text() for t in ax.texts)


def legend_labels(ax) -> list[str]:
    return [t.get_text() for t in ax.get_legend().get_texts()]


# --------------------------------------------------------------------------------------------
# palette


def test_depth_colors_depend_on_the_depth_alone():
    all_colors = style.depth_colors([20, 32, 44, 56, 110, 1202, 14])
    subset = style.depth_colors([56, 110])
    assert subset == {56: all_colors[56], 110: all_colors[110]}
    assert style.depth_colors([14]) == {14: all_colors[14]}
    assert len(set(all_colors.values())) == 7  # distinct colours


def test_model_label():
    assert model_label("plain20") == "plain-20"
    assert model_label("resnet1202") == "ResNet-1202"
    assert model_label("imagenet-resnet18") == "ResNet-18 (ImageNet-style)"


# --------------------------------------------------------------------------------------------
# Figure 6


def test_figure6_without_resnet1202_has_two_panels_with_dashed_train_and_bold_test(figs):
    fig = paper_figures.figure6(study_metrics())
    figs.append(fig)
    axes = fig.get_axes()
    assert len(axes) == 2
    for ax, models in zip(axes, (PLAIN, RES)):
        lines = ax.get_lines()
        assert len(lines) == 2 * len(models)
        train, test = lines[0::2], lines[1::2]
        assert all(line.get_linestyle() == "--" for line in train)
        assert all(line.get_linestyle() == "-" for line in test)
        assert all(t.get_linewidth() > d.get_linewidth() for t, d in zip(test, train))
        assert ax.get_ylim() == pytest.approx((0.0, 20.0))
        assert ax.get_xlabel() == "iterations"  # 600 iterations: plain counts
        assert ax.get_ylabel() == "error (%)"
        assert [model_label(m) for m in models] == legend_labels(ax)[: len(models)]
        assert ax.get_title()
    assert "Figure 6" in fig.get_suptitle()


def test_figure6_draws_the_resnet110_vs_1202_panel_when_1202_exists(figs):
    fig = paper_figures.figure6(study_metrics(with_1202=True))
    figs.append(fig)
    axes = fig.get_axes()
    assert len(axes) == 3
    assert "1202" in axes[2].get_title()
    assert legend_labels(axes[2])[:2] == ["ResNet-110", "ResNet-1202"]
    assert len(axes[2].get_lines()) == 4
    assert len(axes[1].get_lines()) == 2 * len(RES)  # 1202 is not in the middle panel


def test_figure6_x_is_iterations_in_a_unit_that_reads_for_any_study_length(figs):
    fig = paper_figures.figure6(study_metrics())
    figs.append(fig)
    x = fig.get_axes()[0].get_lines()[1].get_xdata()
    assert list(x) == pytest.approx([e * ITERS_PER_EPOCH for e in range(1, 7)])
    assert paper_figures.iteration_unit(64_000) == (1e4, "iterations (1e4)")  # the paper's
    assert paper_figures.iteration_unit(5_000) == (1e3, "iterations (1e3)")
    assert paper_figures.iteration_unit(1_200) == (1.0, "iterations")  # never "0.12 (1e4)"
    long = study_metrics().assign(iteration=lambda d: d["iteration"] * 100)  # 60,000
    fig = paper_figures.figure6(long)
    figs.append(fig)
    ax = fig.get_axes()[0]
    assert ax.get_xlabel() == "iterations (1e4)"
    assert list(ax.get_lines()[1].get_xdata()) == pytest.approx([1, 2, 3, 4, 5, 6])


def _with_windows(metrics: pd.DataFrame, window: int = 25) -> pd.DataFrame:
    """The epoch rows plus training windows of `window` iterations (error = iteration / 100)."""
    rows = [metrics.assign(kind="epoch", window_iterations=ITERS_PER_EPOCH)]
    for (model, seed), run in metrics.groupby(["model", "seed"]):
        end = int(run["iteration"].max())
        its = list(range(window, end + 1, window))
        w = pd.DataFrame(
            {
                "model": model,
                "arch": run["arch"].iloc[0],
                "depth": run["depth"].iloc[0],
                "shortcut": "A",
                "seed": seed,
                "epoch": [(i - 1) // ITERS_PER_EPOCH + 1 for i in its],
                "iteration": its,
                "lr": 0.1,
                "train_loss": 1.0,
                "train_error_pct": [i / 100 for i in its],
                "status": "ok",
                "kind": "window",
                "window_iterations": window,
            }
        )
        rows.append(w)
    return pd.concat(rows, ignore_index=True)


def test_figure6_draws_training_windows_at_their_centres_and_tests_at_epoch_ends(figs):
    m = _with_windows(study_metrics())
    fig = paper_figures.figure6(m)
    figs.append(fig)
    ax = fig.get_axes()[1]
    train, test = ax.get_lines()[0], ax.get_lines()[1]
    assert list(train.get_xdata()) == pytest.approx([i - 12.5 for i in range(25, 601, 25)])
    assert list(train.get_ydata()) == pytest.approx([i / 100 for i in range(25, 601, 25)])
    assert list(test.get_xdata()) == pytest.approx([100, 200, 300, 400, 500, 600])
    assert "windows of 25 iterations" in fig.get_suptitle()
    # the tables read the same file's epoch rows only
    assert "epoch means" not in fig.get_suptitle()
    fig = paper_figures.figure6(study_metrics())  # older files: epoch means, said so
    figs.append(fig)
    assert "mean over each epoch" in fig.get_suptitle()


def test_figure6_legend_sits_below_the_curves(figs):
    fig = paper_figures.figure6(study_metrics())
    figs.append(fig)
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    renderer = FigureCanvasAgg(fig).get_renderer()
    for ax in fig.get_axes():
        legend = ax.get_legend().get_window_extent(renderer)
        panel = ax.get_window_extent(renderer)
        assert legend.y1 <= panel.y0, "the legend must not cover the plotting area"


def test_figure6_notes_a_curve_above_the_chart(figs):
    fig = paper_figures.figure6(study_metrics(plain110_final=70.0))
    figs.append(fig)
    left, middle = fig.get_axes()
    note = texts(left)
    assert "plain-110" in note and "off the chart" in note and "70.0%" in note
    assert "off the chart" not in texts(middle)
    fig = paper_figures.figure6(study_metrics(plain110_final=15.0))
    figs.append(fig)
    assert "off the chart" not in texts(fig.get_axes()[0])


def test_figure6_plots_the_mean_over_seeds_and_leaves_out_a_diverged_seed(figs):
    m = make_metrics(
        make_run("resnet20", 0, [12.0, 8.0]),
        make_run("resnet20", 1, [14.0, 10.0]),
        make_run("resnet20", 2, [90.0, 90.0], diverged_from_epoch=1),
    )
    fig = paper_figures.figure6(m)
    figs.append(fig)
    ax = fig.get_axes()[1]
    assert len(ax.get_lines()) == 2
    assert list(ax.get_lines()[1].get_ydata()) == pytest.approx([13.0, 9.0])


def test_figure6_colours_a_depth_the_same_in_every_panel(figs):
    fig = paper_figures.figure6(study_metrics(with_1202=True))
    figs.append(fig)
    left, middle, right = fig.get_axes()
    colours = style.depth_colors([20, 56, 110, 1202])
    for ax, models in ((left, PLAIN), (middle, RES), (right, ["resnet110", "resnet1202"])):
        for model, line in zip(models, ax.get_lines()[1::2]):
            assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(
                colours[parse_model_name(model)[1]]
            )


def test_figure6_says_so_when_there_are_no_plain_runs(figs):
    m = make_metrics(make_run("resnet20", 0, [12.0, 8.0]))
    fig = paper_figures.figure6(m)
    figs.append(fig)
    left = fig.get_axes()[0]
    assert len(left.get_lines()) == 0 and "no plain" in texts(left)


# --------------------------------------------------------------------------------------------
# Figure 7


def layer_std_frame(models) -> pd.DataFrame:
    rows = []
    for model in models:
        arch, depth = parse_model_name(model)
        n = depth - 2
        for layer in range(1, n + 1):
            rows.append(
                {
                    "model": model,
                    "arch": arch,
                    "depth": depth,
                    "seed": 0,
                    "layer": layer,
                    "name": f"bn{layer}",
                    "std": (2.0 if arch == "plain" else 1.0) + 0.01 * (layer % 5),
                    "images": 100,
                }
            )
    return pd.DataFrame(rows, columns=LAYER_STD_SCHEMA.names)


def test_figure7_two_panels_one_line_per_present_model(figs):
    data = layer_std_frame(["plain20", "resnet20", "resnet56"])
    fig = paper_figures.figure7(data, ["plain20", "plain56", "resnet20", "resnet56"])
    figs.append(fig)
    top, bottom = fig.get_axes()
    for ax in (top, bottom):
        lines = ax.get_lines()
        assert len(lines) == 3
        assert [line.get_linestyle() for line in lines] == ["--", "-", "-"]
        assert "std" in ax.get_ylabel() and "layer index" in ax.get_xlabel()
        assert legend_labels(ax) == ["plain-20", "ResNet-20", "ResNet-56"]
    assert "plain-56" in texts(top)  # absent model named in a note
    # top in network order, bottom sorted in descending order
    plain_top, plain_bottom = top.get_lines()[0], bottom.get_lines()[0]
    assert list(plain_top.get_xdata()) == list(range(1, 19))
    y = np.asarray(plain_bottom.get_ydata())
    assert np.all(np.diff(y) <= 0) and sorted(y) == sorted(plain_top.get_ydata())


def test_figure7_colours_match_figure6(figs):
    fig = paper_figures.figure7(layer_std_frame(["plain56", "resnet56"]), ["plain56", "resnet56"])
    figs.append(fig)
    colour = style.depth_colors([56])[56]
    for line in fig.get_axes()[0].get_lines():
        assert matplotlib.colors.to_rgb(line.get_color()) == pytest.approx(colour)


# --------------------------------------------------------------------------------------------
# save_figure


def test_save_figure_writes_png_and_pdf_and_no_temporary_files(tmp_path, figs):
    fig = plt.figure(figsize=(2, 1.5))
    figs.append(fig)
    fig.subplots().plot([0, 1], [1, 0])
    png, pdf = style.save_figure(fig, tmp_path / "out" / "figure6.png")
    assert png == tmp_path / "out" / "figure6.png" and pdf == tmp_path / "out" / "figure6.pdf"
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert pdf.read_bytes()[:5] == b"%PDF-"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["figure6.pdf", "figure6.png"]
    with pytest.raises(ValueError, match="png"):
        style.save_figure(fig, tmp_path / "figure6.jpg")
