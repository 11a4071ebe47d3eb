"""The interactive 3-D latent page (pipeline/report/interactive.py) on the NER authors' own embeddings
(../shared/data/real/ner_paper_results), opened in headless Chromium: it draws (WebGL, checked in a
screenshot), its dropdown switches the method and cell, its compressed coordinates arrive as drawn in
memory, it makes no request and logs no error, and it stays small enough for a Snakemake report's frame;
latents of other than 3 dimensions are projected or left out, each with a note on the page. (The demo's
pages inside its report: tests/workflow/test_workflow.py.)"""

from __future__ import annotations

import numpy as np
import pytest

from pipeline.analysis.alignment import direction_averages
from pipeline.errors import InputError
from pipeline.report.figures import aligned_latents
from pipeline.report.interactive import (
    LEVELS,
    PLOT_ID,
    PLOTLY_JS,
    REPORT_MAX_BYTES,
    latents_page,
    page_html,
    sized_page,
    write_latents_page,
)
from tests.support.authors import authors_cell
from tests.support.browser import colourful_pixels, render_page, requires_chromium
from tests.support.paths import requires_real

pytestmark = [requires_real, pytest.mark.realdata]

ANCHOR, DATES = "161007", ("161007", "150629", "161014")  # 161014: 592 training trials, thinned out


@pytest.fixture(scope="module")
def cells():
    return {m: [authors_cell(m, d) for d in DATES] for m in ("NER", "CEBRA3D")}


def _sets(fig):
    return fig.layout.meta["sets"]


def test_page_aligns_each_cell_to_the_anchor_and_says_what_it_thins_out(cells):
    fig = latents_page(cells, anchor=ANCHOR, max_trials_per_direction=25)
    sets = _sets(fig)
    assert [(s["method"], s["cell"]) for s in sets] == [
        (m, f"{d} (anchor)" if d == ANCHOR else d) for m in cells for d in DATES
    ]
    labels = [b.label for b in fig.layout.updatemenus[0].buttons]
    assert labels == [f"{s['method']} · {s['cell']}" for s in sets]
    # each dropdown entry shows exactly its own traces; the first is visible on opening
    for s, button in zip(sets, fig.layout.updatemenus[0].buttons):
        lo, hi = s["traces"]
        assert button.args[0]["visible"] == [lo <= i < hi for i in range(len(fig.data))]
    assert [i for i, t in enumerate(fig.data) if t.visible is True] == list(range(*sets[0]["traces"]))
    for method, method_cells in cells.items():
        anchor = method_cells[0]
        anchor_avg = direction_averages(anchor.training_trials().latent, anchor.training_trials().classes)
        static = aligned_latents(method_cells, ANCHOR).panels  # what the static latent figure draws
        for cell, s in zip(method_cells, [s for s in sets if s["method"] == method]):
            train = cell.training_trials()
            assert s["trials"] == train.latent.shape[0] and s["drawn"] == min(
                s["trials"], sum(min(25, int((train.classes == d).sum())) for d in range(8))
            )
            averages = [t for t in fig.data[slice(*s["traces"])] if t.name.endswith("°")]
            drawn = np.stack([np.stack([t.x, t.y, t.z], axis=1) for t in averages])
            assert drawn.shape == (8, 40, 3)
            np.testing.assert_allclose(drawn, direction_averages(*static[s["cell"]]), atol=1e-6)
            if cell is anchor:  # the anchor as it is
                np.testing.assert_allclose(drawn, anchor_avg, atol=1e-6)
            else:  # rotated onto the anchor: much closer to its averages than before
                before = np.linalg.norm(direction_averages(train.latent, train.classes) - anchor_avg)
                assert np.linalg.norm(drawn - anchor_avg) < 0.6 * before, (method, cell.name)
    thinned = [s for s in sets if s["drawn"] < s["trials"]]
    assert [s["cell"] for s in thinned] == ["161014", "161014"]
    assert any("first 25 training trials of each direction" in n for n in fig.layout.meta["notes"])
    assert "592 training trials, 200 drawn" in fig.layout.updatemenus[0].buttons[2].args[1]["title.text"]


def test_other_dimensions_are_projected_or_left_out_with_a_note(cells):
    """16-D latents (here: NER's 3-D latents placed in a random 3-D subspace of 16 dimensions) are drawn on
    the anchor's first 3 principal axes, which must keep their geometry; 2-D latents are not drawn."""
    from dataclasses import replace

    basis = np.linalg.qr(np.random.default_rng(0).normal(size=(16, 3)))[0].T  # (3, 16), orthonormal rows
    ner = cells["NER"]
    fig = latents_page(
        {
            "ner": ner,
            "wide": [replace(c, latent=c.latent @ basis) for c in ner],
            "flat": [replace(c, latent=c.latent[..., :2]) for c in ner],
        },
        anchor=ANCHOR,
    )
    sets = _sets(fig)
    assert [s["method"] for s in sets] == ["ner"] * 3 + ["wide"] * 3  # no "flat" entry
    notes = " ".join(fig.layout.meta["notes"])
    assert "flat: 2-D latents, not drawn here" in notes
    assert "wide: 16-D latents on the first 3 principal axes of the anchor's training latents" in notes
    assert "hold 100 % of the anchor's variance" in notes
    wide_button = fig.layout.updatemenus[0].buttons[3]
    assert [wide_button.args[1][f"scene.{a}axis.title.text"] for a in "xyz"] == ["PC1", "PC2", "PC3"]

    def averages(s):
        return np.stack([np.stack([t.x, t.y, t.z], 1) for t in fig.data[slice(*s["traces"])] if t.name.endswith("°")])

    for s3, s16 in zip(sets[:3], sets[3:]):  # the same shapes: pairwise distances of the averages agree
        a, b = averages(s3).reshape(-1, 3), averages(s16).reshape(-1, 3)
        d3 = np.linalg.norm(a[:, None] - a[None], axis=-1)
        d16 = np.linalg.norm(b[:, None] - b[None], axis=-1)
        np.testing.assert_allclose(d16, d3, atol=2e-3)
    only_flat = latents_page({"flat": [replace(c, latent=c.latent[..., :2]) for c in ner]})
    assert not _sets(only_flat) and not only_flat.data and "no 3-D latents" in only_flat.layout.title.text
    assert "<li>flat: 2-D latents, not drawn here" in page_html(only_flat)  # the note is on the page
    with pytest.raises(InputError):
        latents_page({"ner": []})
    with pytest.raises(InputError, match="max_trials_per_direction"):
        latents_page(cells, max_trials_per_direction=0)


PICK = """(async (entry) => {
  const gd = document.getElementById(%(id)r);
  const click = el => el.dispatchEvent(new MouseEvent('click', {bubbles: true}));
  click(gd.querySelector('.updatemenu-header'));
  await new Promise(ok => setTimeout(ok, 100));
  const buttons = [...gd.querySelectorAll('.updatemenu-dropdown-button')];
  click(buttons[entry]);
  await new Promise(ok => setTimeout(ok, 100));
  return {labels: buttons.map(b => b.textContent), title: gd.layout.title.text,
          visible: gd.data.flatMap((t, i) => t.visible === true ? [i] : []),
          modebar: [...gd.querySelectorAll('.modebar-btn')].map(b => b.getAttribute('data-title'))};
})(%(entry)d)"""
HIDE_ALL = f"Plotly.restyle('{PLOT_ID}', {{visible: false}}).then(() => true)"
#: the coordinates of traces as plotly.js holds them (NaN -> null)
COORDS = """(traces => {
  const gd = document.getElementById(%(id)r);
  return traces.map(i => ['x', 'y', 'z'].map(a => Array.from(gd.data[i][a], v => Number.isNaN(v) ? null : v)));
})(%(traces)s)"""
READY = f"document.readyState === 'complete' && !!document.querySelector('#{PLOT_ID} #scene canvas')"


def test_page_is_thinned_to_fit_a_report_and_says_so(cells):
    import plotly

    full, page = sized_page(cells, anchor=ANCHOR, max_bytes=None)
    assert len(page.encode()) > 900_000 and page == page_html(full)
    fig, page = sized_page(cells, anchor=ANCHOR, max_bytes=900_000)
    assert len(page.encode()) <= 900_000
    assert {s["drawn"] for s in _sets(fig) if s["cell"] == "161014"} == {8 * 12}  # 25 -> 12 per direction
    assert "At most 12 single trials per direction are drawn (not 25)" in page
    # the page's plotly.js is the version the pinned Python plotly writes figures for
    version = plotly.offline.get_plotlyjs_version()
    assert PLOTLY_JS.name == f"plotly-gl3d-{version}.min.js" and f"v{version}" in PLOTLY_JS.read_text()[:200]


@requires_chromium
def test_page_draws_in_a_browser_offline(cells, tmp_path):
    fig = latents_page(cells, anchor=ANCHOR, title="Chewie M1: the authors' embeddings")
    page = write_latents_page(fig, tmp_path / "latents_3d.html")
    assert write_latents_page(fig, tmp_path / "again.html").read_bytes() == page.read_bytes()  # deterministic
    text = page.read_text()
    assert "<script src=" not in text and "Content-Security-Policy" in text
    assert "<p>Methods drawn: NER (3 cells), CEBRA3D (3 cells).</p>" in text
    # the 3-D plotly.js bundle (0.74 MB as gzip + base64) and 6 cells' coordinates: fits a report's frame
    assert 750_000 < page.stat().st_size < REPORT_MAX_BYTES
    sets = _sets(fig)
    entry = 5  # CEBRA3D · 161014
    lo, hi = sets[entry]["traces"]
    compared = [lo, lo + 1, hi - 1]  # single trials and average of 0°, start dots
    render = render_page(
        page,
        ready=READY,
        clip=f"document.querySelector('#{PLOT_ID} #scene')",
        steps=[PICK % {"id": PLOT_ID, "entry": entry}, COORDS % {"id": PLOT_ID, "traces": compared}, HIDE_ALL],
        timeout_s=60,
    )
    assert render.errors == [] and render.requests == [], (render.errors, render.requests)
    picked = render.values[0]
    assert picked["labels"] == [f"{s['method']} · {s['cell']}" for s in sets]
    assert picked["visible"] == list(range(*sets[entry]["traces"])) and "CEBRA3D · 161014" in picked["title"]
    assert not any("Share" in (t or "") for t in picked["modebar"])  # no upload button
    for i, coords in zip(compared, render.values[1]):  # rounded to 1/(LEVELS - 1) of each array's range
        for axis, got in zip("xyz", coords):
            want = np.asarray(getattr(fig.data[i], axis), dtype=float)
            got = np.array([np.nan if v is None else v for v in got])
            step = (np.nanmax(want) - np.nanmin(want)) / (LEVELS - 1)
            np.testing.assert_allclose(got, want, atol=0.51 * step + 1e-6, equal_nan=True)
    opened, switched, _, hidden = (colourful_pixels(png) for png in render.screenshots)
    assert opened[0] > 5000 and opened[1] > 500, opened  # the trajectories drawn in WebGL, many colours
    assert switched[0] > 5000 and switched[1] > 500 and render.screenshots[1] != render.screenshots[0], switched
    assert hidden[0] < 200, hidden  # negative control: the same scene without traces has next to no colour
