"""A table's columns, declared once: their names in order and the pandas dtype of each. The
frame, its column order and its dtypes are all built from that one declaration, so a column
cannot be added to the rows and forgotten in the dtypes (or the other way round).

The dtypes: "float64" for numbers (NaN where null), "Int64" for counts (pandas' nullable
integer, so that a missing count stays null instead of turning the column into floats),
"boolean" for yes/no (nullable), "object" for text (None where null; declared rather than
left to pandas, which would infer its `str` dtype for some columns and not for others).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

import pandas as pd

FLOAT = "float64"
INT = "Int64"
BOOL = "boolean"
TEXT = "object"


@dataclass(frozen=True)
class Columns:
    """The columns of one table, in order: (name, dtype) pairs."""

    columns: tuple[tuple[str, str], ...]

    def __post_init__(self) -> None:
        names = [n for n, _ in self.columns]
        if len(set(names)) != len(names):
            raise ValueError(f"a column is declared twice in {names}")

    @property
    def names(self) -> list[str]:
        return [n for n, _ in self.columns]

    @property
    def dtypes(self) -> dict[str, str]:
        return dict(self.columns)

    def frame(self, rows: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
        """The table of `rows` (dicts keyed by column name; a column a row leaves out is null
        in it), in the declared order with the declared dtypes. A key that is not a declared
        column is a ValueError, not a silently dropped value."""
        rows = list(rows)
        unknown = sorted({k for r in rows for k in r} - set(self.names))
        if unknown:
            raise ValueError(f"rows hold the undeclared columns {unknown}")
        return pd.DataFrame(rows, columns=self.names).astype(self.dtypes)


def columns(*pairs: tuple[str, str]) -> Columns:
    """`Columns` from (name, dtype) pairs: columns(("model", TEXT), ("depth", INT), ...)."""
    return Columns(tuple(pairs))
