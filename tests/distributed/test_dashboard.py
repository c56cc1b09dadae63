"""auroradask's dashboard page: served by the scheduler beside Dask's, filled by to_zarr.

The browser test drives Debian's Chromium (``/usr/bin/chromium``, or ``AURORADASK_CHROMIUM``)
with Playwright; it is skipped where either is missing, unless ``AURORADASK_REQUIRE_BROWSER=1``
(as ``.ci/run`` sets) makes that a failure. ``AURORADASK_SCREENSHOT=PATH`` also saves the page
as a PNG (the docs' figure: ``docs/_static/gallery/dashboard.png``).
"""

from __future__ import annotations

import contextlib
import json
import os
import urllib.request

import pytest

import auroradask
from auroradask._palette import class_color, class_colors, palette_json, rgb
from tests.support.browser import launch, sync_playwright_or_skip
from tests.support.utils import open_sample


def get_json(url: str) -> dict:
    with urllib.request.urlopen(url, timeout=30) as response:
        return json.load(response)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A LocalCluster that has written the sample: (client, page URL, store, summary)."""
    store = tmp_path_factory.mktemp("dashboard") / "sample.zarr"
    with auroradask.start_client(
        workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as client:
        page = auroradask.dashboard_page(client)
        before = get_json(page + "/state.json")
        results = auroradask.classify(open_sample(chunk_minutes=1), auroradask.demo_model())
        summary = auroradask.to_zarr(results, store, progress=False)
        yield client, page, store, summary, before
    _stop(client)


def _stop(client) -> None:
    """Closing the client leaves start_client's LocalCluster running: stop it too."""
    with contextlib.suppress(Exception):
        client.cluster.close()


def test_page_is_served_beside_dasks_dashboard(run):
    client, page, *_ = run
    assert page == auroradask.dashboard_link(client).removesuffix("/status") + "/auroradask"
    with urllib.request.urlopen(page, timeout=30) as response:
        html = response.read().decode()
    assert response.status == 200 and "<title>auroradask</title>" in html
    # the page links back to Dask's dashboard and loads nothing from elsewhere
    assert 'href="status"' in html and "src=" not in html and 'fetch("http' not in html


def test_page_takes_the_class_colours_of_the_figures(run):
    _, page, *_ = run
    with urllib.request.urlopen(page, timeout=30) as response:
        html = response.read().decode()
    assert f"const PALETTE = {palette_json()} ||" in html  # one palette, put in by the server
    assert "/*AURORADASK_PALETTE*/" not in html


def test_state_before_any_run_is_empty(run):
    *_, before = run
    assert before["run"] is None


def test_state_is_the_runs_figures(run):
    client, page, store, summary, _ = run
    state = get_json(page + "/state.json")["run"]
    assert state["status"] == "finished"
    assert state["store"].endswith("sample.zarr")
    assert (state["done"], state["total"], state["written"], state["frames"]) == (120,) * 4
    assert state["sites"] == {"gill": [120, 120]}
    assert state["labels"] == summary.label_counts and sum(state["labels"].values()) == 120
    assert state["frame_status"] == {"ok": 120}
    # one sample per chunk of one minute: the rate figure has points to draw
    written = [w for _, w, _ in state["samples"]]
    assert written == sorted(written) and written[-1] == 120 and len(written) >= 3
    frames = [f for *_, f in state["samples"]]  # the rate figure counts frames
    assert frames == sorted(frames) and frames[-1] == 120


def test_a_resumed_run_reports_what_it_skipped(run):
    client, page, store, *_ = run
    results = auroradask.classify(open_sample(chunk_minutes=1), auroradask.demo_model())
    summary = auroradask.to_zarr(results, store, progress=False)
    state = get_json(page + "/state.json")["run"]
    assert (summary.written, summary.skipped) == (0, 120)
    assert (state["written"], state["skipped"], state["done"]) == (0, 120, 120)
    assert state["labels"] == {}


def _css(color: str) -> str:
    """``#rrggbb`` as a browser's computed style writes it."""
    r, g, b = (round(255 * v) for v in rgb(color))
    return f"rgb({r}, {g}, {b})"


@pytest.mark.browser
def test_page_in_a_real_browser_shows_the_run(tmp_path):
    sync_playwright = sync_playwright_or_skip()
    store = tmp_path / "sample.zarr"
    with auroradask.start_client(
        workers=1, threads_per_worker=1, dashboard_address="127.0.0.1:0"
    ) as client:
        page_url = auroradask.dashboard_page(client)
        results = auroradask.classify(open_sample(chunk_minutes=1), auroradask.demo_model())
        summary = auroradask.to_zarr(results, store, progress=False)
        with sync_playwright() as p:
            browser = launch(p)
            try:
                page = browser.new_page(viewport={"width": 1100, "height": 760})
                problems: list[str] = []
                page.on(
                    "console",
                    lambda m: problems.append(m.text) if m.type in ("error", "warning") else None,
                )
                page.on("pageerror", lambda e: problems.append(str(e)))
                page.goto(page_url)
                page.wait_for_selector("#run:not([hidden])", timeout=30_000)
                page.wait_for_function(
                    "document.getElementById('done').textContent === '120 / 120'",
                    timeout=30_000,
                )
                assert page.text_content("#status") == "finished"
                assert page.text_content("#store").endswith("sample.zarr")
                sites = page.inner_text("#sites")
                assert "gill" in sites and "120 / 120" in sites
                labels = page.inner_text("#labels")
                for name, count in summary.label_counts.items():
                    assert name in labels and str(count) in labels
                # each class's bar in the colour the figures give it
                shown = page.eval_on_selector_all(
                    "#labels tr",
                    """rows => rows.map(r => [r.cells[0].textContent,
                        getComputedStyle(r.querySelector(".bar div")).backgroundColor])""",
                )
                assert shown and all(_css(class_color(n)) == c for n, c in shown)
                # the page's copy of the palette agrees with the figures' for any name
                names = ["bad_viewing", "pulsating", "arc", "diffuse", "ciel nuageux", "x13"]
                assert page.evaluate("n => classColors(n)", names) == class_colors(names)
                assert page.locator("#chart path.rate-line").count() == 1
                assert float(page.text_content("#mean")) > 0
                link = page.eval_on_selector("header a", "a => a.href")
                assert link == page_url.removesuffix("/auroradask") + "/status"
                if os.environ.get("AURORADASK_SCREENSHOT"):
                    page.screenshot(path=os.environ["AURORADASK_SCREENSHOT"], full_page=True)
                assert problems == []
            finally:
                browser.close()
    _stop(client)
