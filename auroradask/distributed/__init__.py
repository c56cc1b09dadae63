"""Running on a Dask cluster: the client and its defaults (``_client``), auroradask's
dashboard page (``_dashboard``) and progress reporting (``_progress``).
"""

from ._batch import batch_cluster
from ._client import dashboard_link, start_client, threads_for_model
from ._dashboard import dashboard_page

__all__ = [
    "batch_cluster",
    "dashboard_link",
    "dashboard_page",
    "start_client",
    "threads_for_model",
]
