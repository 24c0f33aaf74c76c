"""The smoke study's Snakemake report, opened in a real headless browser (Debian's Chromium,
driven by Playwright): it loads offline without console errors, and every figure and table of
the study opens and is visible. Screenshots of each view land in the test's tmp folder (and
in $REPORT_SCREENSHOTS when set, to look at them)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from conftest import need_system_tools
from playwright import sync_api

# Each category of the report and the entries the smoke study puts there (labels from the
# workflow's report() declarations).
EXPECTED = {
    "Figures": ["Figure 6", "Figure 7"],
    "Probes of trained nets": [
        "block changes of residual nets",
        "Veit Fig. 3: single-block lesions",
        "Veit Fig. 5a: k-block lesions",
        "Veit Fig. 6: path lengths and gradients",
        "Li Fig. 5: loss landscapes",
    ],
    "Tables": ["both families", "ImageNet-style family", "plain vs residual", "runs", "Table 6"],
}
# Offline, no background traffic: the report must need nothing from the network.
CHROMIUM_FLAGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-extensions",
    "--no-first-run",
]
VIEWPORT = {"width": 1400, "height": 900}


@pytest.fixture(scope="module")
def browser():
    need_system_tools(("chromium",), "the report browser test")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=shutil.which("chromium"), args=CHROMIUM_FLAGS)
        yield b
        b.close()


def open_report(browser, report: Path, problems: list[str]):
    page = browser.new_page(viewport=VIEWPORT)
    page.on("console", lambda m: m.type == "error" and problems.append(f"console: {m.text}"))
    page.on("pageerror", lambda e: problems.append(f"page error: {e}"))
    page.on("requestfailed", lambda r: problems.append(f"request failed: {r.url}"))
    page.on(
        "request",
        lambda r: (
            r.url.startswith(("file:", "data:", "blob:", "about:"))
            or problems.append(f"network request: {r.url}")
        ),
    )
    page.goto(report.as_uri())
    page.wait_for_load_state("networkidle")
    return page


def shoot(page, tmp_path: Path, name: str) -> None:
    path = tmp_path / f"{name}.png"
    page.screenshot(path=path)
    if os.environ.get("REPORT_SCREENSHOTS"):
        keep = Path(os.environ["REPORT_SCREENSHOTS"])
        keep.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, keep / path.name)


def inside_viewport(box: dict | None) -> bool:
    return bool(box) and box["width"] > 100 and box["height"] > 100 and box["x"] >= 0


def test_report_opens_offline_and_shows_every_figure_and_table(browser, smoke_study, tmp_path):
    problems: list[str] = []
    report = smoke_study / "report.html"
    page = open_report(browser, report, problems)
    shoot(page, tmp_path, "home")
    home = page.inner_text("body")
    # The description states this study's own recipe, not only the paper's.
    assert "This study" in home and "batch 64, lr 0.1, multiplied by 0.1 at 40 and 60" in home, home
    assert "80 iterations in all" in home, home

    for category, entries in EXPECTED.items():
        page.goto(report.as_uri())
        page.wait_for_load_state("networkidle")
        page.get_by_role("link", name=category, exact=True).click()
        rows = page.locator("tbody tr")
        rows.first.wait_for()
        assert sorted(rows.locator("td:first-child").all_inner_texts()) == sorted(entries)
        for i, entry in enumerate(rows.locator("td:first-child").all_inner_texts()):
            rows.nth(i).locator("a[iconname=eye]").click()
            if category == "Tables":
                frame_el = page.locator("iframe").first
                frame_el.wait_for(state="visible")
                assert inside_viewport(frame_el.bounding_box()), entry
                table = frame_el.content_frame.locator("table")
                table.wait_for(state="visible")
                assert table.locator("th").count() >= 3, entry
                if entry not in ("ImageNet-style family",):  # the smoke study has none
                    assert table.locator("tbody tr").count() >= 1, entry
            else:
                img = page.locator("img[src^='data:image/png']").first
                img.wait_for(state="visible")
                assert inside_viewport(img.bounding_box()), entry
                # decoded, not a broken image
                assert img.evaluate("e => e.complete && e.naturalWidth > 300"), entry
            shoot(page, tmp_path, f"{category}-{entry}".replace(" ", "_").replace(":", ""))
    page.close()
    assert not problems, problems
