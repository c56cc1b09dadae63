"""distributed's route module for auroradask's page: ``/auroradask`` and its state.

A scheduler serves the modules listed in ``distributed.scheduler.http.routes``, each path
under its dashboard prefix (``distributed.http.utils.get_handlers``). auroradask's preload
(:mod:`auroradask.distributed.preload`) appends this module to that list; a dask config may
also list it beside distributed's own modules (a list there replaces the default one, so keep
them)::

    distributed:
      scheduler:
        http:
          routes:
            - distributed.http.scheduler.prometheus
            - distributed.http.scheduler.info
            - distributed.http.scheduler.json
            - distributed.http.health
            - distributed.http.proxy
            - distributed.http.statics
            - auroradask.distributed.routes
"""

from __future__ import annotations

from ._dashboard import PageHandler, SlashRedirect, StateHandler

routes: list[tuple] = [
    ("auroradask", PageHandler, {}),
    ("auroradask/", SlashRedirect, {}),
    (r"auroradask/state\.json", StateHandler, {}),
]
