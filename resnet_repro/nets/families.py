"""The net families, each described once: its model names and depths, its builder, what the
recipe fixes for it (shortcut, width), its blocks, how it is labelled and drawn, and a rough
cost. Everything else (the config's name checks, the run identity, the tables, the figures,
the probes, `status`) asks the family of a model instead of testing its name.

- `plain` and `resnet`: the paper's 6n+2 CIFAR nets (He et al. 2015, section 4.2), plain and
  residual twins with the same layers (`cifar_nets`);
- `imagenet-resnet`: the ImageNet-style ResNet-18/34/50 of the paper's Table 1 adapted to
  32x32 images, a second study family (`imagenet_style`). Its names share no prefix with
  `resnet20`, so neither a reader nor the name parser can take one for the other.

A new family is one module with its builder and blocks plus one `Family` entry in `FAMILIES`.
This module imports no torch (the builders and block types are imported when first asked
for), so that the config, the workflow and `status` can ask the families for free.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from ..basics import resolve
from ..errors import ConfigError

SHORTCUTS = ("A", "B", "C")  # section 3.3: zero-padding identity, projection where needed, all


def _six_n_plus_two(depth: int) -> bool:
    return depth >= 8 and (depth - 2) % 6 == 0


def _cifar_mmacs(depth: int, width: int | None) -> float:
    # 6n+2 nets: about 41M multiply-accumulates per image at depth 20, linear in depth
    # (ResNet-110: 253M); their widths are fixed.
    return 41.0 * (depth - 2) / 18


def _imagenet_mmacs(depth: int, width: int | None) -> float:
    # As measured (docs: "Two studies"), times (width / 64)^2 for a narrowed smoke net.
    return {18: 555.0, 34: 1160.0, 50: 1300.0}[depth] * ((width or 64) / 64) ** 2


@dataclass(frozen=True)
class Family:
    """One net family. `arch` is the model-name prefix: model `arch` + depth (`resnet56`)."""

    arch: str
    label_prefix: str  # legend label: prefix + "-" + depth + label_suffix ("ResNet-56")
    table_name: str  # the families table's name of it
    paper: bool  # the paper's 6n+2 nets: Table 6, Figure 6's plain and ResNet panels
    residual: bool  # blocks with shortcuts
    depths_text: str  # the allowed depths, for messages
    depth_ok: Callable[[int], bool]
    # A shortcut option the family always uses (the ImageNet-style nets project where the
    # shape changes, option B), or None: the study's study.shortcut.
    fixed_shortcut: str | None
    takes_width: bool  # study.width applies (the paper's nets keep 16/32/64 filters)
    linestyle: str  # in every figure: ResNets solid, plain nets dashed
    mmacs: Callable[[int, int | None], float]  # rough forward cost of one image, millions
    # "module:function" (basics.resolve), called (arch, depth, shortcut, num_classes, width)
    builder: str
    blocks: tuple[str, ...]  # its block types, "module:class" each
    label_suffix: str = ""
    # Whether the workflow runs the probes of trained nets (lesions, paths, block changes,
    # landscapes) on this family's runs: the degradation study's nets. The ImageNet-style
    # study compares training recipes; `resnet-repro probe` measures its nets by hand.
    workflow_probes: bool = True

    def model(self, depth: int) -> str:
        return f"{self.arch}{depth}"

    def label(self, depth: int) -> str:
        return f"{self.label_prefix}-{depth}{self.label_suffix}"

    def check_depth(self, depth: int, key: str = "study.depths") -> None:
        if not self.depth_ok(depth):
            raise ConfigError(
                f"{key}: depth {depth} is not allowed for {self.arch} nets; allowed values: "
                f"{self.depths_text}"
            )

    def shortcut(self, study_shortcut: str) -> str:
        """The shortcut option a net of this family trains with in a study."""
        return self.fixed_shortcut or study_shortcut

    def build(self, depth: int, shortcut: str, num_classes: int, width: int | None) -> Any:
        if width is not None and not self.takes_width:
            raise ConfigError(
                f"width {width} is not allowed for {self.model(depth)}: {self.arch} nets keep "
                f"their own filter counts (the paper's 16/32/64); allowed: None"
            )
        return resolve(self.builder)(self.arch, depth, shortcut, num_classes, width)

    def block_types(self) -> tuple[type, ...]:
        return tuple(resolve(ref) for ref in self.blocks)


_CIFAR_DEPTHS = "6n+2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, 1202, ...)"

FAMILIES: tuple[Family, ...] = (
    Family(
        arch="plain",
        label_prefix="plain",
        table_name="paper 6n+2 (plain)",
        paper=True,
        residual=False,
        depths_text=_CIFAR_DEPTHS,
        depth_ok=_six_n_plus_two,
        fixed_shortcut=None,
        takes_width=False,
        linestyle="--",
        mmacs=_cifar_mmacs,
        builder="nets.cifar_nets:build",
        blocks=("nets.cifar_nets:Block",),
    ),
    Family(
        arch="resnet",
        label_prefix="ResNet",
        table_name="paper 6n+2 (ResNet)",
        paper=True,
        residual=True,
        depths_text=_CIFAR_DEPTHS,
        depth_ok=_six_n_plus_two,
        fixed_shortcut=None,
        takes_width=False,
        linestyle="-",
        mmacs=_cifar_mmacs,
        builder="nets.cifar_nets:build",
        blocks=("nets.cifar_nets:Block",),
    ),
    Family(
        arch="imagenet-resnet",
        label_prefix="ResNet",
        label_suffix=" (ImageNet-style)",
        table_name="ImageNet-style",
        paper=False,
        residual=True,
        depths_text="[18, 34, 50]",
        depth_ok=lambda depth: depth in (18, 34, 50),
        fixed_shortcut="B",
        takes_width=True,
        linestyle="-.",
        mmacs=_imagenet_mmacs,
        builder="nets.imagenet_style:build",
        blocks=("nets.imagenet_style:BasicBlock", "nets.imagenet_style:Bottleneck"),
        workflow_probes=False,
    ),
)

BY_ARCH = {f.arch: f for f in FAMILIES}
ALL_ARCHS = tuple(f.arch for f in FAMILIES)  # the order of every listing: plain, resnet, ...
PAPER_ARCHS = tuple(f.arch for f in FAMILIES if f.paper)  # the 6n+2 nets of section 4.2
# The wildcard pattern of a model name, for the workflow (longest prefix first).
MODEL_PATTERN = "(" + "|".join(sorted(ALL_ARCHS, key=len, reverse=True)) + r")\d+"


def family(arch: str) -> Family:
    if arch not in BY_ARCH:
        raise ConfigError(f"arch {arch!r} is not allowed; allowed values: {list(ALL_ARCHS)}")
    return BY_ARCH[arch]


def model_name(arch: str, depth: int) -> str:
    return family(arch).model(depth)


def check_depth(depth: int, key: str = "study.depths", arch: str = "resnet") -> None:
    """ConfigError naming `key` and the allowed depths when `arch` has no net of `depth`."""
    family(arch).check_depth(depth, key)


def parse_model_name(name: str, key: str = "model") -> tuple[str, int]:
    """'resnet56' -> ('resnet', 56), 'imagenet-resnet18' -> ('imagenet-resnet', 18); raises
    ConfigError naming the allowed forms. Longer prefixes are tried first, so no family's name
    can be read as another's."""
    for f in sorted(FAMILIES, key=lambda f: len(f.arch), reverse=True):
        rest = name[len(f.arch) :] if name.startswith(f.arch) else ""
        if rest.isdigit():
            f.check_depth(int(rest), key=f"{key} {name!r}")
            return f.arch, int(rest)
    raise ConfigError(f"{key}: {name!r} is not a known model name: expected {model_forms()}")


def model_forms() -> str:
    """The model names of every family in words, for messages and --help."""
    groups: dict[str, list[Family]] = {}
    for f in FAMILIES:
        groups.setdefault(f.depths_text, []).append(f)
    return "; or ".join(
        f"one of {[f.arch for f in fs]} followed by a depth {depths}, such as "
        + " or ".join(repr(f.model(_example(f))) for f in fs)
        for depths, fs in groups.items()
    )


def _example(f: Family) -> int:
    return next(d for d in (20, 110, 18, 8) if f.depth_ok(d))


def family_of(model: str) -> Family:
    """The family of a model name ('resnet56' -> the ResNet family)."""
    return BY_ARCH[parse_model_name(model)[0]]


def model_label(model: str) -> str:
    """'plain20' -> 'plain-20', 'resnet56' -> 'ResNet-56' (the paper's legend labels);
    'imagenet-resnet18' -> 'ResNet-18 (ImageNet-style)', never to be read as a paper net."""
    arch, depth = parse_model_name(model)
    return BY_ARCH[arch].label(depth)


def model_mmacs(model: str, width: int | None = None) -> float:
    """A rough forward cost of one image of `model`, in millions of multiply-accumulates."""
    arch, depth = parse_model_name(model)
    return BY_ARCH[arch].mmacs(depth, width)


def build_model(name: str, shortcut: str = "A", num_classes: int = 10, width: int | None = None):
    """The net named like 'plain20', 'resnet110' or 'imagenet-resnet18', built by its
    family. A family with a fixed shortcut option ignores `shortcut`; `width` applies only to
    a family that takes one (the ImageNet-style nets' stem filters, None: 64)."""
    arch, depth = parse_model_name(name)
    return BY_ARCH[arch].build(depth, shortcut, num_classes, width)


def paper_arch(residual: bool) -> str:
    """The paper's 6n+2 family with shortcuts (residual) or without (plain): what another
    reproduction's "resnet" or "plain" means in our names."""
    return next(f.arch for f in FAMILIES if f.paper and f.residual == residual)
