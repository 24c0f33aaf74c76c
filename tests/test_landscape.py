"""The loss-landscape probe (probes/landscape.py, Li et al. 2018) on constructed nets whose
answers are known: filter normalisation, zero directions for 1-D tensors, seeding, the grid's
centre, a loss that is a known quadratic, the interpolation's ends, a diverged net, bad grids;
and the figure (figures/landscape.py) from such rows."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from resnet_repro.config import ConfigError, parse_model_name
from resnet_repro.engine.devices import Placement
from resnet_repro.engine.evaluation import loss_and_error
from resnet_repro.engine.run_setup import initial_model, setup_model
from resnet_repro.figures import landscape as plots
from resnet_repro.nets.cifar_nets import make_net
from resnet_repro.probes import label_run
from resnet_repro.probes import landscape as L
from resnet_repro.results import LANDSCAPE_SCHEMA, read_all_landscape, write_landscape


def _net(arch: str = "resnet", depth: int = 8, seed: int = 0) -> nn.Module:
    """A small net with non-trivial BN parameters and running statistics."""
    torch.manual_seed(seed)
    net = make_net(arch, depth)
    g = torch.Generator().manual_seed(seed)
    for m in net.modules():
        if isinstance(m, nn.BatchNorm2d):
            c = m.num_features
            m.weight.data = torch.rand(c, generator=g) + 0.5
            m.bias.data = torch.randn(c, generator=g) * 0.1
            m.running_mean = torch.randn(c, generator=g) * 0.1
            m.running_var = torch.rand(c, generator=g) + 0.5
    return net.eval()


def _data(n: int = 24, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    return torch.randn(n, 3, 32, 32, generator=g), torch.randint(0, 10, (n,), generator=g)


def _state(net: nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.clone() for k, v in net.state_dict().items()}


# ------------------------------------------------------------------------------- directions


def test_each_filter_of_a_direction_has_the_norm_of_the_weights_filter():
    net = _net()
    for d in L.random_directions(net, seed=3):
        checked = 0
        for name, w in net.named_parameters():
            if w.dim() <= 1:
                continue
            got = d[name].reshape(w.shape[0], -1).norm(dim=1)
            want = w.detach().reshape(w.shape[0], -1).norm(dim=1)
            torch.testing.assert_close(got, want, rtol=1e-5, atol=1e-7)
            checked += 1
        # every conv and the linear layer: stem + 2 per block (3 blocks) + fc
        assert checked == 1 + 2 * 3 + 1


def test_filter_normalisation_is_per_filter_not_per_tensor():
    w = torch.tensor([[3.0, 4.0], [0.0, 0.0], [1.0, 0.0]])  # filter norms 5, 0, 1
    d = torch.tensor([[1.0, 0.0], [2.0, 2.0], [0.0, -8.0]])
    out = L.filter_normalize(d, w)
    torch.testing.assert_close(out, torch.tensor([[5.0, 0.0], [0.0, 0.0], [0.0, -1.0]]))


def test_tensors_of_at_most_one_dimension_get_zero_directions():
    net = _net()
    one_d = [n for n, p in net.named_parameters() if p.dim() <= 1]
    # every BN scale and shift, and the linear layer's bias
    assert "fc.bias" in one_d and any(n.endswith("bn1.weight") for n in one_d)
    for d in L.random_directions(net, seed=0):
        for name in one_d:
            assert torch.count_nonzero(d[name]) == 0, name
        for name, p in net.named_parameters():
            if p.dim() > 1:
                assert torch.count_nonzero(d[name]) > 0, name


def test_bn_running_statistics_are_not_moved():
    net = _net()
    buffers = {k: v.clone() for k, v in net.named_buffers()}
    x, y = _data()
    L.landscape_rows(net, L.dataset_evaluator(x, y, 8), -1.0, 1.0, 3, seed=0)
    for k, v in net.named_buffers():
        assert torch.equal(v, buffers[k]), k


def test_same_seed_same_directions_other_seed_other_directions():
    net = _net()
    a1, a2 = L.random_directions(net, seed=5)
    b1, b2 = L.random_directions(net, seed=5)
    c1, _ = L.random_directions(net, seed=6)
    for name, p in net.named_parameters():
        assert torch.equal(a1[name], b1[name]) and torch.equal(a2[name], b2[name])
        if p.dim() > 1:
            assert not torch.equal(a1[name], c1[name]), name
            assert not torch.equal(a1[name], a2[name]), name  # the two directions differ


def test_directions_follow_the_weights_and_the_seed_only():
    """The same trained weights in another net object give the same directions, drawing them
    changes no global random state, and the trained weights themselves are untouched."""
    net, twin = _net(seed=2), _net(seed=2)
    before = _state(net)
    torch.manual_seed(123)
    state = torch.get_rng_state()
    d = L.random_directions(net, seed=1)
    assert torch.equal(torch.get_rng_state(), state)
    e = L.random_directions(twin, seed=1)
    for i in range(2):
        for name in d[i]:
            assert torch.equal(d[i][name], e[i][name])
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k])


# ------------------------------------------------------------------------------- the grid


def test_grid_centre_equals_the_trained_nets_loss_and_the_weights_are_restored():
    net = _net()
    x, y = _data()
    trained_loss, trained_error = loss_and_error(net, x, y, 8, lambda b: b)
    before = _state(net)
    rows = L.landscape_rows(
        net, L.dataset_evaluator(x, y, 8), -1.0, 1.0, 5, seed=0, initial=_net(seed=9)
    )
    centre = rows[(rows["kind"] == "surface") & (rows["alpha"] == 0) & (rows["beta"] == 0)]
    assert len(centre) == 1
    assert centre["loss"].iloc[0] == trained_loss  # bit for bit
    assert centre["error_pct"].iloc[0] == trained_error
    on_line = rows[(rows["kind"] == "direction") & (rows["alpha"] == 0)]
    assert on_line["loss"].iloc[0] == trained_loss
    end = rows[(rows["kind"] == "interpolation") & (rows["alpha"] == 1)]
    assert end["loss"].iloc[0] == trained_loss
    # away from the centre the loss differs
    assert (rows[rows["kind"] == "surface"]["loss"] != trained_loss).sum() == 24
    for k, v in net.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert rows["kind"].value_counts().to_dict() == {
        "surface": 25,
        "direction": 5,
        "interpolation": 5,
    }
    assert (rows["status"] == "ok").all()


def test_grid_coordinates_cover_the_range_row_by_row():
    net = _net()
    x, y = _data(8)
    rows = L.landscape_rows(net, L.dataset_evaluator(x, y, 8), -0.5, 1.5, 3, seed=0)
    s = rows[rows["kind"] == "surface"]
    assert sorted(set(s["alpha"])) == sorted(set(s["beta"])) == [-0.5, 0.5, 1.5]
    assert len(set(zip(s["alpha"], s["beta"]))) == 9
    d = rows[rows["kind"] == "direction"]
    assert list(d["alpha"]) == [-0.5, 0.5, 1.5] and (d["beta"] == 0).all()


class Quadratic(nn.Module):
    """A 'net' of two weight matrices whose loss is ||W - W*||^2 + ||V - V*||^2."""

    def __init__(self):
        super().__init__()
        g = torch.Generator().manual_seed(4)
        self.w = nn.Parameter(torch.randn(4, 3, generator=g))
        self.v = nn.Parameter(torch.randn(2, 5, generator=g))
        self.b = nn.Parameter(torch.randn(4, generator=g))  # 1-D: never moved
        self.targets = {n: torch.randn(p.shape, generator=g) for n, p in self.named_parameters()}

    def loss(self) -> float:
        return sum(
            float(((p.double() - self.targets[n].double()) ** 2).sum())
            for n, p in self.named_parameters()
        )


def _quadratic_eval(model: Quadratic) -> tuple[float, float]:
    return model.loss(), 0.0


def test_a_loss_that_is_a_known_quadratic_in_a_chosen_direction():
    """Along a chosen direction d the loss is |u|^2 + 2a u.d + a^2 |d|^2 (u = theta - theta*):
    the sweep puts each coefficient where it belongs."""
    net = Quadratic()
    d = {n: torch.ones_like(p) * (0.5 if n == "w" else 0.0) for n, p in net.named_parameters()}
    coefs = [-2.0, -0.5, 0.0, 1.0, 3.0]
    got = [loss for loss, _, _ in L.sweep(net, _quadratic_eval, [d], [(a,) for a in coefs])]
    u = {n: (p.detach() - net.targets[n]).double() for n, p in net.named_parameters()}
    uu = sum(float((t * t).sum()) for t in u.values())
    ud = float((u["w"] * 0.5).sum())
    dd = 0.25 * 12
    want = [uu + 2 * a * ud + a * a * dd for a in coefs]
    np.testing.assert_allclose(got, want, rtol=1e-6)


def test_the_surface_of_a_known_quadratic():
    """Over the grid, with the random filter-normalised directions: L(a, b) = |u + a d1 +
    b d2|^2 exactly as the closed form says, the 1-D tensor never moves."""
    net = Quadratic()
    rows = L.landscape_rows(net, _quadratic_eval, -1.0, 1.0, 5, seed=7)
    d1, d2 = L.random_directions(net, seed=7)
    assert torch.count_nonzero(d1["b"]) == 0 and torch.count_nonzero(d2["b"]) == 0

    def closed(a: float, b: float) -> float:
        return sum(
            float(
                ((p.detach() + a * d1[n] + b * d2[n]).double() - net.targets[n].double())
                .square()
                .sum()
            )
            for n, p in net.named_parameters()
        )

    for _, r in rows.iterrows():
        if r["kind"] == "surface":
            assert r["loss"] == pytest.approx(closed(r["alpha"], r["beta"]), rel=1e-6)
        elif r["kind"] == "direction":
            assert r["loss"] == pytest.approx(closed(r["alpha"], 0.0), rel=1e-6)


def test_interpolation_runs_from_the_initial_to_the_trained_weights():
    """t = 0 is the initial net (its parameters and its BN running statistics), t = 1 the
    trained one bit for bit; in between, every tensor is on the line between the two."""
    net, start = _net(seed=0), _net(seed=5)
    x, y = _data()
    evaluate = L.dataset_evaluator(x, y, 8)
    rows = L.landscape_rows(net, evaluate, -1.0, 1.0, 3, seed=0, initial=start)
    line = rows[rows["kind"] == "interpolation"].sort_values("alpha")
    assert list(line["alpha"]) == [0.0, 0.5, 1.0]
    assert line["loss"].iloc[0] == pytest.approx(evaluate(start)[0], rel=1e-5)
    assert line["loss"].iloc[-1] == evaluate(net)[0]
    half = _net(seed=0)
    with torch.no_grad():
        for (_, h), (_, a), (_, b) in zip(
            L.movable(half).items(), L.movable(net).items(), L.movable(start).items()
        ):
            h.copy_((a + b) / 2)
    assert line["loss"].iloc[1] == pytest.approx(evaluate(half)[0], rel=1e-5)


def test_only_the_interpolation_moves_the_bn_running_statistics():
    net, start = _net(seed=0), _net(seed=5)
    trained = {n: b.clone() for n, b in net.named_buffers()}
    seen: list[bool] = []

    def evaluate(model):
        seen.append(all(torch.equal(b, trained[n]) for n, b in model.named_buffers()))
        return 0.0, 0.0

    rows = L.landscape_rows(net, evaluate, -1.0, 1.0, 3, seed=0, initial=start)
    kinds = list(rows["kind"])
    # the first evaluation is the trained net itself, then the rows in order
    assert seen[0] and all(seen[1 : 1 + kinds.count("surface") + kinds.count("direction")])
    assert not all(seen[-3:-1])  # t = 0 and 0.5 use interpolated statistics
    assert seen[-1]  # t = 1: the trained statistics
    for n, b in net.named_buffers():
        assert torch.equal(b, trained[n]), n


def test_the_initial_weights_are_the_runs_own():
    """initial_model rebuilds exactly the initialisation the trainer starts from."""
    placement = Placement(torch.device("cpu"), "fp32", False, "eager", False, "cpu")
    from resnet_repro.config import study_from_dict

    train = study_from_dict({}).train
    trained_from, _ = setup_model("resnet8", "A", train, placement, seed=3)
    rebuilt = initial_model("resnet8", "A", 3)
    other = initial_model("resnet8", "A", 4)
    for (k, a), (_, b), (_, c) in zip(
        trained_from.state_dict().items(),
        rebuilt.state_dict().items(),
        other.state_dict().items(),
    ):
        assert torch.equal(a, b), k
        if a.dim() > 1:
            assert not torch.equal(a, c), k


def test_a_diverged_net_gets_one_row_that_says_so():
    net = _net()
    with torch.no_grad():
        next(net.parameters())[0, 0, 0, 0] = float("nan")
    x, y = _data(8)
    rows = L.landscape_rows(net, L.dataset_evaluator(x, y, 8), -1.0, 1.0, 5, seed=0)
    assert len(rows) == 1 and rows["status"].iloc[0] == "diverged"
    assert math.isnan(rows["loss"].iloc[0]) and "not finite" in rows["note"].iloc[0]


@pytest.mark.parametrize(
    "lo, hi, points, words",
    [
        (-1.0, 1.0, 0, ["landscape_points", "at least 2"]),
        (-1.0, 1.0, 1, ["landscape_points", "at least 2"]),
        (1.0, -1.0, 5, ["landscape_range", "min < max"]),
        (0.5, 0.5, 5, ["landscape_range", "min < max"]),
    ],
)
def test_bad_grids_are_one_line_errors(lo, hi, points, words):
    with pytest.raises(ConfigError) as e:
        L.grid(lo, hi, points)
    assert "\n" not in str(e.value)
    for w in words:
        assert w in str(e.value)


# ------------------------------------------------------------------------------- the figure


def _rows(model: str, points: int = 3, diverged: bool = False) -> pd.DataFrame:
    arch, depth = parse_model_name(model)
    net = _net(arch, depth)
    if diverged:
        with torch.no_grad():
            next(net.parameters()).fill_(float("nan"))
    x, y = _data(8)
    rows = L.landscape_rows(
        net, L.dataset_evaluator(x, y, 8), -1.0, 1.0, points, seed=0, initial=_net(arch, depth, 3)
    )
    rows = rows.assign(
        source="run",
        init_source=[("run" if k == "interpolation" else None) for k in rows["kind"]],
        direction_seed=0,
        range_min=-1.0,
        range_max=1.0,
        points=points,
        images=8,
        batch_size=8,
        wall_seconds=1.0,
    )
    return label_run(rows, model, 0, LANDSCAPE_SCHEMA)


def test_landscape_rows_round_trip_through_parquet(tmp_path):
    rows = _rows("resnet8")
    write_landscape(rows, tmp_path / "r.parquet")
    back = read_all_landscape([tmp_path / "r.parquet"])
    assert list(back.columns) == LANDSCAPE_SCHEMA.names and len(back) == 9 + 3 + 3


def _contour_sets(fig):
    from matplotlib.contour import ContourSet

    return [c for ax in fig.axes for c in ax.get_children() if isinstance(c, ContourSet)]


def test_figure_puts_twins_side_by_side_on_the_same_levels():
    df = pd.concat([_rows("plain8"), _rows("resnet8"), _rows("plain14")], ignore_index=True)
    fig = plots.figure_landscape(df)
    titles = [ax.get_title() for ax in fig.axes]
    assert titles[:2] == ["plain-8", "ResNet-8"] and titles[4:6] == ["plain-14", "ResNet-14"]
    sets = _contour_sets(fig)
    assert len(sets) == 2 * 3  # filled + lines for each of the three surfaces
    levels = [tuple(np.round(c.levels, 12)) for c in sets]
    assert len(set(levels)) == 1  # the same levels everywhere
    lv = np.array(sets[0].levels)
    np.testing.assert_allclose(np.diff(np.log(lv)), np.diff(np.log(lv))[0])  # log-spaced
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "no ResNet-14 in the data" in texts
    stars = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_label() == "trained weights"]
    assert len(stars) == 3 and all(tuple(s.get_xydata()[0]) == (0, 0) for s in stars)
    curves = {ln.get_label() for ln in fig.axes[2].get_lines()}
    assert {"plain-8", "ResNet-8"} <= curves  # the pair's 1-D curves on one axis
    assert "direction seed 0" in fig._suptitle.get_text()
    assert "8 training images" in fig._suptitle.get_text()


def test_figure_says_when_a_run_diverged_and_survives_no_data():
    df = pd.concat([_rows("plain8", diverged=True), _rows("resnet8")], ignore_index=True)
    fig = plots.figure_landscape(df)
    texts = " ".join(t.get_text() for ax in fig.axes for t in ax.texts)
    assert "plain-8: the run diverged" in texts and "plain-8: diverged" in texts
    empty = plots.figure_landscape(LANDSCAPE_SCHEMA.empty_table().to_pandas())
    assert "no landscapes in the data" in " ".join(
        t.get_text() for ax in empty.axes for t in ax.texts
    )
