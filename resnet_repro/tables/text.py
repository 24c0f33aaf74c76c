"""Tables as a reader sees them: the same cells as markdown (README, terminal) and as a small
HTML page (the Snakemake report, which shows HTML and images but offers CSV only as a
download). Floats with a fixed number of decimals, integers as integers, booleans as yes/no,
nulls as a dash; numeric columns right-aligned."""

from __future__ import annotations

import html
import math

import numpy as np
import pandas as pd

NULL_TEXT = "–"  # how a null (None, NaN, NA) is shown


def _is_null(v) -> bool:
    if v is None or v is pd.NA or v is pd.NaT:
        return True
    return isinstance(v, (float, np.floating)) and math.isnan(v)


def _is_number(v) -> bool:
    return isinstance(v, (int, float, np.integer, np.floating)) and not isinstance(
        v, (bool, np.bool_)
    )


def _cell(v, floatfmt: str) -> str:
    if _is_null(v):
        return NULL_TEXT
    if isinstance(v, (bool, np.bool_)):
        return "yes" if v else "no"
    if isinstance(v, (int, np.integer)):
        return str(int(v))
    if isinstance(v, (float, np.floating)):
        return format(float(v), floatfmt)
    return str(v)


def _cells(df: pd.DataFrame, floatfmt: str) -> pd.DataFrame:
    return pd.DataFrame(
        {c: [_cell(v, floatfmt) for v in df[c].tolist()] for c in df.columns},
        columns=list(df.columns),
        dtype=object,
    )


def _numeric(column: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(column.dtype):
        return False
    if pd.api.types.is_numeric_dtype(column.dtype):
        return True
    values = [v for v in column.tolist() if not _is_null(v)]
    return bool(values) and all(_is_number(v) for v in values)


def to_markdown(df: pd.DataFrame, floatfmt: str = ".2f") -> str:
    """A GitHub (pipe) markdown table without the index."""
    colalign = ["right" if _numeric(df[c]) else "left" for c in df.columns]
    return (
        _cells(df, floatfmt).to_markdown(index=False, disable_numparse=True, colalign=colalign)
        + "\n"
    )


_STYLE = """
body { font-family: system-ui, sans-serif; font-size: 14px; color: #1e293b; margin: 8px; }
h1 { font-size: 16px; margin: 0 0 8px 0; }
table { border-collapse: collapse; }
th, td { padding: 3px 10px; border-bottom: 1px solid #e2e8f0; white-space: nowrap; }
th { background: #f1f5f9; text-align: left; }
td.num, th.num { text-align: right; font-variant-numeric: tabular-nums; }
p.note { margin-top: 8px; max-width: 60em; }
"""


def to_html(
    df: pd.DataFrame, title: str, note: str = "", empty: str = "(no rows)", floatfmt: str = ".2f"
) -> str:
    """A standalone HTML page holding the table under `title`, with `note` below it, and
    `empty` in place of the rows when there are none."""
    numeric = [_numeric(df[c]) for c in df.columns]
    cells = _cells(df, floatfmt)

    def row(values, tag):
        return (
            "<tr>"
            + "".join(
                f"<{tag}{' class=num' if num else ''}>{html.escape(str(v))}</{tag}>"
                for v, num in zip(values, numeric, strict=True)
            )
            + "</tr>"
        )

    body = "\n".join(row(r, "td") for r in cells.itertuples(index=False))
    empty = "" if len(df) else f"<p>{html.escape(empty)}</p>"
    note_html = f'<p class="note">{html.escape(note)}</p>' if note else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>\n"
        f"<h1>{html.escape(title)}</h1>\n<table>\n<thead>{row(df.columns, 'th')}</thead>\n"
        f"<tbody>\n{body}\n</tbody>\n</table>\n{empty}{note_html}\n</body></html>\n"
    )
