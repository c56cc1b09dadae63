"""Zarr results stores: the lock (``_lock``), writing (``_write``), reading (``_read``)."""

from ._lock import StoreLock
from ._read import describe, open_results
from ._write import WriteSummary, to_zarr

__all__ = ["StoreLock", "WriteSummary", "describe", "open_results", "to_zarr"]
