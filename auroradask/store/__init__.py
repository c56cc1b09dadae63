"""Zarr results stores: layout and safe growth (``_layout``), the lock (``_lock``), writing
(``_write``), reading (``_read``), upgrading first-release stores (``_upgrade``)."""

from ._batchplan import BatchPlan, plan_batch
from ._lock import StoreLock
from ._plan import WritePlan, plan_write
from ._read import as_cf, describe, open_results
from ._upgrade import upgrade_store
from ._write import WriteSummary, to_zarr

__all__ = [
    "BatchPlan",
    "plan_batch",
    "StoreLock",
    "as_cf",
    "WriteSummary",
    "WritePlan",
    "plan_write",
    "describe",
    "open_results",
    "to_zarr",
    "upgrade_store",
]
