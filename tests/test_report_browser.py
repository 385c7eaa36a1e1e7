"""The report in a real browser: the tiny end-to-end run's report.html and viewer opened in headless Chromium.

Chromium is Debian's ``chromium`` (scripts/setup.sh installs it; ``PUMBA_CHROMIUM`` names another binary),
driven by Playwright's Python client through ``executable_path``: no browser download, works offline. The
test skips, saying why, where either is missing. Screenshots are kept in ``PUMBA_TEST_ARTIFACTS`` (default:
a pytest temporary folder, printed).
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

CHROMIUM_ARGS = [
    "--no-sandbox",
    "--use-angle=swiftshader",
    "--enable-unsafe-swiftshader",
    "--ignore-gpu-blocklist",
]
# Every figure and table of the default run's report, by its label, and the report's categories.
CATEGORIES = ("Synthesis", "Accuracy", "Runtime", "Data")
LABELS = (
    "synthesis step by step",
    "release recipe's switches",
    "qualitative",
    "dice",
    "hd95",
    "strata",
    "Table 1: datasets",
    "Table 2: accuracy (CSV)",
    "runtime and memory",
    "provenance",
    "NiiVue viewer",
)


def chromium() -> str | None:
    """The Chromium binary: $PUMBA_CHROMIUM, else chromium or chromium-browser on PATH."""
    given = os.environ.get("PUMBA_CHROMIUM")
    if given:
        return given if Path(given).is_file() else None
    return shutil.which("chromium") or shutil.which("chromium-browser")


@pytest.fixture(scope="module")
def browser():
    binary = chromium()
    if binary is None:
        pytest.skip("no Chromium (apt-get install chromium; scripts/setup.sh installs it) or PUMBA_CHROMIUM")
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="playwright not installed (pip install playwright)"
    )
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=binary, args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture(scope="module")
def artifacts(tmp_path_factory) -> Path:
    folder = Path(os.environ.get("PUMBA_TEST_ARTIFACTS") or tmp_path_factory.mktemp("report_screenshots"))
    folder.mkdir(parents=True, exist_ok=True)
    print(f"report screenshots: {folder}")
    return folder


def open_page(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 1000})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(f"page error: {e}"))
    page.on("console", lambda m: m.type == "error" and errors.append(f"console error: {m.text}"))
    page.goto(url, wait_until="load")
    return page, errors


@pytest.mark.slow
def test_report_opens_in_chromium_with_every_figure_and_table(tiny_run, browser, artifacts):
    cwd, run, report = tiny_run
    assert run.returncode == 0, run.stderr[-3000:]
    assert report is not None and report.returncode == 0, report.stderr[-3000:] if report else ""
    html = cwd / "results" / "report.html"
    page, errors = open_page(browser, html.as_uri())
    page.wait_for_timeout(3000)
    text = page.inner_text("body")
    page.screenshot(path=str(artifacts / "report.png"), full_page=True)
    assert "Unexpected indentation" not in text and "Block quote ends" not in text and "ERROR/" not in text
    for category in CATEGORIES:
        assert category in text, f"category {category} missing from the report's front page"
    source = html.read_text(errors="replace")
    for label in LABELS:
        assert label in source, f"{label} is not in the report"
    seen: set[str] = set()
    for category in CATEGORIES:
        page.get_by_text("Results", exact=True).first.click()
        page.wait_for_timeout(400)
        page.get_by_text(category, exact=True).first.click()
        page.wait_for_timeout(600)
        listing = page.inner_text("body")
        seen |= {label for label in LABELS if label in listing}
        # subcategories (Figure 1, Table 2, ...) are folders: open each, then come back
        folders = [
            f
            for f in ("Figure 1", "Figure 2", "Figure 3", "Table 2", "Viewer", "Other")
            if page.get_by_text(f, exact=True).count()  # a sidebar entry, not the description's words
        ]
        for folder in folders:
            page.get_by_text(folder, exact=True).first.click()
            page.wait_for_timeout(500)
            seen |= {label for label in LABELS if label in page.inner_text("body")}
            page.get_by_text(category, exact=True).first.click()
            page.wait_for_timeout(400)
        page.screenshot(path=str(artifacts / f"report-{category}.png"))
    assert seen == set(LABELS), f"not listed in any category: {sorted(set(LABELS) - seen)}"
    assert errors == []


@pytest.mark.slow
def test_viewer_renders_every_scan_in_chromium(tiny_run, browser, artifacts):
    cwd, run, _ = tiny_run
    assert run.returncode == 0, run.stderr[-3000:]
    viewer = cwd / "results" / "report" / "viewer.html"
    if not viewer.exists():
        pytest.skip("no viewer: the NiiVue bundle is missing (bash scripts/setup.sh fetches it)")
    page, errors = open_page(browser, viewer.as_uri())
    page.wait_for_function("document.body.dataset.loaded || document.body.dataset.error", timeout=60_000)
    assert page.evaluate("document.body.dataset.error") is None
    options = page.eval_on_selector_all("#scan option", "els => els.map(e => e.textContent)")
    assert len(options) >= 2
    for index, name in enumerate(options):
        page.select_option("#scan", str(index))
        page.wait_for_function(f"document.body.dataset.loaded === {name!r}", timeout=60_000)
        layers = page.evaluate("document.querySelectorAll('#methods input').length")
        assert layers >= 2, f"{name}: no mask layers"
    page.screenshot(path=str(artifacts / "viewer.png"))
    # the canvas was drawn: its pixels are not one background colour
    import io

    from PIL import Image

    shot = Image.open(io.BytesIO(page.locator("#gl").screenshot())).convert("L")
    assert len(shot.getcolors(256) or ()) > 50, "the viewer's canvas is blank"
    assert errors == []
