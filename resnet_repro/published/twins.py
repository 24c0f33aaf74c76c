"""Which imported checkpoints form plain/residual twins: a plain and a residual net of the
same depth from the same reproduction (checkpoint format), whose loss landscapes are drawn
side by side (Li et al. 2018 compare exactly such twins). The workflow asks this before any
job starts, from the config entries and the files beside each checkpoint."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from ..config import PublishedCheckpoint, parse_model_name
from ..nets.families import family
from .checkpoints import wooyeolbaek_model_name


def entry_model(p: PublishedCheckpoint) -> tuple[str, int] | None:
    """The net of a `published:` entry as far as the entry and the files beside the
    checkpoint tell, as (arch, depth), or None (an akamaster file is always a ResNet, but its
    depth is read only on import)."""
    if p.model:
        return parse_model_name(p.model)
    if p.format == "wooyeolbaek":
        named = wooyeolbaek_model_name(Path(p.file))
        return parse_model_name(named) if named else None
    return None


def twin_names(entries: Sequence[PublishedCheckpoint]) -> list[str]:
    """The names of the entries that have a twin: for each, another entry of the same format
    and depth whose family differs only in having shortcuts."""
    nets = {p.name: (p.format, entry_model(p)) for p in entries}

    def twin_of(name: str) -> bool:
        fmt, net = nets[name]
        if net is None:
            return False
        arch, depth = net
        return any(
            other is not None
            and other_fmt == fmt
            and other[1] == depth
            and family(other[0]).paper == family(arch).paper
            and family(other[0]).residual != family(arch).residual
            for o, (other_fmt, other) in nets.items()
            if o != name
        )

    return [p.name for p in entries if twin_of(p.name)]
