"""Take the screenshot of the documentation site's landing page in headless Chromium.

Build the site first (``sphinx-build -W -b html docs docs/_build/html``), then run
``python docs/screenshot.py [HTML_DIR] [PNG]`` (defaults: ``docs/_build/html`` and
``docs/_static/landing.png``). The page is opened from disk (``file://``: the site loads
nothing from elsewhere) in the system's Chromium (``/usr/bin/chromium``, or the one that
``AURORADASK_CHROMIUM`` names), driven by Playwright's Python package; Playwright's own
browser download is never used. A console error of the page fails the script.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

DOCS = Path(__file__).resolve().parent
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def screenshot(html: Path, png: Path, width: int = 1280, height: int = 860) -> list[str]:
    """Write the landing page ``html/index.html`` as ``png``; return the console errors."""
    from playwright.sync_api import sync_playwright

    index = html / "index.html"
    if not index.is_file():
        raise SystemExit(f"screenshot: {index} not found: build the site first")
    errors: list[str] = []
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=os.environ.get("AURORADASK_CHROMIUM", "/usr/bin/chromium"),
            args=CHROMIUM_ARGS,
        )
        try:
            page = browser.new_page(viewport={"width": width, "height": height})
            page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
            page.on("pageerror", lambda e: errors.append(str(e)))
            # the light theme, whatever the machine prefers, so the picture is the same each time
            page.emulate_media(color_scheme="light")
            page.goto(index.as_uri(), wait_until="load")
            page.wait_for_timeout(500)  # fonts and the theme's script settle
            png.parent.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(png))
        finally:
            browser.close()
    return errors


def main() -> None:
    html = Path(sys.argv[1]) if len(sys.argv) > 1 else DOCS / "_build" / "html"
    png = Path(sys.argv[2]) if len(sys.argv) > 2 else DOCS / "_static" / "landing.png"
    errors = screenshot(html, png)
    if errors:
        raise SystemExit("screenshot: console errors on the page:\n" + "\n".join(errors))
    print(f"screenshot: {png}")


if __name__ == "__main__":
    main()
