"""The README's dashboard figure: auroradask's page in headless Chromium, part-way through a run.

Writes a small three-site archive (real sample minutes relabelled, ``tests.support.archive``),
classifies it on a LocalCluster, and saves ``OUT/dashboard.png`` once about half the frames
are done. Needs Chromium (``apt-get install chromium``) and Playwright's Python package
(``pip install ".[test]"``); run from the repository root:
``python examples/dashboard_screenshot.py [--out OUT]`` (default ``auroradask-figures``; the
docs' figure: ``--out docs/_static/gallery``).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support.archive

import auroradask  # noqa: E402
from tests.support.archive import make_archive  # noqa: E402

CHROMIUM = os.environ.get("AURORADASK_CHROMIUM", "/usr/bin/chromium")
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def main() -> None:
    from playwright.sync_api import sync_playwright

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="auroradask-figures", help="output folder")
    out = Path(parser.parse_args().out) / "dashboard.png"

    with tempfile.TemporaryDirectory() as tmp:
        make_archive(
            tmp, ["gill", "fsmi", "atha"], "2014-03-10T06:00", hours=1, minutes_per_hour=12
        )
        frames = auroradask.open_themis(
            tmp, ["gill", "fsmi", "atha"], "2014-03-10T06:00", "2014-03-10T06:12", chunk_minutes=1
        )
        results = auroradask.classify(frames, auroradask.demo_model())
        with auroradask.start_client(workers=2, dashboard_address="127.0.0.1:0") as client:
            page_url = auroradask.dashboard_page(client)
            writer = threading.Thread(
                target=auroradask.to_zarr,
                args=(results, Path(tmp) / "three-sites.zarr"),
                kwargs={"progress": False},
            )
            writer.start()
            with sync_playwright() as p:
                browser = p.chromium.launch(executable_path=CHROMIUM, args=ARGS)
                page = browser.new_page(viewport={"width": 1100, "height": 700})
                page.goto(page_url)
                total = 3 * 240
                while writer.is_alive():
                    done = page.text_content("#done") or ""
                    if done.split(" / ")[0].replace(",", "").isdigit():
                        if int(done.split(" / ")[0].replace(",", "")) >= total * 0.55:
                            break
                    time.sleep(0.5)
                time.sleep(1.2)  # one more poll of the page
                out.parent.mkdir(parents=True, exist_ok=True)
                page.screenshot(path=str(out), full_page=True)
                browser.close()
            writer.join()
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
