"""Tables as the report shows them: the HTML page has the same cells as the markdown."""

import math

import pandas as pd

from resnet_repro.tables.text import NULL_TEXT, to_html, to_markdown


def frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "model": ["plain20", "resnet<20>"],
            "test_error_pct": [8.754, math.nan],
            "seeds": [1, 2],
            "ok": [True, False],
        }
    )


def test_html_has_the_markdown_cells_escaped_with_numbers_right_aligned():
    page = to_html(frame(), "Table 6 & co", note="Reported: a paper.")
    assert page.startswith("<!DOCTYPE html>")
    assert "<h1>Table 6 &amp; co</h1>" in page
    assert "resnet&lt;20&gt;" in page and "resnet<20>" not in page
    assert "<td class=num>8.75</td>" in page and "8.754" not in page
    assert f"<td class=num>{NULL_TEXT}</td>" in page and "nan" not in page.lower()
    assert "<td>yes</td>" in page and "<td>no</td>" in page  # booleans are not numbers
    assert '<p class="note">Reported: a paper.</p>' in page
    for cell in ("plain20", "8.75", NULL_TEXT, "yes"):
        assert cell in to_markdown(frame())


def test_html_of_an_empty_table_says_why():
    page = to_html(frame().iloc[:0], "ImageNet-style family", empty="None in this study.")
    assert "<th>model</th>" in page and "<tbody>\n\n</tbody>" in page
    assert "<p>None in this study.</p>" in page
