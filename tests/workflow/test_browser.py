"""The HTML report, opened in a real headless browser: figures must render, not merely exist.

A tiny throwaway workflow (two matplotlib PNGs of known pixel size, one TSV and two HTML pages, each
marked for the report) is run once; its report is clicked through in Chromium (tests/support/browser.py).
A copy of the report built after one PNG was overwritten with garbage must be caught; so must an HTML
page too large for the report's frame (Chromium shows no ``data:`` URL over 2 MiB: the reason the
interactive latent pages are kept under 1.5 MB, pipeline/report/interactive.py). Skipped when no
Chromium is installed (Debian: the packages listed in envs/apt.txt).
"""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from tests.support.browser import render_report, requires_chromium

pytestmark = [requires_chromium, pytest.mark.slow, pytest.mark.xdist_group("browser")]

SNAKEFILE = textwrap.dedent(
    """
    rule all:
        input:
            "results/fig_a.png",
            "results/fig_b.png",
            "results/table.tsv",
            "results/page.html",
            "results/big_page.html",


    rule pages:
        output:
            small=report("results/page.html", caption="report/fig.rst", category="Pages"),
            big=report("results/big_page.html", caption="report/fig.rst", category="Pages"),
        run:
            box = "<div style='width:400px;height:300px;background:rgb(200,40,40)'></div>"
            with open(output.small, "w") as f:
                f.write(f"<!doctype html><html><body>{box}</body></html>")
            with open(output.big, "w") as f:  # 2.3 MB as the report's base64 data: URL
                f.write(f"<!doctype html><html><body>{box}<!--{'x' * 1_700_000}--></body></html>")


    rule plots:
        output:
            a=report(
                "results/fig_a.png",
                caption="report/fig.rst",
                category="Figures",
                subcategory="Labelled",
                labels={"figure": "rising line"},
            ),
            b=report(
                "results/fig_b.png",
                caption="report/fig.rst",
                category="Figures",
                subcategory="Plain",
            ),
            table=report("results/table.tsv", caption="report/table.rst", category="Tables"),
        run:
            import matplotlib

            matplotlib.use("Agg")
            import matplotlib.pyplot as plt

            for path, size, ys in ((output.a, (4, 3), [1, 3]), (output.b, (3, 2), [3, 1])):
                fig, ax = plt.subplots(figsize=size, dpi=50)
                ax.plot(ys)
                fig.savefig(path)
                plt.close(fig)
            with open(output.table, "w") as f:
                f.write("method\\tscore\\nA\\t0.5\\n")
    """
)
FIG_A, FIG_B, TABLE = "results/fig_a.png", "results/fig_b.png", "results/table.tsv"
PAGE, BIG_PAGE = "results/page.html", "results/big_page.html"
SIZES = {FIG_A: (200, 150), FIG_B: (150, 100)}  # figsize (inches) x 50 dpi


def _snakemake(workdir: Path, *args: str):
    exe = Path(sys.executable).with_name("snakemake")
    proc = subprocess.run([str(exe), *args], cwd=workdir, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, f"snakemake {' '.join(args)} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-3000:]}"


@pytest.fixture(scope="module")
def reports(tmp_path_factory):
    """(good report, report whose fig_b.png is garbage), both from one workflow run."""
    wd = tmp_path_factory.mktemp("reportdemo")
    (wd / "Snakefile").write_text(SNAKEFILE)
    (wd / "report").mkdir()
    (wd / "report" / "fig.rst").write_text("A line plot.\n")
    (wd / "report" / "table.rst").write_text("A table.\n")
    _snakemake(wd, "--cores", "1", "--quiet")
    _snakemake(wd, "--report", "good.html")
    (wd / FIG_B).write_bytes(b"this is not a PNG " * 64)
    _snakemake(wd, "--report", "bad.html")
    return wd / "good.html", wd / "bad.html"


def test_report_figures_render_in_a_browser(reports, tmp_path):
    good, _ = reports
    render = render_report(good, timeout_s=60, screenshot_dir=tmp_path / "shots", open_html=[PAGE])
    assert render.errors == [], render.summary()
    assert {e.path for e in render.entries} == {FIG_A, FIG_B, TABLE, PAGE, BIG_PAGE}, render.summary()
    assert {e.path: (e.category, e.subcategory) for e in render.entries} == {
        FIG_A: ("Figures", "Labelled"),
        FIG_B: ("Figures", "Plain"),
        TABLE: ("Tables", "Other"),
        PAGE: ("Pages", "Other"),
        BIG_PAGE: ("Pages", "Other"),
    }
    assert render.frames[PAGE][0] > 100_000, render.summary()  # the red box, drawn in the report's frame
    assert next(e for e in render.entries if e.path == FIG_A).row == ("rising line",)
    assert render.figures == SIZES, render.summary()
    assert render.ok
    assert set(render.screenshots) == set(SIZES)
    assert all(p.stat().st_size > 0 for p in render.screenshots.values())


def test_a_corrupt_figure_is_caught(reports):
    _, bad = reports
    render = render_report(bad, timeout_s=60)
    assert not render.ok
    assert render.figures[FIG_A] == SIZES[FIG_A], render.summary()
    assert render.figures[FIG_B] is None, render.summary()
    assert render.failed_figures == [FIG_B]
    assert any(FIG_B in e and "did not render" in e for e in render.errors), render.summary()


def test_an_html_result_over_2_mib_shows_as_a_blank_frame(reports):
    good, _ = reports
    render = render_report(good, timeout_s=60, open_html=[PAGE, BIG_PAGE], frame_timeout_s=3)
    assert render.frames[PAGE] is not None and render.frames[BIG_PAGE] is None, render.summary()
    assert render.failed_figures == [BIG_PAGE]
    assert any(BIG_PAGE in e and "colourful pixels" in e for e in render.errors), render.summary()


def test_javascript_errors_are_reported(tmp_path):
    """A page with the report's globals but a throwing script: the error must be collected."""
    page = tmp_path / "broken.html"
    page.write_text(
        "<!doctype html><html><body><div id='app'><nav></nav></div>"
        "<script>var results = {}; var categories = {};</script>"
        "<script>console.error('custom failure'); throw new Error('boom');</script>"
        "</body></html>"
    )
    render = render_report(page, timeout_s=30)
    assert render.entries == [] and render.figures == {}
    assert any("boom" in e for e in render.errors), render.errors
    assert any("custom failure" in e for e in render.errors), render.errors
