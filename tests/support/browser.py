"""Debian's Chromium, driven by Playwright, for the tests of pages in a real browser.

Chromium is ``/usr/bin/chromium`` (``.ci/run`` installs it) or ``AURORADASK_CHROMIUM``. Where
it or Playwright is missing, a browser test is skipped, or fails when
``AURORADASK_REQUIRE_BROWSER=1`` (as in CI).
"""

from __future__ import annotations

import os
import shutil

import pytest

CHROMIUM = os.environ.get("AURORADASK_CHROMIUM", "/usr/bin/chromium")
#: without these, Chromium's own background connections are refused on a closed network
CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]


def sync_playwright_or_skip():
    """Playwright's ``sync_playwright``, once Chromium and Playwright are known to be here."""
    required = os.environ.get("AURORADASK_REQUIRE_BROWSER") == "1"
    if not (os.access(CHROMIUM, os.X_OK) or shutil.which(CHROMIUM)):
        if required:
            pytest.fail(f"no Chromium at {CHROMIUM} (apt-get install chromium)")
        pytest.skip(f"no Chromium at {CHROMIUM}")
    if not required:
        pytest.importorskip("playwright.sync_api")
    from playwright.sync_api import sync_playwright

    return sync_playwright


def launch(playwright):
    """Chromium, headless and quiet, from a started Playwright."""
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
