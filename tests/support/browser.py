"""Open a Snakemake HTML report in headless Chromium and check that its figures render.

`snakemake --report report.html` writes a self-contained single-page app (React): every result is
embedded as a ``data:`` URI in a global ``results`` object, ``categories`` maps
category -> subcategory -> result paths, and nothing is shown until a user clicks through the
navigation bar (menu -> category -> [subcategory] -> the "eye" button of a row), whereupon the
content pane shows an ``<img src="data:...">``. A file that exists is no proof that a figure shows;
:func:`render_report` therefore clicks through the report the way a person would and asks the
browser whether each image decoded.

An HTML result (the interactive 3-D latent pages) is shown by the report in an ``<iframe>`` whose
``src`` is the page's ``data:`` URI; ``render_report(..., open_html=[...])`` shows the named ones and
takes a screenshot of the frame until its plot has drawn. :func:`render_page` opens one HTML page on its
own (``file://``), waits until it is ready, runs optional steps (e.g. picking a dropdown entry), takes a
screenshot after each, and records every request the page made besides itself (a page that must work
offline makes none); :func:`colourful_pixels` says how much of a screenshot is drawn in colour.
Headless Chromium draws WebGL with SwiftShader (software) even under ``--disable-gpu``: measured with
Chromium 156, ``WEBGL_debug_renderer_info`` reports "ANGLE (Google, Vulkan 1.3.0 (SwiftShader Device
(Subzero)), SwiftShader driver)" without any extra flag.

Chromium is driven over the DevTools protocol on ``--remote-debugging-pipe`` (fd 3 in, fd 4 out,
NUL-terminated JSON), so this module needs only the standard library and a Chromium binary
(Debian: ``apt-get install chromium``, see envs/apt.txt); no browser is downloaded. The pixel checks use
Pillow and numpy, imported when called.
"""

from __future__ import annotations

import base64
import fcntl
import json
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "BrowserError",
    "PageRender",
    "colourful_pixels",
    "render_page",
    "ReportEntry",
    "ReportRender",
    "chromium_path",
    "render_report",
    "requires_chromium",
    "skip_without_chromium",
]

CANDIDATES = ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable", "chrome")
IMAGE_TYPES = ("image/png", "image/jpeg", "image/svg+xml")  # shown by the report as <img>
HTML_TYPE = "text/html"  # shown by the report in an <iframe src="data:text/html;...">
VIEWPORT = (1400, 1000)


class BrowserError(RuntimeError):
    """Chromium could not be started, crashed, or the report never came up."""


def chromium_path() -> str | None:
    """The Chromium/Chrome executable to use, or None. ``$CHROMIUM`` overrides the search."""
    env = os.environ.get("CHROMIUM")
    if env:
        found = shutil.which(env)
        return found if found else None
    for name in CANDIDATES:
        found = shutil.which(name)
        if found:
            return found
    return None


_SKIP_REASON = (
    f"no headless browser found (looked for {', '.join(CANDIDATES)} on PATH, or $CHROMIUM); "
    "install the Debian packages in envs/apt.txt: apt-get install chromium"
)


def skip_without_chromium():
    """Skip the calling test (pytest.skip) when no Chromium is installed."""
    import pytest

    if chromium_path() is None:
        pytest.skip(_SKIP_REASON)


try:  # a pytest mark for tests and modules: `pytestmark = requires_chromium`
    import pytest as _pytest

    requires_chromium = _pytest.mark.skipif(chromium_path() is None, reason=_SKIP_REASON)
except ImportError:  # used outside pytest, as a script
    requires_chromium = None


@dataclass(frozen=True)
class ReportEntry:
    """One result of the report, as its navigation shows it."""

    path: str  # key of the result in the report (output path relative to the workdir)
    category: str
    subcategory: str
    row: tuple[str, ...]  # what the row of the results table shows (its labels, or the path)
    mime_type: str

    @property
    def name(self) -> str:
        return " / ".join(x for x in self.row if x) or self.path


@dataclass
class ReportRender:
    """What a browser made of a report.

    entries: the results reached by clicking through the navigation, in order.
    figures: result path -> (naturalWidth, naturalHeight) of each image result (png, jpeg, svg)
        once displayed, or None when it did not decode, was blank, or could not be reached.
    frames: for each HTML result named in ``open_html``: (colourful pixels, distinct colours) of the
        report's screenshot inside the frame that shows it (:func:`colourful_pixels`), or None when it
        could not be shown or stayed without colour.
    errors: JavaScript exceptions, console errors, browser log errors, and problems met on the
        way (an entry that is not reachable, an image that failed), as readable strings.
    screenshots: result path -> PNG file of the page showing it (only with screenshot_dir).
    """

    html: Path
    entries: list[ReportEntry] = field(default_factory=list)
    figures: dict[str, tuple[int, int] | None] = field(default_factory=dict)
    errors: list[str] = field(default_factory=list)
    screenshots: dict[str, Path] = field(default_factory=dict)
    seconds: float = 0.0
    frames: dict[str, tuple[int, int] | None] = field(default_factory=dict)

    @property
    def failed_figures(self) -> list[str]:
        return [p for p, size in self.figures.items() if size is None] + [
            p for p, drawn in self.frames.items() if drawn is None
        ]

    @property
    def ok(self) -> bool:
        return not self.errors and not self.failed_figures

    def summary(self) -> str:
        lines = [
            f"{self.html}: {len(self.entries)} entries, {len(self.figures)} figures "
            f"({len(self.failed_figures)} failed), {len(self.errors)} errors, {self.seconds:.1f} s"
        ]
        lines += [f"  figure {p}: {s[0]}x{s[1]}" if s else f"  figure {p}: FAILED" for p, s in self.figures.items()]
        lines += [
            f"  frame {p}: {d[0]} colourful pixels, {d[1]} colours" if d else f"  frame {p}: FAILED"
            for p, d in self.frames.items()
        ]
        lines += [f"  error: {e}" for e in self.errors]
        return "\n".join(lines)


# --------------------------------------------------------------------------------------------
# A minimal DevTools-protocol client over --remote-debugging-pipe.


class _Chromium:
    def __init__(self, exe: str, *, timeout_s: float, no_sandbox: bool | None, extra_args=()):
        self.timeout_s = timeout_s
        self.profile = tempfile.mkdtemp(prefix="report-browser-")
        self.stderr = open(os.path.join(self.profile, "stderr.log"), "w+b")
        if no_sandbox is None:  # Chromium refuses to start as root with its sandbox on
            no_sandbox = os.geteuid() == 0 or bool(os.environ.get("CHROMIUM_NO_SANDBOX"))
        args = [
            exe,
            "--headless=new",
            "--remote-debugging-pipe",
            f"--user-data-dir={self.profile}",
            "--disable-gpu",
            "--disable-dev-shm-usage",  # containers often have a tiny /dev/shm
            "--no-first-run",
            "--no-default-browser-check",
            "--disable-extensions",
            "--disable-background-networking",
            "--disable-component-update",
            "--disable-sync",
            "--mute-audio",
            "--hide-scrollbars",
            f"--window-size={VIEWPORT[0]},{VIEWPORT[1]}",
            *(["--no-sandbox"] if no_sandbox else []),
            *extra_args,
            "about:blank",
        ]
        # Our ends of the two pipes, and Chromium's ends moved above fd 9 so that dup2 onto 3 and 4
        # in the child cannot clobber one with the other.
        to_chrome_r, self._to_chrome = os.pipe()
        self._from_chrome, from_chrome_w = os.pipe()
        child_r = fcntl.fcntl(to_chrome_r, fcntl.F_DUPFD_CLOEXEC, 10)
        child_w = fcntl.fcntl(from_chrome_w, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(to_chrome_r)
        os.close(from_chrome_w)

        def wire():
            os.dup2(child_r, 3)
            os.dup2(child_w, 4)

        try:  # its own session, so that a hung browser can be killed with all its child processes
            self.proc = subprocess.Popen(
                args,
                stdin=subprocess.DEVNULL,
                stdout=self.stderr,
                stderr=self.stderr,
                preexec_fn=wire,
                pass_fds=(3, 4),
                start_new_session=True,
            )
        except OSError as exc:
            for fd in (self._to_chrome, self._from_chrome):
                os.close(fd)
            self.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)
            raise BrowserError(f"cannot start {exe}: {exc}") from exc
        finally:
            os.close(child_r)
            os.close(child_w)
        self._next_id = 0
        self._inbox: queue.Queue = queue.Queue()
        self._events: list[dict] = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    # -- transport
    def _read(self):
        buf = b""
        while True:
            try:
                chunk = os.read(self._from_chrome, 1 << 20)
            except OSError:
                chunk = b""
            if not chunk:
                self._inbox.put(None)
                return
            buf += chunk
            *messages, buf = buf.split(b"\0")
            for m in messages:
                self._inbox.put(json.loads(m))

    def log_tail(self, n=2000) -> str:
        self.stderr.flush()
        self.stderr.seek(0)
        return self.stderr.read().decode(errors="replace")[-n:]

    def call(
        self, method: str, params: dict | None = None, *, session: str | None = None, timeout: float | None = None
    ) -> dict:
        self._next_id += 1
        msg = {"id": self._next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        data = json.dumps(msg).encode() + b"\0"
        try:
            while data:
                data = data[os.write(self._to_chrome, data) :]
        except OSError as exc:
            raise BrowserError(f"Chromium has gone away ({exc}); its log:\n{self.log_tail()}") from exc
        deadline = time.monotonic() + (timeout or self.timeout_s)
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                raise BrowserError(f"no answer from Chromium to {method} in time")
            try:
                reply = self._inbox.get(timeout=left)
            except queue.Empty:
                continue
            if reply is None:
                self._inbox.put(None)
                raise BrowserError(f"Chromium closed the pipe during {method}; its log:\n{self.log_tail()}")
            if reply.get("id") == self._next_id:
                if "error" in reply:
                    raise BrowserError(f"{method}: {reply['error'].get('message')}")
                return reply.get("result", {})
            if "method" in reply:
                self._events.append(reply)

    def drain_events(self) -> list[dict]:
        while True:
            try:
                reply = self._inbox.get_nowait()
            except queue.Empty:
                break
            if reply is None:
                self._inbox.put(None)
                break
            if "method" in reply:
                self._events.append(reply)
        events, self._events = self._events, []
        return events

    def close(self):
        try:
            if self.proc.poll() is None:
                try:
                    self.call("Browser.close", timeout=5)
                except BrowserError:
                    pass
                try:
                    self.proc.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    pass
            try:  # whatever is left of the browser's own process group (renderers, zygote)
                os.killpg(self.proc.pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass
            self.proc.wait(timeout=5)
            self._reader.join(timeout=5)  # it ends at EOF, once the browser is gone
        finally:
            for fd in (self._to_chrome, self._from_chrome):
                try:
                    os.close(fd)
                except OSError:
                    pass
            self.stderr.close()
            shutil.rmtree(self.profile, ignore_errors=True)


class _Page:
    """One tab, attached with a flat session, with helpers to evaluate, wait and click."""

    def __init__(self, browser: _Chromium, deadline: float, *, network: bool = False):
        self.b = browser
        self.deadline = deadline
        target = browser.call("Target.createTarget", {"url": "about:blank"})["targetId"]
        self.session = browser.call("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log", "Inspector", *(["Network"] if network else [])):
            self.cmd(f"{domain}.enable")
        self.errors: list[str] = []
        self.requests: list[str] = []  # URLs the page requested (with network=True)

    def check_time(self):
        if time.monotonic() > self.deadline:
            raise _OutOfTime

    def cmd(self, method, params=None):
        return self.b.call(method, params, session=self.session, timeout=max(1.0, self.deadline - time.monotonic()))

    def collect_errors(self):
        for ev in self.b.drain_events():
            if ev.get("sessionId") not in (None, self.session):
                continue
            method, p = ev["method"], ev.get("params", {})
            if method == "Runtime.exceptionThrown":
                d = p.get("exceptionDetails", {})
                text = (d.get("exception") or {}).get("description") or d.get("text", "exception")
                self.errors.append(f"uncaught JS exception: {text.splitlines()[0] if text else text}")
            elif method == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
                args = " ".join(str(a.get("value", a.get("description", ""))) for a in p.get("args", []))
                self.errors.append(f"console.{p['type']}: {args[:500]}")
            elif method == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
                entry = p["entry"]
                where = f" ({entry['url'][:200]})" if entry.get("url") else ""
                self.errors.append(f"browser {entry.get('source', 'log')} error: {entry.get('text', '')[:500]}{where}")
            elif method == "Network.requestWillBeSent":
                self.requests.append(p.get("request", {}).get("url", "")[:300])
            elif method in ("Inspector.targetCrashed", "Target.targetCrashed"):
                raise BrowserError("the report's tab crashed")

    def js(self, expression: str, *, await_promise=False):
        reply = self.cmd(
            "Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": await_promise}
        )
        if "exceptionDetails" in reply:
            d = reply["exceptionDetails"]
            raise _JSFailed((d.get("exception") or {}).get("description") or d.get("text"))
        return reply.get("result", {}).get("value")

    def wait(self, expression: str, what: str, *, timeout: float = 10.0):
        end = min(self.deadline, time.monotonic() + timeout)
        last = None
        while True:
            try:
                value = self.js(expression)
                if value:
                    return value
            except _JSFailed as exc:  # e.g. the page is still loading; try again
                last = exc
            if time.monotonic() > end:
                raise _Timeout(f"timed out waiting for {what}" + (f" (last JS error: {last})" if last else ""))
            time.sleep(0.05)

    def click(self, locate: str, what: str, *, until: str | None = None, tries: int = 3):
        """Click, with the mouse, the element that the JS expression `locate` returns, once its
        position has settled; with `until`, click again (up to `tries` times) until that JS
        expression is true, and raise _Timeout when it never is."""
        for attempt in range(tries):
            spot = self.js(
                f"""(async () => {{
                const el = ({locate});
                if (!el) return null;
                el.scrollIntoView({{block: "center", inline: "nearest"}});
                // The report styles itself at run time (Tailwind in the page) and animates layout
                // changes: wait until the element stops moving, or a click lands beside it.
                let prev = null, r = null;
                const end = performance.now() + 2000;
                while (performance.now() < end) {{
                    await new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)));
                    r = el.getBoundingClientRect();
                    const key = [r.left, r.top, r.width, r.height].join();
                    if (key === prev) break;
                    prev = key;
                }}
                const x = r.left + r.width / 2, y = r.top + r.height / 2;
                const hit = document.elementFromPoint(x, y);
                window.__srtTarget = el;
                return {{x, y, hit: !!hit && (hit === el || el.contains(hit)), size: r.width * r.height}};
            }})()""",
                await_promise=True,
            )
            if not spot:
                raise _Timeout(f"{what}: not found on the page")
            if spot["size"] <= 0 or not spot["hit"]:
                self.errors.append(f"{what}: not visible/clickable where it is drawn; clicked it by script instead")
                self.js("window.__srtTarget.click()")
            else:
                for kind in ("mouseMoved", "mousePressed", "mouseReleased"):
                    self.cmd(
                        "Input.dispatchMouseEvent",
                        {"type": kind, "x": spot["x"], "y": spot["y"], "button": "left", "clickCount": 1},
                    )
            if until is None:
                return
            try:
                return self.wait(until, what, timeout=2.0 if attempt < tries - 1 else 5.0)
            except _Timeout:
                if attempt == tries - 1:
                    raise _Timeout(f"clicked {what} {tries} times, but the report did not react") from None

    def screenshot(self, path: Path | None = None, clip: dict | None = None) -> bytes:
        """A PNG of the page (of ``clip``: a DOMRect-like dict in CSS pixels), written to ``path`` if given."""
        params = {"format": "png"}
        if clip:
            params["clip"] = {k: float(clip[k]) for k in ("x", "y", "width", "height")} | {"scale": 1}
        png = base64.b64decode(self.cmd("Page.captureScreenshot", params)["data"])
        if path is not None:
            path.write_bytes(png)
        return png

    def rect(self, selector_js: str) -> dict | None:
        """The bounding rectangle (CSS pixels) of the element a JS expression returns, or None."""
        return self.js(
            f"(() => {{ const el = ({selector_js}); if (!el) return null; const r = el.getBoundingClientRect();"
            " return {x: r.left, y: r.top, width: r.width, height: r.height}; })()"
        )


class _JSFailed(Exception):
    pass


class _Timeout(Exception):
    pass


class _OutOfTime(Exception):
    pass


# --------------------------------------------------------------------------------------------
# The walk through the report.

_HELPERS = r"""
window.__srt = {
  // links of the navigation bar's current list (menu, or a category's subcategories)
  menuLinks() {
    return [...document.querySelectorAll('#app nav ul > li > a')];
  },
  menuLink(text) {
    const links = this.menuLinks().filter(a => a.textContent.trim() === text);
    return links.length ? links[links.length - 1] : null;  // results come after Workflow/Statistics/About
  },
  atMenu() {
    return this.menuLinks().some(a => a.textContent.trim() === 'Workflow') && !document.querySelector('#app nav table');
  },
  homeLink() {
    return document.querySelector('#app nav nav ol li a');
  },
  table() { return document.querySelector('#app nav table'); },
  header() { return [...this.table().querySelectorAll('thead th')].map(th => th.textContent.trim()).filter(t => t); },
  rows() {
    return [...this.table().querySelectorAll('tbody tr')].map(tr => {
      const tds = [...tr.children];
      const eye = tds[tds.length - 1].querySelector('a');
      return {cells: tds.slice(0, -1).map(td => td.textContent.trim()),
              href: eye ? eye.getAttribute('href') : null};
    });
  },
  eye(i) {
    const tr = this.table().querySelectorAll('tbody tr')[i];
    const tds = tr.children;
    return tds[tds.length - 1].querySelector('a');
  },
  toggles() {
    return [...document.querySelectorAll('#app nav fieldset')].map(fs => ({
      label: fs.querySelector('span').textContent.trim(),
      values: [...fs.querySelectorAll('input[type=radio]')].map(i => i.value),
      checked: ([...fs.querySelectorAll('input[type=radio]')].find(i => i.checked) || {}).value,
    }));
  },
  toggleLabel(label, value) {
    for (const fs of document.querySelectorAll('#app nav fieldset')) {
      if (fs.querySelector('span').textContent.trim() !== label) continue;
      for (const lab of fs.querySelectorAll('label')) {
        const i = lab.querySelector('input');
        if (i && i.value === value) return lab;
      }
    }
    return null;
  },
  shown() {  // the content pane's <img> or <iframe>, not the navigation's logo
    return [...document.querySelectorAll('#app img, #app iframe')].find(el => !el.closest('nav')) || null;
  },
  shows(path) {
    const el = this.shown();
    return !!el && el.getAttribute('src') === results[path].data_uri;
  },
  showing(path) {  // 'shown', or 'other' when the app has selected path but displays something else
    if (this.shows(path)) return 'shown';
    const app_ = typeof app !== 'undefined' ? app : null;
    if (app_ && app_.state && app_.state.resultPath === path && app_.state.content === 'img') return 'other';
    return '';
  },
  listIs(names) {  // the navigation bar lists exactly these links (a category's subcategories)
    return JSON.stringify(this.menuLinks().map(a => a.textContent.trim())) === JSON.stringify(names);
  },
  async measure(path) {
    const img = this.shown();
    if (!img || img.tagName !== 'IMG' || img.getAttribute('src') !== results[path].data_uri) return {state: 'missing'};
    if (!img.complete) {
      await new Promise(resolve => {
        img.addEventListener('load', resolve, {once: true});
        img.addEventListener('error', resolve, {once: true});
        setTimeout(resolve, 10000);
      });
    }
    let decoded = true, why = '';
    try { await img.decode(); } catch (e) { decoded = false; why = String(e); }
    const r = img.getBoundingClientRect();
    // A blank image (every pixel the same, e.g. all transparent when the pixel data is corrupt but
    // the header is intact) decodes with a size, yet shows nothing.
    let blank = null;
    if (decoded && img.naturalWidth > 0 && img.naturalHeight > 0) {
      try {
        const c = document.createElement('canvas');
        c.width = img.naturalWidth; c.height = img.naturalHeight;
        const g = c.getContext('2d', {willReadFrequently: true});
        g.drawImage(img, 0, 0);
        const px = new Uint32Array(g.getImageData(0, 0, c.width, c.height).data.buffer);
        blank = px.every(v => v === px[0]);
      } catch (e) { blank = null; }  // a tainted canvas cannot be read: no verdict
    }
    return {state: 'ok', complete: img.complete, decoded, why, w: img.naturalWidth, h: img.naturalHeight,
            drawn: [r.width, r.height], blank};
  },
};
true
"""


def _js_str(s: str) -> str:
    return json.dumps(s)


def _page_and_browser(html_path, chromium) -> tuple[Path, str]:
    """The page as an absolute path (FileNotFoundError when absent) and the Chromium binary to open it
    (BrowserError with the skip reason when none is installed)."""
    html = Path(html_path).resolve()
    if not html.is_file():
        raise FileNotFoundError(html)
    exe = chromium or chromium_path()
    if exe is None:
        raise BrowserError(_SKIP_REASON)
    return html, exe


def render_report(
    html_path,
    *,
    timeout_s: float = 60,
    screenshot_dir=None,
    chromium: str | None = None,
    no_sandbox: bool | None = None,
    extra_args=(),
    open_html=(),
    frame_timeout_s: float = 30,
) -> ReportRender:
    """Open a Snakemake HTML report in headless Chromium, click through every category,
    subcategory and result row, and record for each image result whether it rendered; the HTML results
    named in ``open_html`` are shown too, and their frame must draw in colour within ``frame_timeout_s``
    (``ReportRender.frames``).

    Raises BrowserError when Chromium is missing or fails, or the report's app never comes up;
    problems with single entries end up in ``ReportRender.errors`` / ``figures[path] is None``.
    """
    t0 = time.monotonic()
    html, exe = _page_and_browser(html_path, chromium)
    shots = Path(screenshot_dir) if screenshot_dir else None
    if shots:
        shots.mkdir(parents=True, exist_ok=True)
    out = ReportRender(html=html)
    browser = _Chromium(exe, timeout_s=timeout_s, no_sandbox=no_sandbox, extra_args=extra_args)
    try:
        page = _Page(browser, deadline=t0 + timeout_s)
        nav = page.cmd("Page.navigate", {"url": html.as_uri()})
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {html}: {nav['errorText']}")
        try:
            page.wait(
                "document.readyState === 'complete' && typeof results === 'object' "
                "&& typeof categories === 'object' && !!document.querySelector('#app nav')",
                "the report's app to render",
                timeout=timeout_s,
            )
        except _Timeout as exc:
            page.collect_errors()
            raise BrowserError(f"{exc}; page errors: {page.errors}") from exc
        page.js(_HELPERS)
        data = page.js("""({
            categories,
            mime: Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.mime_type])),
            labels: Object.fromEntries(Object.entries(results).map(([p, r]) => [p, r.labels || null])),
        })""")
        unreached = "in the report's data but not reachable through its navigation"
        try:
            _walk(page, data, out, shots, (set(open_html), frame_timeout_s))
        except _OutOfTime:
            page.errors.append(f"gave up after timeout_s={timeout_s} s")
            unreached = "not checked: time ran out"
        page.collect_errors()
        reached = {e.path for e in out.entries}
        for path, mime in data["mime"].items():
            if path not in reached:
                page.errors.append(f"{path}: {unreached}")
                if mime in IMAGE_TYPES:
                    out.figures.setdefault(path, None)
        for path in set(open_html) - set(data["mime"]):
            page.errors.append(f"{path}: not in the report")
            out.frames[path] = None
        out.errors = page.errors
    finally:
        browser.close()
    out.seconds = time.monotonic() - t0
    return out


def _walk(page: _Page, data: dict, out: ReportRender, shots: Path | None, open_html: tuple[set[str], float]):
    categories: dict = data["categories"]
    single = len(categories) == 1
    for cat in sorted(categories, key=str.casefold):
        subs = sorted(categories[cat], key=str.casefold)
        for sub in subs:
            where = f"{cat} / {sub}"
            page.check_time()
            try:
                _go_home(page)
                menu = _js_str("Results" if single else cat)
                if len(subs) > 1:
                    page.click(
                        f"__srt.menuLink({menu})", f"menu entry {cat!r}", until=f"__srt.listIs({json.dumps(subs)})"
                    )
                    page.click(f"__srt.menuLink({_js_str(sub)})", f"subcategory {where!r}", until="!!__srt.table()")
                else:
                    page.click(f"__srt.menuLink({menu})", f"menu entry {cat!r}", until="!!__srt.table()")
            except _Timeout as exc:
                page.errors.append(f"{where}: {exc}")
                for path in categories[cat][sub]:
                    if data["mime"][path] in IMAGE_TYPES:
                        out.figures[path] = None
                continue
            _table(page, data, cat, sub, out, shots, open_html)
            page.collect_errors()


def _go_home(page: _Page):
    if page.js("__srt.atMenu()"):
        return
    page.click("__srt.homeLink()", "the breadcrumb home link", until="__srt.atMenu()")


def _table(
    page: _Page,
    data: dict,
    cat: str,
    sub: str,
    out: ReportRender,
    shots: Path | None,
    open_html: tuple[set[str], float],
):
    paths = data["categories"][cat][sub]
    header = page.js("__srt.header()")
    toggles = page.js("__srt.toggles()") or []
    # Every combination of toggle values (the report allows at most one toggle of two values).
    states = [{}]
    for t in toggles:
        states = [dict(s, **{t["label"]: v}) for s in states for v in t["values"]]
    for state in states:
        for label, value in state.items():
            if page.js(f"__srt.toggles().find(t => t.label === {_js_str(label)}).checked") != value:
                page.click(
                    f"__srt.toggleLabel({_js_str(label)}, {_js_str(value)})",
                    f"toggle {label}={value}",
                    until=f"__srt.toggles().find(t => t.label === {_js_str(label)}).checked === {_js_str(value)}",
                )
        for i, row in enumerate(page.js("__srt.rows()")):
            page.check_time()
            path = _row_path(row["cells"], header, state, paths, data["labels"])
            where = f"{cat} / {sub} / {' / '.join(row['cells'])}"
            if path is None:
                page.errors.append(f"{where}: row matches no result of its subcategory")
                continue
            if any(e.path == path for e in out.entries):
                continue
            mime = data["mime"][path]
            out.entries.append(ReportEntry(path, cat, sub, tuple(row["cells"]), mime))
            if mime == HTML_TYPE and path in open_html[0]:
                out.frames[path] = _show_frame(page, i, path, where, shots, open_html[1])
                continue
            if mime not in IMAGE_TYPES:
                continue
            if row["href"] != "#":
                page.errors.append(f"{path}: image row has no view button")
                out.figures[path] = None
                continue
            out.figures[path] = _show_image(page, i, path, where)
            if shots:
                target = shots / (re.sub(r"[^A-Za-z0-9._-]+", "_", path) + ".png")
                page.screenshot(target)
                out.screenshots[path] = target


def _row_path(cells, header, state, paths, labels):
    """The result that a row stands for: by its label values (+ toggle state), or by its path."""
    if header == ["File"] and len(cells) == 1 and cells[0] in paths:
        return cells[0]
    for p in paths:
        lab = labels.get(p) or {}
        if all(str(lab.get(h, "")) == c for h, c in zip(header, cells)) and all(
            str(lab.get(k)) == v for k, v in state.items()
        ):
            return p
    return None


def _show_image(page: _Page, row: int, path: str, where: str):
    try:
        shown = page.click(
            f"__srt.eye({row})", f"the view button of {where!r}", until=f"__srt.showing({_js_str(path)})"
        )
    except _Timeout as exc:
        page.errors.append(f"{path}: {exc}")
        return None
    if shown != "shown":
        page.errors.append(f"{path}: selected, but the content pane shows something else")
        return None
    m = page.js(f"__srt.measure({_js_str(path)})", await_promise=True)
    if m.get("state") != "ok":
        page.errors.append(f"{path}: no <img> for it in the content pane")
        return None
    if not (m["complete"] and m["decoded"] and m["w"] > 0 and m["h"] > 0):
        page.errors.append(
            f"{path}: image did not render (complete={m['complete']}, decoded={m['decoded']}, "
            f"natural size {m['w']}x{m['h']}{', ' + m['why'] if m['why'] else ''})"
        )
        return None
    if m["blank"]:
        page.errors.append(f"{path}: image is blank (all {m['w']}x{m['h']} pixels the same colour)")
        return None
    if m["drawn"][0] <= 0 or m["drawn"][1] <= 0:
        page.errors.append(f"{path}: image decoded but is drawn with zero size")
        return None
    return (int(m["w"]), int(m["h"]))


def _show_frame(page: _Page, row: int, path: str, where: str, shots: Path | None, timeout: float = 30.0):
    """Show an HTML result (the report puts it in an <iframe src="data:...">) and take screenshots of the
    frame until its content draws in colour: (colourful pixels, distinct colours), or None. The frame's
    document has an opaque origin, so the report's script cannot look inside: the pixels are the proof."""
    try:
        page.click(f"__srt.eye({row})", f"the view button of {where!r}", until=f"__srt.shows({_js_str(path)})")
    except _Timeout as exc:
        page.errors.append(f"{path}: {exc}")
        return None
    end = min(page.deadline, time.monotonic() + timeout)
    drawn = (0, 0)
    while time.monotonic() < end:
        rect = page.rect("__srt.shown()")
        if rect and rect["width"] > 0 and rect["height"] > 0:
            png = page.screenshot(clip=rect)
            drawn = colourful_pixels(png)
            if drawn[0] >= FRAME_MIN_PIXELS:
                if shots:
                    (shots / (re.sub(r"[^A-Za-z0-9._-]+", "_", path) + ".png")).write_bytes(png)
                return drawn
        time.sleep(0.5)
    page.errors.append(f"{path}: its frame drew {drawn[0]} colourful pixels in {timeout:.0f} s")
    return None


#: colourful pixels a frame must show before it counts as drawn
FRAME_MIN_PIXELS = 2000


def colourful_pixels(png: bytes, *, min_saturation: float = 0.35, min_value: float = 0.5) -> tuple[int, int]:
    """(pixels, distinct RGB colours among them) of a PNG that are drawn in colour: HSV saturation at least
    ``min_saturation`` and value at least ``min_value``. A white page, grey grid lines, black text and a
    pale plot background all count 0; coloured lines count, and antialiased coloured lines give many
    distinct values."""
    import io

    import numpy as np
    from PIL import Image

    rgb = np.asarray(Image.open(io.BytesIO(png)).convert("RGB"), dtype=np.int32)
    high, low = rgb.max(axis=2), rgb.min(axis=2)
    colourful = (high >= 255 * min_value) & ((high - low) >= min_saturation * np.maximum(high, 1))
    pixels = rgb[colourful]
    distinct = len(np.unique(pixels[:, 0] << 16 | pixels[:, 1] << 8 | pixels[:, 2])) if len(pixels) else 0
    return int(colourful.sum()), int(distinct)


@dataclass
class PageRender:
    """What a browser made of one HTML page (:func:`render_page`).

    html: the page.
    ready: the value of the ``ready`` expression once it held.
    screenshots: a PNG (bytes) after loading and after each step, of ``clip``'s element (or the viewport).
    values: the value each step returned.
    errors: JavaScript exceptions, console errors and browser log errors (a blocked request included).
    requests: every URL the page requested besides the page itself and ``data:``/``blob:`` URIs.
    seconds: wall time, browser start to close.
    """

    html: Path
    ready: object = None
    screenshots: list[bytes] = field(default_factory=list)
    values: list[object] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)
    seconds: float = 0.0


def render_page(
    html_path,
    *,
    ready: str,
    steps=(),
    clip: str | None = None,
    settle_s: float = 0.3,
    timeout_s: float = 60,
    chromium: str | None = None,
    no_sandbox: bool | None = None,
    extra_args=(),
) -> PageRender:
    """Open one HTML page (``file://``) in headless Chromium, wait until the JS expression ``ready`` is
    true, then take a screenshot; run each JS expression of ``steps`` (awaited when it returns a promise)
    and take a screenshot after each. Screenshots are taken ``settle_s`` after two animation frames, of the
    element that the JS expression ``clip`` returns (else of the viewport).

    Raises:
        BrowserError: Chromium is missing or fails, the page never becomes ready, or a step throws.
    """
    t0 = time.monotonic()
    html, exe = _page_and_browser(html_path, chromium)
    out = PageRender(html=html)
    browser = _Chromium(exe, timeout_s=timeout_s, no_sandbox=no_sandbox, extra_args=extra_args)
    try:
        page = _Page(browser, deadline=t0 + timeout_s, network=True)

        def shot():
            page.js("new Promise(ok => requestAnimationFrame(() => requestAnimationFrame(ok)))", await_promise=True)
            time.sleep(settle_s)
            out.screenshots.append(page.screenshot(clip=page.rect(clip) if clip else None))

        nav = page.cmd("Page.navigate", {"url": html.as_uri()})
        if nav.get("errorText"):
            raise BrowserError(f"cannot open {html}: {nav['errorText']}")
        try:
            out.ready = page.wait(ready, "the page to be ready", timeout=timeout_s)
        except _Timeout as exc:
            page.collect_errors()
            raise BrowserError(f"{exc}; page errors: {page.errors}") from exc
        shot()
        for step in steps:
            try:
                out.values.append(page.js(step, await_promise=True))
            except _JSFailed as exc:
                raise BrowserError(f"step {step[:200]!r} failed: {exc}") from exc
            shot()
        page.collect_errors()
        out.errors = page.errors
        out.requests = [u for u in page.requests if u != html.as_uri() and not u.startswith(("data:", "blob:"))]
    finally:
        browser.close()
    out.seconds = time.monotonic() - t0
    return out


if __name__ == "__main__":  # python tests/support/browser.py results/report.html [screenshot_dir]
    import sys

    result = render_report(sys.argv[1], screenshot_dir=sys.argv[2] if len(sys.argv) > 2 else None)
    print(result.summary())
    sys.exit(0 if result.ok else 1)
