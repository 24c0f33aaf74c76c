"""Trained nets of other reproductions, turned into our model.pt layout.

Two public reproductions of He et al. 2015 (section 4.2) publish trained weights of the same
CIFAR-10 nets:

- akamaster/pytorch_resnet_cifar10 (`resnetD-HASH.th`): {"state_dict": ..., "best_prec1": ...}
  saved from a DataParallel model (keys start with `module.`, no `num_batches_tracked`);
  conv1/bn1, layer1..3 of blocks conv1/bn1/conv2/bn2, `linear`. Inputs: 0..1 scale, per-channel
  ImageNet mean and std. ResNets only.
- wooyeolBaek/deep-residual-learning (`last.pth`): a plain state dict; `conv1.conv1` + `conv1.bn1`,
  `conv{2,3,4}_x.conv{2,3,4}_x.{j}.f.{0,1,3,4}` (conv, BN, -, conv, BN), `fc.fc`; every conv
  has a bias. Plain nets and ResNets have the same keys (told apart by the run's config.json
  or folder name). Inputs: 0..1 scale minus the per-pixel mean of its training images (its
  45k training split); the import stores the mean of every training image of the data at hand
  (all 50k of CIFAR-10, never a subset: the closest we have), so that the model file is
  evaluated the same way by every study that reads it.

Both use option-A shortcuts (section 3.3) that put the zero channels on both sides of the
identity: when the width doubles from C to 2C, the identity sits in channels C/2 .. 3C/2-1.
Ours (models.PadShortcut) puts it in channels 0..C-1. A consistent permutation of a stage's
channels (the out-channels of every block's second conv and BN, the in-channels of the next
convs, the FC's in-features after the last stage) maps one layout onto the other exactly; the
channels inside a block need none. A conv bias followed by BN folds into the BN exactly:
BN(Wx + b) has running_mean - b in place of running_mean.
"""

from __future__ import annotations

import hashlib
import json
import re
import warnings
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from ..config import parse_model_name
from ..nets import normalization
from ..nets.families import build_model, family, model_name, paper_arch
from ..results import ResultError

FORMATS = ("akamaster", "wooyeolbaek")
FORMAT_HELP = (
    "akamaster (resnetD-HASH.th of akamaster/pytorch_resnet_cifar10), wooyeolbaek "
    "(last.pth of wooyeolBaek/deep-residual-learning)"
)
BN_KEYS = ("weight", "bias", "running_mean", "running_var")

# A net as a list of 3x3 layers, independent of anyone's key names:
# stem = (conv weight, bn dict); stages = [[(conv1, bn1, conv2, bn2), ...] per stage];
# fc = (weight, bias).
Layer = tuple[torch.Tensor, dict[str, torch.Tensor]]


def sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def stage_permutations(widths: list[int], residual: bool) -> list[torch.Tensor]:
    """Per stage, perm[o] = the foreign channel that our channel o takes.

    Where a stage widens from C to C' (option A, zeros split front/back), the identity lands
    in foreign channels (C'-C)/2 + q for the previous stage's foreign channel q; ours puts our
    channel k of the previous stage in channel k. So our channel k < C takes foreign channel
    (C'-C)/2 + prev[k], and the zero-padded channels follow in their foreign order. Plain nets
    have no shortcut to line up: the identity permutation."""
    perms: list[torch.Tensor] = []
    for i, width in enumerate(widths):
        if not residual or i == 0:
            perms.append(torch.arange(width))
            continue
        prev = perms[-1]
        if width == len(prev):
            perms.append(prev.clone())
            continue
        front = (width - len(prev)) // 2
        carried = front + prev
        rest = torch.tensor(
            [c for c in range(width) if c not in set(carried.tolist())], dtype=torch.long
        )
        perms.append(torch.cat([carried, rest]))
    return perms


def to_our_state(
    stem: Layer,
    stages: list[list[tuple]],
    fc: tuple[torch.Tensor, torch.Tensor],
    residual: bool,
    template: Mapping[str, torch.Tensor],
) -> dict[str, torch.Tensor]:
    """Our state dict (keys and dtypes of `template`) from a net's layers in foreign channel
    order, permuted per `stage_permutations`."""
    widths = [blocks[0][2].shape[0] for blocks in stages]
    perms = stage_permutations(widths, residual)
    out: dict[str, torch.Tensor] = {}

    def put_bn(prefix: str, bn: dict[str, torch.Tensor], perm: torch.Tensor | None) -> None:
        for k in BN_KEYS:
            out[f"{prefix}.{k}"] = bn[k] if perm is None else bn[k][perm]

    conv, bn = stem
    out["conv.weight"] = conv
    put_bn("bn", bn, None)
    prev = torch.arange(conv.shape[0])  # the stem is stage 1's input: never permuted
    for s, blocks in enumerate(stages):
        perm = perms[s]
        for j, (c1, b1, c2, b2) in enumerate(blocks):
            p = f"stage{s + 1}.{j}"
            out[f"{p}.conv1.weight"] = c1[:, prev]
            put_bn(f"{p}.bn1", b1, None)
            out[f"{p}.conv2.weight"] = c2[perm]
            put_bn(f"{p}.bn2", b2, perm)
            prev = perm
    out["fc.weight"], out["fc.bias"] = fc[0][:, prev], fc[1]
    state = {}
    for key, ref in template.items():
        if key.endswith("num_batches_tracked"):
            state[key] = torch.zeros_like(ref)
        elif key not in out:
            raise KeyError(key)
        else:
            state[key] = out[key].to(ref.dtype).clone()
    return state


def _bn(
    sd: Mapping[str, torch.Tensor], prefix: str, conv_bias: torch.Tensor | None = None
) -> dict[str, torch.Tensor]:
    bn = {k: sd[f"{prefix}.{k}"] for k in BN_KEYS}
    if conv_bias is not None:  # BN(Wx + b) = BN'(Wx) with running_mean' = running_mean - b
        bn["running_mean"] = bn["running_mean"] - conv_bias
    return bn


def _count(sd: Mapping[str, Any], pattern: str) -> int:
    return len({m.group(1) for k in sd if (m := re.match(pattern, k))})


def read_akamaster(sd: Mapping[str, torch.Tensor]):
    sd = {k.removeprefix("module."): v for k, v in sd.items()}
    n = _count(sd, r"layer1\.(\d+)\.conv1\.weight")
    stages = [
        [
            (
                sd[f"layer{s}.{j}.conv1.weight"],
                _bn(sd, f"layer{s}.{j}.bn1"),
                sd[f"layer{s}.{j}.conv2.weight"],
                _bn(sd, f"layer{s}.{j}.bn2"),
            )
            for j in range(n)
        ]
        for s in (1, 2, 3)
    ]
    return (sd["conv1.weight"], _bn(sd, "bn1")), stages, (sd["linear.weight"], sd["linear.bias"]), n


def read_wooyeolbaek(sd: Mapping[str, torch.Tensor]):
    n = _count(sd, r"conv2_x\.conv2_x\.(\d+)\.f\.0\.weight")
    stages = []
    for s in (2, 3, 4):
        blocks = []
        for j in range(n):
            p = f"conv{s}_x.conv{s}_x.{j}.f"
            blocks.append(
                (
                    sd[f"{p}.0.weight"],
                    _bn(sd, f"{p}.1", sd[f"{p}.0.bias"]),
                    sd[f"{p}.3.weight"],
                    _bn(sd, f"{p}.4", sd[f"{p}.3.bias"]),
                )
            )
        stages.append(blocks)
    stem = (sd["conv1.conv1.weight"], _bn(sd, "conv1.bn1", sd["conv1.conv1.bias"]))
    return stem, stages, (sd["fc.fc.weight"], sd["fc.fc.bias"]), n


def load_tensors(path: Path) -> Any:
    """What a checkpoint file holds, read with weights_only=True (no code runs from it), or
    None when torch cannot read it so: not a PyTorch file, or a pickle of other objects.
    torch's own warnings (about pickle protocols) are not shown: the caller says what is
    wrong in one line."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return torch.load(path, map_location="cpu", weights_only=True)
    except Exception:  # UnpicklingError, EOFError, RuntimeError of the zip reader, ...
        return None


def wooyeolbaek_model_name(path: Path) -> str | None:
    """'plain20'/'resnet56' from the run's config.json beside the file (model_name
    'plainnet20'), else from its folder name ('plainnet20_A_230623_001026'); None if neither."""
    candidates = []
    config = path.parent / "config.json"
    if config.is_file():
        try:
            candidates.append(str(json.loads(config.read_text()).get("model_name", "")))
        except (ValueError, OSError):
            pass
    candidates.append(path.parent.name)
    for text in candidates:
        m = re.match(r"(plain|res)net(\d+)", text)  # their names: plainnet20, resnet56
        if m:
            return model_name(paper_arch(residual=m.group(1) == "res"), int(m.group(2)))
    return None


def import_checkpoint(
    path: str | Path,
    fmt: str,
    name: str,
    model: str | None = None,
    train_mean: Callable[[], tuple[torch.Tensor, str]] | None = None,
) -> tuple[nn.Module, dict[str, Any], dict[str, Any]]:
    """(our net, identity, normalisation record) of a foreign checkpoint file; ResultError in
    one line naming the file and the formats we read when it is not one.

    `train_mean` gives the per-pixel training mean that a wooyeolbaek net is fed and a few
    words on which images it averages (`data.source_train_mean`); it is called once the file
    has been read, and only for that format, which cannot do without it."""
    path = Path(path)
    if fmt not in FORMATS:
        raise ResultError(f"checkpoint format {fmt!r} is unknown; formats we read: {FORMAT_HELP}")
    if not path.is_file():
        raise ResultError(f"checkpoint file {path} does not exist")

    def not_this_format(why: str) -> ResultError:
        return ResultError(
            f"{path} is not a checkpoint in the {fmt} format ({why}); formats we read: "
            f"{FORMAT_HELP}"
        )

    raw = load_tensors(path)
    if raw is None:
        raise not_this_format("it is not a PyTorch state dict")
    try:
        if fmt == "akamaster":
            if not isinstance(raw, Mapping) or "state_dict" not in raw:
                raise not_this_format("it has no 'state_dict' entry")
            stem, stages, fc, n = read_akamaster(raw["state_dict"])
            arch = paper_arch(residual=True)  # akamaster trained ResNets only
            norm = normalization.per_channel(
                normalization.IMAGENET_MEAN,
                normalization.IMAGENET_STD,
                "akamaster/pytorch_resnet_cifar10: 0..1 scale standardised with the ImageNet "
                "per-channel mean and std",
            )
        else:
            if not isinstance(raw, Mapping):
                raise not_this_format("it holds no state dict")
            stem, stages, fc, n = read_wooyeolbaek(raw)
            named = model or wooyeolbaek_model_name(path)
            if named is None:
                raise ResultError(
                    f"{path}: wooyeolbaek checkpoints of plain nets and ResNets have the same "
                    f"keys and no config.json names this one; give its model (plain20, "
                    f"resnet20, ...)"
                )
            arch = parse_model_name(named)[0]
            norm = None  # the data's mean, once the file is known to be good
        depth = 6 * n + 2
        if model is not None and parse_model_name(model) != (arch, depth):
            raise ResultError(f"{path} holds a {arch}{depth}, not the {model} asked for")
        net = build_model(f"{arch}{depth}", shortcut="A")
        residual = family(arch).residual
        net.load_state_dict(to_our_state(stem, stages, fc, residual, net.state_dict()))
    except ResultError:
        raise
    except KeyError as e:
        raise not_this_format(f"its state dict has no {e.args[0]!r} entry") from None
    except Exception:  # wrong types or shapes: tensors of another net
        raise not_this_format(
            "its tensors are not those of a CIFAR-10 net of that layout"
        ) from None
    if norm is None:
        if train_mean is None:
            raise ResultError(
                f"{path}: a wooyeolbaek net is fed its training images' per-pixel mean, "
                "and no data was given to compute it from (pass --config)"
            )
        mean, images = train_mean()
        norm = normalization.per_pixel_mean(
            mean,
            "wooyeolBaek/deep-residual-learning subtracted the per-pixel mean of its 45k "
            f"training split; stored here: the mean of {images}",
        )
    identity = {
        "model": f"{arch}{depth}",
        "arch": arch,
        "depth": depth,
        "shortcut": "A",
        # The authors' seed is not in the file; 0 keeps result files' int column.
        "seed": 0,
        "source": {"name": name, "format": fmt, "file": str(path), "sha256": sha256(path)},
    }
    return net.eval(), identity, norm
