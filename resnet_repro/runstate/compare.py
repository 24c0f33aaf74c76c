"""Is the run on disk the run the config names? Run identities compared key by key (the
recipe) and by content fingerprint or data keys (the data), with the changes said in words."""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..config import Study, data_selection
from .files import read_json

# ---------------------------------------------------------------- identity


def jsonable(obj: Any) -> Any:
    """`obj` as it reads back from JSON (tuples become lists), for comparing a recorded
    identity with the one the config gives now."""
    return json.loads(json.dumps(obj, sort_keys=True, default=str))


def _flat(d: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in d.items():
        if isinstance(v, Mapping):
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def differences(recorded: Mapping[str, Any], now: Mapping[str, Any], prefix: str = "") -> list[str]:
    """'key before -> now' for every (dotted) key whose value differs."""
    a, b = _flat(jsonable(recorded), prefix), _flat(jsonable(now), prefix)
    return [
        f"{k} {json.dumps(a.get(k))} -> {json.dumps(b.get(k))}"
        for k in sorted(set(a) | set(b))
        if a.get(k) != b.get(k)
    ]


@dataclass(frozen=True)
class DataCheck:
    """What the config's data is known to be, and how runs' data are compared with it."""

    selection: dict[str, Any]  # config.data_selection, JSON form
    fingerprint: str | None  # the content's fingerprint, when known without reading the data
    n_train: int | None  # training images, when known
    how: str  # one line for the footer


def prepared_path(folder: str | Path, study: Study) -> Path:
    """The workflow's record of the study's data (rules/data.smk)."""
    named = [study.study.name] if study.study.name else []
    return Path(folder).joinpath("results", "data", *named, "prepared.json")


def data_check(
    study: Study,
    folder: str | Path,
    fingerprint: str | None = None,
    n_train: int | None = None,
) -> DataCheck:
    """How to tell whether a run's data is the config's: by `fingerprint` when the caller
    computed it; else by the one results/data/prepared.json records for the same data keys;
    else by the data keys alone (a folder that now holds other images goes unnoticed)."""
    selection = jsonable(data_selection(study))
    if fingerprint is not None:
        return DataCheck(selection, fingerprint, n_train, "data compared by content (read now)")
    path = prepared_path(folder, study)
    prepared, _ = read_json(path)
    if (
        prepared is not None
        and jsonable(prepared.get("data")) == selection
        and isinstance(prepared.get("fingerprint"), str)
    ):
        counts = prepared.get("counts") if isinstance(prepared.get("counts"), dict) else {}
        shown = path.relative_to(folder) if path.is_relative_to(folder) else path
        return DataCheck(
            selection,
            prepared["fingerprint"],
            counts.get("n_train"),
            f"data compared by content fingerprint (from {shown})",
        )
    return DataCheck(
        selection,
        None,
        None,
        "data compared by the config's data keys only (no prepared.json for them yet); "
        "--check-data compares the content",
    )


def identity_changes(
    recorded: Mapping[str, Any],
    recorded_selection: Mapping[str, Any] | None,
    expected: Mapping[str, Any],
    check: DataCheck,
) -> list[str]:
    """How a recorded run identity differs from the one the config gives now; [] when it is
    the same run. The data fingerprint is compared when the config's is known; else the data
    keys recorded with the run (when it recorded them)."""
    strip = lambda ident: {  # noqa: E731
        **ident,
        "data": {k: v for k, v in (ident.get("data") or {}).items() if k != "fingerprint"},
    }
    changes = differences(strip(recorded), strip(expected))
    if check.fingerprint is not None:
        before = (recorded.get("data") or {}).get("fingerprint")
        if before != check.fingerprint:
            changes.append(f"data content {before} -> {check.fingerprint}")
    elif recorded_selection is not None:
        changes += differences(recorded_selection, check.selection, prefix="data.")
    return changes


def said(changes: Sequence[str], most: int = 2) -> str:
    more = f" (and {len(changes) - most} more)" if len(changes) > most else ""
    return "; ".join(changes[:most]) + more
