"""auroradask's own dashboard page, served by the Dask scheduler beside Dask's (``/auroradask``).

Dask's dashboard shows tasks; a user came to watch frames: how many per second, per site how
many are done, what the labels are so far, which store is being written. Two routes of the
scheduler's web server (the one serving ``/status``) make the page:

- ``/auroradask``: one self-contained HTML page (no script from elsewhere) that polls
- ``/auroradask/state.json``: the state of the run, which :func:`auroradask.to_zarr` publishes
  into the scheduler's metadata (``Client.set_metadata``) as its chunks complete.

Both go under the dashboard's prefix (``dask scheduler --dashboard-prefix /foo`` serves
``/foo/auroradask``), and the page's links are relative, so they work under it too.

How the routes get there, in distributed's own way: :mod:`auroradask.distributed.routes` is a
route module (``routes = [(path, handler, kwargs)]``), and a scheduler serves the route
modules listed in ``distributed.scheduler.http.routes``, under its prefix. auroradask's
installation puts ``etc/dask/auroradask-dashboard.yaml`` into the environment
(``{sys.prefix}/etc/dask``, which dask reads); it lists the preload
:mod:`auroradask.distributed.preload`, whose import appends the route module to that list
before the scheduler reads it. So every scheduler started where auroradask is installed
(``dask scheduler``, a LocalCluster, dask-jobqueue...) has the page, with or without
auroradask's client. Where that file is missing or not read (an editable install: setuptools'
editable wheels leave data files out; a ``pip install --user``, whose ``~/.local/etc/dask``
dask does not read; a dask config that sets its own ``distributed.scheduler.preload``),
:func:`dashboard_page` adds the same routes from a scheduler plugin, under the prefix the
scheduler's other routes have; or start the scheduler with
``--preload auroradask.distributed.preload``.

The page therefore works for any client of that scheduler, and keeps showing the last run
after it ends (``auroradask classify --keep-dashboard`` keeps a LocalCluster up to look).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterator
from importlib import resources
from typing import Any

import dask
from distributed.diagnostics.plugin import SchedulerPlugin
from distributed.http.health import HealthHandler
from distributed.http.utils import get_handlers
from tornado import web

from .._palette import palette_json

logger = logging.getLogger("auroradask")

#: The page, relative to the dashboard's root (its prefix, if any).
PAGE_PATH = "/auroradask"
#: The route module a scheduler serves (``distributed.scheduler.http.routes``).
ROUTES_MODULE = "auroradask.distributed.routes"
ROUTES_KEY = "distributed.scheduler.http.routes"
#: Where the page's script takes the palette (``null`` there: a page served as a file)
PALETTE_MARK = "/*AURORADASK_PALETTE*/null"
METADATA_KEY = "auroradask-dashboard"
#: samples of (time, slots written, frames written) kept for the rate figure; older ones are
#: thinned out
MAX_SAMPLES = 1000
#: at most this many publications a second (each is one message to the scheduler)
MIN_INTERVAL = 0.5


class _Handler(web.RequestHandler):
    # distributed's get_handlers passes the scheduler as ``dask_server`` to handlers whose
    # initialize takes it
    def initialize(self, dask_server=None) -> None:
        self.scheduler = dask_server

    def state(self) -> dict[str, Any] | None:
        return self.scheduler.get_metadata([METADATA_KEY], default=None)


class PageHandler(_Handler):
    """``/auroradask``: the page."""

    def get(self) -> None:
        self.set_header("Content-Type", "text/html; charset=utf-8")
        self.set_header("Cache-Control", "no-store")
        self.write(page_html())


def page_html() -> str:
    """The page, with the class colours of the figures (:mod:`auroradask._palette`) in it."""
    page = resources.files("auroradask").joinpath("data/dashboard.html").read_text()
    return page.replace(PALETTE_MARK, palette_json(), 1)


class StateHandler(_Handler):
    """``/auroradask/state.json``: the run the page shows."""

    def get(self) -> None:
        self.set_header("Content-Type", "application/json")
        self.set_header("Cache-Control", "no-store")
        self.write(json.dumps({"run": self.state(), "now": time.time()}))


class SlashRedirect(web.RequestHandler):
    """``/auroradask/`` to ``/auroradask``: the page's links are relative to it, without the
    slash. The redirect is relative too, so that it holds under any prefix or proxy path."""

    def get(self) -> None:
        self.redirect("../auroradask")


def add_routes_to_config() -> None:
    """Append the route module to ``distributed.scheduler.http.routes`` (once).

    Appended, never replaced: a list in dask's config replaces the default list, so a YAML
    file listing the module would drop distributed's own routes (``/health``, ``/info``...).
    """
    routes = list(dask.config.get(ROUTES_KEY, default=[]) or [])
    if ROUTES_MODULE not in routes:
        dask.config.set({ROUTES_KEY: [*routes, ROUTES_MODULE]})


def served_path(dask_scheduler=None) -> str | None:
    """Where the scheduler serves the page (``/auroradask``, ``/foo/auroradask``), or None.

    Runs on the scheduler (``Client.run_on_scheduler`` passes it as ``dask_scheduler``); the
    answer is read from its web server's routing table, so it holds however the routes came.
    """
    app = getattr(dask_scheduler, "http_application", None)
    if app is None:
        return None
    for rule in _rules(app.default_router):
        if rule.target is PageHandler:
            return rule.matcher.regex.pattern.rstrip("$")
    return None


def serve_page(scheduler) -> str | None:
    """Add the page's routes to a running scheduler that lacks them; return their path.

    The routes go under the dashboard's prefix, read from where distributed's ``/health``
    route is (every route module of a scheduler is served under the same prefix).
    """
    app = getattr(scheduler, "http_application", None)
    if app is None:
        return None
    path = served_path(scheduler)
    if path is None:
        prefix = dashboard_prefix(app)
        app.add_handlers(r".*", get_handlers(scheduler, [ROUTES_MODULE], prefix=prefix))
        path = served_path(scheduler)
    return path


def dashboard_prefix(app) -> str:
    """The prefix of a scheduler's routes (``/`` or ``/foo/``), from its ``/health`` route."""
    for rule in _rules(app.default_router):
        if rule.target is HealthHandler:
            return rule.matcher.regex.pattern.rstrip("$").removesuffix("health")
    return "/"


def _rules(router) -> Iterator[Any]:
    """Every rule of a tornado router, and of the routers it holds (depth first)."""
    for rule in getattr(router, "rules", []):
        yield rule
        yield from _rules(rule.target)


class DashboardPage(SchedulerPlugin):
    """Adds the page's routes to a scheduler started without them (the fallback)."""

    name = "auroradask-dashboard"

    async def start(self, scheduler) -> None:
        serve_page(scheduler)


def dashboard_page(client) -> str | None:
    """Serve auroradask's page on the client's scheduler; return its URL.

    The page shows the run :func:`auroradask.to_zarr` is writing (frames per second over time,
    per site done of total, label counts so far, the store), beside Dask's dashboard on the
    same server. :func:`auroradask.start_client` already calls this.

    A scheduler started where auroradask is installed already serves the page (see the module
    notes: a route module, listed by a preload that auroradask's installation configures);
    otherwise this adds it with a scheduler plugin. Either way the page sits under the
    dashboard's prefix (``--dashboard-prefix``, ``http_prefix``), and so does the URL returned.

    Parameters
    ----------
    client
        A ``distributed.Client``. The scheduler must be able to import auroradask (true for a
        LocalCluster; for a remote scheduler, install auroradask where it runs).

    Returns
    -------
    str or None
        ``http://host:port/auroradask`` (``http://host:port/foo/auroradask`` under a prefix),
        or None if the scheduler has no dashboard or cannot serve the page (a warning is
        logged, nothing fails).
    """
    link = _dask_link(client)
    if link is None:
        return None
    known = getattr(client, "_auroradask_page", None)
    if known is not None and known[0] == client.scheduler.address:
        return known[1]
    try:
        path = client.run_on_scheduler(served_path)
        if path is None:
            client.register_plugin(DashboardPage())
            path = client.run_on_scheduler(served_path)
    except Exception as error:  # a remote scheduler without auroradask: the run goes on
        logger.warning("auroradask's dashboard page is not served: %s", error)
        return None
    if path is None:  # the scheduler has no web server
        return None
    url = page_link(link, path)
    client._auroradask_page = (client.scheduler.address, url)
    return url


def page_link(dask_link: str, path: str = PAGE_PATH) -> str:
    """The page's URL from Dask's dashboard link and the path the scheduler serves it at.

    ``dask_link`` is what ``Client.dashboard_link`` gives (``distributed.dashboard.link``):
    ``http://host:port/status``, which knows no prefix unless a user's template adds it, or a
    proxy's URL. ``path`` carries the prefix; it is added unless the link already ends with it.
    """
    base = dask_link.split("?")[0].rstrip("/")
    if base.endswith("/status"):
        base = base[: -len("/status")]
    prefix = path.removesuffix(PAGE_PATH.lstrip("/")).rstrip("/")
    if prefix and not base.endswith(prefix):
        base += prefix
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
            "frames": 0,
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
            frames=summary.frames,
            skipped=summary.skipped,
            sites={s: [summary.site_done.get(s, 0), n] for s, n in summary.site_total.items()},
            labels=dict(summary.label_counts),
            frame_status=dict(summary.status_counts),
        )
        if not self.samples or self.samples[-1][1] != summary.written:
            self.samples.append([now, summary.written, summary.frames])
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


__all__ = [
    "DashboardPage",
    "PageHandler",
    "RunPublisher",
    "SlashRedirect",
    "StateHandler",
    "add_routes_to_config",
    "dashboard_page",
    "page_html",
    "page_link",
    "serve_page",
    "served_path",
]
