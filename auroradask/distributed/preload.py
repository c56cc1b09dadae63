"""A Dask scheduler preload that puts auroradask's page on the scheduler.

auroradask's installation lists it in ``{sys.prefix}/etc/dask/auroradask-dashboard.yaml``
(``distributed.scheduler.preload``), so every scheduler started in that environment imports
it. A scheduler processes its preloads before it reads ``distributed.scheduler.http.routes``
(``Scheduler.__init__``), and this module's import appends the route module
(:mod:`auroradask.distributed.routes`) to that list: the scheduler then serves the page
under its dashboard prefix, as it serves its own routes.

A process imports a preload once; for a later scheduler of the same process whose config
lost the entry (``dask.config.refresh()``), :func:`dask_setup` adds the routes to the running
scheduler instead. Nothing here may stop a scheduler from starting: a failure is logged.

To list it yourself (a dask config of your own that sets ``distributed.scheduler.preload``
replaces auroradask's list), add ``auroradask.distributed.preload`` to your list, or start a
scheduler with ``dask scheduler --preload auroradask.distributed.preload``.
"""

from __future__ import annotations

import logging

from ._dashboard import add_routes_to_config, serve_page

logger = logging.getLogger("auroradask")


def _add_routes() -> None:
    try:
        add_routes_to_config()
    except Exception as error:  # never break the scheduler that imports this
        logger.warning("auroradask's dashboard page is not configured: %s", error)


def dask_setup(scheduler) -> None:
    """At the scheduler's start: serve the page if its routes were not read from the config."""
    try:
        serve_page(scheduler)
    except Exception as error:  # never break the scheduler
        logger.warning("auroradask's dashboard page is not served: %s", error)
    _add_routes()


_add_routes()
