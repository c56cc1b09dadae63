"""auroradask's own dashboard page, served by the Dask scheduler beside Dask's (``/auroradask``).

Dask's dashboard shows tasks; a user came to watch frames: how many per second, per site how
many are done, what the labels are so far, which store is being written. A scheduler plugin
adds two routes to the scheduler's web server (the one serving ``/status``):

- ``/auroradask``: one self-contained HTML page (no script from elsewhere) that polls
- ``/auroradask/state.json``: the state of the run, which :func:`auroradask.to_zarr` publishes
  into the scheduler's metadata (``Client.set_metadata``) as its chunks complete.

The page therefore works for any client of that scheduler, and keeps showing the last run
after it ends (``auroradask classify --keep-dashboard`` keeps a LocalCluster up to look).
"""

from __future__ import annotations

import json
import logging
import time
from importlib import resources
from typing import Any

from distributed.diagnostics.plugin import SchedulerPlugin
from tornado import web

from .._palette import palette_json

logger = logging.getLogger("auroradask")

PAGE_PATH = "/auroradask"
#: Where the page's script takes the palette (``null`` there: a page served as a file)
PALETTE_MARK = "/*AURORADASK_PALETTE*/null"
METADATA_KEY = "auroradask-dashboard"
#: samples of (time, frames written) kept for the rate figure; older ones are thinned out
MAX_SAMPLES = 1000
#: at most this many publications a second (each is one message to the scheduler)
MIN_INTERVAL = 0.5


class _Handler(web.RequestHandler):
    def initialize(self, scheduler) -> None:
        self.scheduler = scheduler

    def state(self) -> dict[str, Any] | None:
        return self.scheduler.get_metadata([METADATA_KEY], default=None)


class _Page(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(page_html())


def page_html() -> str:
    """The page, with the class colours of the figures (:mod:`auroradask._palette`) in it."""
    page = resources.files("auroradask").joinpath("data/dashboard.html").read_text()
    return page.replace(PALETTE_MARK, palette_json(), 1)


class _State(_Handler):
    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"run": self.state(), "now": time.time()}))


class DashboardPage(SchedulerPlugin):
    """Adds ``/auroradask`` and ``/auroradask/state.json`` to the scheduler's web server."""

    name = "auroradask-dashboard"

    async def start(self, scheduler) -> None:
        app = getattr(scheduler, "http_application", None)
        if app is None or getattr(app, "_auroradask_page", False):
            return
        app.add_handlers(
            r".*",
            [
                (PAGE_PATH, _Page, {"scheduler": scheduler}),
                # the page's links are relative to /auroradask, without the slash
                (PAGE_PATH + "/", web.RedirectHandler, {"url": PAGE_PATH}),
                (PAGE_PATH + r"/state\.json", _State, {"scheduler": scheduler}),
            ],
        )
        app._auroradask_page = True


def dashboard_page(client) -> str | None:
    """Serve auroradask's page on the client's scheduler; return its URL.

    The page shows the run :func:`auroradask.to_zarr` is writing (frames per second over time,
    per site done of total, label counts so far, the store), beside Dask's dashboard on the
    same server. :func:`auroradask.start_client` already calls this.

    Parameters
    ----------
    client
        A ``distributed.Client``. The scheduler must be able to import auroradask (true for a
        LocalCluster; for a remote scheduler, install auroradask where it runs).

    Returns
    -------
    str or None
        ``http://host:port/auroradask``, or None if the scheduler has no dashboard or cannot
        take the plugin (a warning is logged, nothing fails).
    """
    link = _dask_link(client)
    if link is None:
        return None
    if getattr(client, "_auroradask_page", None) != client.scheduler.address:
        try:
            client.register_plugin(DashboardPage())
        except Exception as error:  # a remote scheduler without auroradask: the run goes on
            logger.warning("auroradask's dashboard page is not served: %s", error)
            return None
        client._auroradask_page = client.scheduler.address
    return page_link(link)


def page_link(dask_link: str) -> str:
    base = dask_link.split("?")[0].rstrip("/")
    if base.endswith("/status"):
        base = base[: -len("/status")]
    return base + PAGE_PATH


def _dask_link(client) -> str | None:
    try:
        return client.dashboard_link
    except (AttributeError, KeyError):
        return None


class RunPublisher:
    """Publishes a write's progress into the scheduler's metadata, for the page to read."""

    def __init__(self, client, store_url: str) -> None:
        self.client = client
        self.started = time.time()
        self.last_sent = 0.0
        self.samples: list[list[float]] = []
        self.state: dict[str, Any] = {
            "store": store_url,
            "started": self.started,
            "status": "starting",
            "total": 0,
            "done": 0,
            "written": 0,
            "skipped": 0,
            "sites": {},
            "labels": {},
            "frame_status": {},
            "samples": self.samples,
        }
        self._send(force=True)

    @classmethod
    def for_client(cls, client, store_url: str) -> RunPublisher | None:
        if client is None or not hasattr(client, "set_metadata"):
            return None
        try:
            return cls(client, store_url)
        except Exception as error:  # progress must never break a write
            logger.debug("dashboard state not published: %s", error)
            return None

    def __call__(self, summary) -> None:
        now = time.time()
        self.state.update(
            status="running",
            total=summary.total,
            done=summary.done,
            written=summary.written,
            skipped=summary.skipped,
            sites={s: [summary.site_done.get(s, 0), n] for s, n in summary.site_total.items()},
            labels=dict(summary.label_counts),
            frame_status=dict(summary.status_counts),
        )
        if not self.samples or self.samples[-1][1] != summary.written:
            self.samples.append([now, summary.written])
        if len(self.samples) > MAX_SAMPLES:  # thin out the old half, keep the recent detail
            half = len(self.samples) // 2
            self.samples[:half] = self.samples[:half:2]
        self._send()

    def finish(self, outcome: str) -> None:
        self.state["status"] = outcome
        self.state["ended"] = time.time()
        self._send(force=True)

    def _send(self, force: bool = False) -> None:
        now = time.time()
        if not force and now - self.last_sent < MIN_INTERVAL:
            return
        self.last_sent = now
        try:
            self.client.set_metadata([METADATA_KEY], self.state)
        except Exception as error:  # a closed client: the write itself reports what happened
            logger.debug("dashboard state not published: %s", error)


__all__ = ["DashboardPage", "RunPublisher", "dashboard_page", "page_html", "page_link"]
