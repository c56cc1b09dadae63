"""Zarr results stores: the lock, writing, reading and describing."""

from ._write import (
    StoreError,
    StoreLock,
    StoreLockedError,
    WriteSummary,
    describe,
    open_results,
    to_zarr,
)

__all__ = [
    "StoreError",
    "StoreLock",
    "StoreLockedError",
    "WriteSummary",
    "describe",
    "open_results",
    "to_zarr",
]
