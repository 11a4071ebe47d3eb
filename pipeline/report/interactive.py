"""Interactive 3-D latents of a comparison group: one self-contained HTML page (plotly, offline).

The page shows, for every method of a group and every cell of it, the training trials' latents aligned to
the group's anchor cell exactly as the static latent figures do (:func:`pipeline.report.figures.aligned_latents`:
the paper's Procrustes pick onto the anchor's direction averages; latents of more than 3 dimensions on the
anchor's first 3 principal axes), coloured by reach direction with the static figures' colours
(:data:`pipeline.report.plots.DIRECTION_COLOURS`): thin translucent single trials, thick direction
averages, a dot at the start of each average. A dropdown selects the method and cell (one trace set per
method/cell; selecting one makes only its traces visible); the scene can be rotated, zoomed and hovered,
and a click on a legend entry hides a direction.

What is not drawn is said on the page, never left out silently: 2-D latents (UMAP) cannot be shown in a
3-D scene and are listed with a pointer to their static figure; when a cell has more training trials of a
direction than ``max_trials_per_direction``, only the first ones of each direction are drawn as single
trials (as the static figures choose them) while the averages use every training trial.

The page needs no network and is small enough to show inside a Snakemake report: the report embeds an
HTML result as a base64 ``data:`` URL in a frame, and Chromium-based browsers leave a frame blank when
that URL is over 2 MiB (measured: a page with the full plotly.js bundle, 4.8 MB, showed as a blank frame,
without any error). The page therefore carries the partial plotly.js bundle with the 3-D traces only
(1.75 MB; 0.56 MB gzip-compressed), the coordinates rounded to 1/4094 of each array's range and
compressed (:func:`_pack`), and a few lines of script that decompress both in the browser; a
Content-Security-Policy forbids every request. :func:`sized_page` thins out the single trials until the
page is under :data:`REPORT_MAX_BYTES` and says so on the page.

A notebook can call :func:`latents_page` on cells in memory (e.g.
:func:`pipeline.analysis.published.published_cells`) and show the returned figure (``fig.show()``: the
full-precision data, with the plotly.js of the Python package); :func:`write_latents_page` writes its
page; :func:`latents_3d_page` reads the workflow's stores and writes their :func:`sized_page`.
"""

from __future__ import annotations

import base64
import functools
import gzip
import html
import json
from collections.abc import Mapping, Sequence
from os import PathLike
from pathlib import Path

import numpy as np

from pipeline.analysis.decoding import Cell
from pipeline.data.atomic import atomic_path
from pipeline.errors import InputError
from pipeline.report.figures import aligned_latents
from pipeline.report.plots import DIRECTION_COLOURS

__all__ = [
    "DEFAULT_TRIALS_PER_DIRECTION",
    "LEVELS",
    "PLOTLY_JS",
    "PLOT_ID",
    "REPORT_MAX_BYTES",
    "latents_page",
    "latents_3d_page",
    "page_html",
    "sized_page",
    "write_latents_page",
]

#: single trials drawn per direction and cell unless told otherwise (the averages use every training trial)
DEFAULT_TRIALS_PER_DIRECTION = 25
#: the id of the plot's <div> on the page (fixed, so that the same figure gives a byte-identical page)
PLOT_ID = "latents-3d"
#: the browser may load nothing from anywhere: scripts and styles are inline, images data/blob URIs
_CSP = (
    "default-src 'none'; script-src 'unsafe-inline' 'unsafe-eval'; style-src 'unsafe-inline'; "
    "img-src data: blob:; font-src data:; worker-src blob:"
)
_CONFIG = {"displaylogo": False, "responsive": True, "showSendToCloud": False}  # no upload button
#: levels each coordinate array is rounded to on the page (1/4094 of its range: below a pixel of the plot)
LEVELS = 4095
#: the partial plotly.js bundle the page carries (3-D traces only; pipeline/report/assets/README.md)
PLOTLY_JS = Path(__file__).parent / "assets" / "plotly-gl3d-4.1.1.min.js"
#: the largest page (bytes) a Snakemake HTML report shows in a frame in Chromium-based browsers: the report
#: embeds it as a base64 ``data:`` URL, and Chromium shows a blank frame for URLs over 2 MiB (2 097 152
#: characters; measured with Chromium 156: 2.0 MB shown, 2.1 MB blank, no error logged); 3/4 of that, less
#: the URL's prefix and a margin
REPORT_MAX_BYTES = 1_500_000


def _rgb(colour) -> str:
    return "rgb({},{},{})".format(*(round(255 * c) for c in colour[:3]))


def _gapped(trajectories: np.ndarray) -> np.ndarray:
    """``(trial, bin, 3)`` -> ``(trial * (bin + 1), 3)`` float32, a NaN row after each trial: one line
    trace draws every trial, with gaps between them."""
    n, bins, k = trajectories.shape
    out = np.full((n, bins + 1, k), np.nan, dtype=np.float32)
    out[:, :bins] = trajectories
    return out.reshape(-1, k)


def _cell_traces(latent: np.ndarray, classes: np.ndarray, max_trials: int | None, go) -> tuple[list, int, int]:
    """The traces of one cell (single trials and average of each direction, start dots), the number of
    single trials drawn and of training trials with a known direction."""
    traces, starts, start_colours, drawn, known = [], [], [], 0, 0
    for d, colour in enumerate(DIRECTION_COLOURS):
        idx = np.flatnonzero(classes == d)
        if idx.size == 0:
            continue
        known += idx.size
        rgb, name = _rgb(colour), f"{45 * d}°"
        single = idx if max_trials is None else idx[:max_trials]
        drawn += single.size
        line = _gapped(latent[single])
        traces.append(
            go.Scatter3d(
                x=line[:, 0],
                y=line[:, 1],
                z=line[:, 2],
                mode="lines",
                line={"color": rgb, "width": 1.5},
                opacity=0.35,
                name=f"{name} single trials",
                legendgroup=name,
                showlegend=False,
                hoverinfo="name",
                visible=False,
            )
        )
        avg = latent[idx].mean(axis=0).astype(np.float32)
        traces.append(
            go.Scatter3d(
                x=avg[:, 0],
                y=avg[:, 1],
                z=avg[:, 2],
                mode="lines",
                line={"color": rgb, "width": 7},
                name=name,
                legendgroup=name,
                hovertemplate=f"{name} average ({idx.size} trials)<extra></extra>",
                visible=False,
            )
        )
        starts.append(avg[0])
        start_colours.append(rgb)
    if starts:
        start = np.asarray(starts, dtype=np.float32)
        traces.append(
            go.Scatter3d(
                x=start[:, 0],
                y=start[:, 1],
                z=start[:, 2],
                mode="markers",
                marker={"color": start_colours, "size": 5, "line": {"color": "black", "width": 1}},
                name="start",
                hoverinfo="name",
                visible=False,
            )
        )
    return traces, drawn, known


def latents_page(
    cells: Mapping[str, Sequence[Cell]],
    *,
    anchor: str | None = None,
    max_trials_per_direction: int | None = DEFAULT_TRIALS_PER_DIRECTION,
    title: str | None = None,
):
    """The interactive 3-D latent figure of one comparison group (in memory; no file is read or written).

    Each method's cells are aligned with :func:`pipeline.report.figures.aligned_latents` (the static
    latent figures' alignment: the paper's Procrustes pick onto the anchor cell; latents of more than 3
    dimensions on the anchor's first 3 principal axes). Methods whose latents have fewer than 3
    dimensions are left out with a note. One trace set per method and cell; a dropdown shows one set at a
    time.

    Args:
        cells: method -> its cells in the group (:class:`pipeline.analysis.decoding.Cell`), in the order
            the dropdown lists them.
        anchor: ``"session/area"`` of the anchor cell (per method: its first cell when None or absent).
        max_trials_per_direction: single trials drawn per direction and cell (the first ones, as in the
            static figures); None draws every training trial. The averages always use every training trial.
        title: the page's title (default: "Latents in 3-D").

    Returns:
        plotly.graph_objects.Figure: the figure. ``fig.layout.meta`` holds ``{"title", "notes", "sets"}``:
        the notes the page prints under the plot (what was left out, projected or thinned out) and, per
        dropdown entry, ``{"method", "cell", "traces", "trials", "drawn"}``.

    Raises:
        InputError: no cell at all, or ``max_trials_per_direction`` below 1.
    """
    import plotly.graph_objects as go

    if not any(cells.values()):
        raise InputError("latents", None, "no cell given")
    if max_trials_per_direction is not None and max_trials_per_direction < 1:
        raise InputError("latents", "max_trials_per_direction", f"must be at least 1, got {max_trials_per_direction}")
    title = title or "Latents in 3-D"
    fig = go.Figure()
    sets, notes, thinned = [], [], False
    for method, method_cells in cells.items():
        if not method_cells:
            continue
        aligned = aligned_latents(list(method_cells), anchor)
        if aligned.dim < 3:
            notes.append(
                f"{method}: {aligned.dim}-D latents, not drawn here (a 3-D scene would invent a third axis); "
                f"see its static latent figure (latents_{method}.png)."
            )
            continue
        if aligned.projection:
            notes.append(
                f"{method}: {aligned.projection}, every cell on the anchor's axes after its rotation; the 3 axes "
                f"hold {100 * aligned.explained:.0f} % of the anchor's variance (as the static figure "
                f"latents_{method}.png)."
            )
        axes = aligned.axis_labels or ("latent 1", "latent 2", "latent 3")
        for label, (latent, classes) in aligned.panels.items():
            traces, drawn, known = _cell_traces(latent, np.asarray(classes), max_trials_per_direction, go)
            first = len(fig.data)
            fig.add_traces(traces)
            thinned |= drawn < known
            sets.append(
                {
                    "method": method,
                    "cell": label,
                    "traces": [first, len(fig.data)],
                    "trials": known,
                    "drawn": drawn,
                    "axes": list(axes),
                    "reference": aligned.reference,
                }
            )
    if thinned:
        notes.append(
            f"Single trials: at most the first {max_trials_per_direction} training trials of each direction are "
            "drawn per cell (the dropdown entry's title says how many of how many); the averages use every "
            "training trial."
        )
    n = len(fig.data)

    def heading(s):
        trials = f"{s['trials']} training trials" + (f", {s['drawn']} drawn" if s["drawn"] < s["trials"] else "")
        return f"{title}<br><sup>{s['method']} · {s['cell']} · aligned to {s['reference']} · {trials}</sup>"

    def scene_axes(s):
        return {f"scene.{a}axis.title.text": t for a, t in zip("xyz", s["axes"])}

    buttons = []
    for s in sets:
        visible = [s["traces"][0] <= i < s["traces"][1] for i in range(n)]
        buttons.append(
            {
                "label": f"{s['method']} · {s['cell']}",
                "method": "update",
                "args": [{"visible": visible}, {"title.text": heading(s), **scene_axes(s)}],
            }
        )
    if sets:  # the first set shows when the page opens
        for trace in fig.data[sets[0]["traces"][0] : sets[0]["traces"][1]]:
            trace.visible = True
    first = sets[0] if sets else None
    fig.update_layout(
        title={"text": heading(first) if first else f"{title}<br><sup>no 3-D latents to draw</sup>", "x": 0.5},
        height=760,
        margin={"l": 0, "r": 0, "t": 90, "b": 0},
        legend={"title": {"text": "direction"}, "itemsizing": "constant"},
        scene={
            "aspectmode": "data",
            **{f"{a}axis": {"title": {"text": t}} for a, t in zip("xyz", first["axes"] if first else ("", "", ""))},
        },
        updatemenus=[
            {
                "type": "dropdown",
                "buttons": buttons,
                "active": 0,
                "direction": "down",
                "x": 0.0,
                "xanchor": "left",
                "y": 1.0,
                "yanchor": "top",
                "showactive": True,
            }
        ]
        if len(buttons) > 1
        else [],
        meta={
            "title": title,
            "notes": notes,
            "sets": [{k: s[k] for k in ("method", "cell", "traces", "trials", "drawn")} for s in sets],
        },
    )
    return fig


def _pack(arrays: list[np.ndarray]) -> tuple[bytes, list[list[float]]]:
    """Float arrays -> one compressed buffer and, per array, ``[offset, length, low, step]``.

    Each array is rounded to one of :data:`LEVELS` values spread over its own range (``low + (k - 1) *
    step``, k = 1 ... LEVELS; k = 0 stands for NaN, the gaps between single trials); the codes of all
    arrays, concatenated, are stored as differences from the previous code (int16, little-endian) with the
    low bytes first, then the high bytes, and gzip-compressed. Trajectories move in small steps, so the
    differences are small and compress well (demo group m1_simc, 18 cells: 841 kB of float32 -> 277 kB).
    """
    codes, refs, offset = [], [], 0
    for a in arrays:
        a = np.asarray(a, dtype=np.float64)
        finite = np.isfinite(a)
        low = float(a[finite].min()) if finite.any() else 0.0
        high = float(a[finite].max()) if finite.any() else 0.0
        step = (high - low) / (LEVELS - 1) or 1.0
        k = np.zeros(a.shape, dtype=np.int32)
        k[finite] = np.rint((a[finite] - low) / step).astype(np.int32) + 1
        codes.append(k)
        refs.append([offset, int(a.size), low, step])
        offset += a.size
    flat = np.concatenate(codes) if codes else np.zeros(0, dtype=np.int32)
    delta = np.diff(flat, prepend=0).astype("<i2").view(np.uint8).reshape(-1, 2)
    return _gzip(delta[:, 0].tobytes() + delta[:, 1].tobytes()), refs


def _gzip(data: bytes) -> bytes:
    return gzip.compress(data, compresslevel=9, mtime=0)  # mtime 0: the same input gives the same bytes


def _b64(data: bytes) -> str:
    return base64.b64encode(data).decode("ascii")


@functools.cache
def _plotly_js() -> str:
    """:data:`PLOTLY_JS`, gzip-compressed and base64-encoded (once per process)."""
    return _b64(_gzip(PLOTLY_JS.read_bytes()))


_LOADER = """
(async () => {
  const inflate = async (id, as) => {
    const bytes = Uint8Array.from(atob(document.getElementById(id).textContent.trim()), c => c.charCodeAt(0));
    const response = new Response(new Blob([bytes]).stream().pipeThrough(new DecompressionStream('gzip')));
    return as === 'text' ? response.text() : new Uint8Array(await response.arrayBuffer());
  };
  (0, eval)(await inflate('plotly-js', 'text'));  // defines window.Plotly
  const fig = JSON.parse(await inflate('figure', 'text'));
  const planes = await inflate('arrays'), n = planes.length / 2, codes = new Int32Array(n);
  for (let i = 0, k = 0; i < n; i++) {
    let d = planes[i] | (planes[n + i] << 8);
    k += d > 32767 ? d - 65536 : d;
    codes[i] = k;
  }
  for (const trace of fig.data) {
    for (const axis of ['x', 'y', 'z']) {
      const [offset, length, low, step] = trace[axis].packed, values = new Float32Array(length);
      for (let i = 0; i < length; i++) {
        const k = codes[offset + i];
        values[i] = k === 0 ? NaN : low + (k - 1) * step;
      }
      trace[axis] = values;
    }
  }
  await Plotly.newPlot(%(id)s, fig.data, fig.layout, %(config)s);
})().catch(error => {
  document.getElementById(%(id)s).textContent = 'The plot could not be drawn: ' + error;
  console.error(error);
});
"""


def page_html(fig) -> str:
    """The self-contained HTML page of a :func:`latents_page` figure, small enough to show inside a
    Snakemake report (see :data:`REPORT_MAX_BYTES`; :func:`latents_3d_page` keeps it there).

    The page carries the partial plotly.js bundle with the 3-D traces (:data:`PLOTLY_JS`) and the figure,
    each gzip-compressed and base64-encoded; the coordinates are rounded to :data:`LEVELS` levels of each
    array's range (:func:`_pack`). A small script decompresses them in the browser (``DecompressionStream``:
    Chrome 80, Firefox 113, Safari 16.4 and later) and draws the plot; the figure's notes are printed under
    it. A Content-Security-Policy forbids every request: the page works offline and cannot leak.
    """
    import plotly.io as pio

    meta = fig.layout.meta or {}
    figure = json.loads(pio.to_json(fig, validate=False))  # plotly's own encoding (arrays as base64 bdata)
    arrays = []
    for trace, original in zip(figure["data"], fig.data):
        for axis in "xyz":
            arrays.append(np.asarray(getattr(original, axis), dtype=np.float64))
            trace[axis] = {"packed": len(arrays) - 1}
    packed, refs = _pack(arrays)
    for trace in figure["data"]:
        for axis in "xyz":
            trace[axis] = {"packed": refs[trace[axis]["packed"]]}
    figure_json = json.dumps(figure, separators=(",", ":"), sort_keys=True).encode()
    notes = "".join(f"<li>{html.escape(note)}</li>" for note in meta.get("notes", []))
    counts: dict[str, int] = {}
    for s in meta.get("sets", []):
        counts[s["method"]] = counts.get(s["method"], 0) + 1
    drawn = ", ".join(f"{m} ({n} cell{'s' * (n > 1)})" for m, n in counts.items()) or "none"
    how = (
        "Pick a method and cell in the dropdown (top left); drag to rotate, scroll to zoom, click a direction "
        "in the legend to hide it. Thin lines: single training trials; thick lines: direction averages; dots: "
        "where the averages start."
    )
    loader = _LOADER % {"id": json.dumps(PLOT_ID), "config": json.dumps(_CONFIG, sort_keys=True)}
    data = "".join(
        f"<script type='application/octet-stream' id='{name}'>{payload}</script>\n"
        for name, payload in (
            ("plotly-js", _plotly_js()),
            ("figure", _b64(_gzip(figure_json))),
            ("arrays", _b64(packed)),
        )
    )
    return (
        "<!DOCTYPE html>\n<html lang='en'>\n<head>\n<meta charset='utf-8'>\n"
        f"<meta http-equiv='Content-Security-Policy' content=\"{_CSP}\">\n"
        f"<title>{html.escape(str(meta.get('title', 'Latents in 3-D')))}</title>\n"
        "<style>body{font-family:sans-serif;margin:0 1em}.notes{font-size:14px;color:#333;max-width:70em}"
        f"#{PLOT_ID}{{height:{fig.layout.height or 760}px}}</style>\n"
        "</head>\n<body>\n"
        f"<div id='{PLOT_ID}'></div>\n<div class='notes'><p>{html.escape(how)}</p>\n"
        f"<p>Methods drawn: {html.escape(drawn)}.</p>" + (f"<ul>{notes}</ul>" if notes else "") + "</div>\n"
        f"{data}<script>{loader}</script>\n</body>\n</html>\n"
    )


def write_latents_page(fig, out: str | PathLike) -> Path:
    """Write :func:`page_html` of ``fig`` to ``out`` atomically; returns ``out``. The same figure gives
    the same bytes."""
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(page_html(fig), encoding="utf-8")
    return out


def sized_page(
    cells: Mapping[str, Sequence[Cell]],
    *,
    anchor: str | None = None,
    max_trials_per_direction: int = DEFAULT_TRIALS_PER_DIRECTION,
    title: str | None = None,
    max_bytes: int | None = REPORT_MAX_BYTES,
):
    """:func:`latents_page` and its :func:`page_html`, with fewer single trials per direction when the
    page would be larger than ``max_bytes`` (halved until it fits, down to 1; a note on the page says so).
    :data:`REPORT_MAX_BYTES` keeps the page visible inside a Snakemake report in every browser; None: no
    limit. Returns ``(figure, page)``."""
    trials = max_trials_per_direction
    while True:
        fig = latents_page(cells, anchor=anchor, max_trials_per_direction=trials, title=title)
        text = page_html(fig)
        if max_bytes is None or len(text.encode()) <= max_bytes or trials <= 1:
            break
        trials = max(1, trials // 2)
    if trials < max_trials_per_direction:
        meta = dict(fig.layout.meta)
        meta["notes"] = [
            *meta["notes"],
            f"At most {trials} single trials per direction are drawn (not {max_trials_per_direction}) so that "
            f"the page stays under {max_bytes / 1e6:.1f} MB and shows inside the Snakemake report.",
        ]
        fig.layout.meta = meta
        text = page_html(fig)
    return fig, text


def latents_3d_page(
    stores: Mapping[str, Sequence[tuple[str | PathLike, str | PathLike]]],
    out: str | PathLike,
    *,
    anchor: str | None = None,
    max_trials_per_direction: int = DEFAULT_TRIALS_PER_DIRECTION,
    title: str | None = None,
    max_bytes: int | None = REPORT_MAX_BYTES,
) -> Path:
    """Read each method's cells (:meth:`pipeline.analysis.decoding.Cell.load`, as the static latent figures
    do) and write their :func:`sized_page` to ``out`` atomically.

    Args:
        stores: method -> its cells' ``(embedding store, prepared store)`` pairs.
    """
    cells = {method: Cell.load_all(pairs) for method, pairs in stores.items()}
    _, text = sized_page(
        cells, anchor=anchor, max_trials_per_direction=max_trials_per_direction, title=title, max_bytes=max_bytes
    )
    out = Path(out)
    with atomic_path(out) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return out
