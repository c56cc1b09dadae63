"""What :func:`auroradask.patches` returns: the patch and track tables, the counts, and
their outputs (parquet files, a figure of the tracks on a frame).

Apart from the detection and tracking code because it is what a user holds and plots,
and the one part that imports pyarrow and matplotlib (deferred, inside its methods).
"""

from __future__ import annotations

import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import xarray as xr

from .._figure import new_figure
from .._schema import FRAME_SHAPE
from ..errors import ArgumentError


@dataclass
class PatchResult:
    """What :func:`patches` found.

    ``table``: one row per patch per frame (:data:`PATCH_COLUMNS` + ``track``);
    ``counts``: patches per (site, time), ``-1`` where the frame is not ok; ``tracks``: one
    row per track (:func:`summarize_tracks`); ``attrs``: the options, for provenance.
    """

    table: pd.DataFrame
    counts: xr.DataArray
    tracks: pd.DataFrame
    attrs: dict[str, Any] = field(default_factory=dict)

    def to_parquet(self, path: str | os.PathLike, tracks_path: str | os.PathLike | None = None):
        """Write the patch table (and optionally the track table) as parquet (pyarrow)."""
        import pyarrow as pa
        import pyarrow.parquet as pq

        table = pa.Table.from_pandas(self.table, preserve_index=False)
        table = table.replace_schema_metadata(
            {**(table.schema.metadata or {}), b"auroradask": repr(self.attrs).encode()}
        )
        pq.write_table(table, path)
        if tracks_path is not None:
            pq.write_table(pa.Table.from_pandas(self.tracks, preserve_index=False), tracks_path)

    def plot_tracks(
        self,
        path: str | os.PathLike,
        frame: np.ndarray | Mapping[str, np.ndarray] | None = None,
        site: str | Sequence[str] | None = None,
    ):
        """Draw the tracks of each site on a frame of it, one panel a site; save to ``path``.

        Parameters
        ----------
        path
            The figure file.
        frame
            The frame under the tracks: one array (for one site), a mapping site → frame, or
            None (tracks on an empty frame-sized panel).
        site
            A site, several, or None (default): every site of the result.

        Returns
        -------
        matplotlib.figure.Figure
        """
        from matplotlib import colormaps  # deferred: matplotlib is slow to import

        all_sites = [str(s) for s in self.counts["site"].values]
        sites = all_sites if site is None else [site] if isinstance(site, str) else list(site)
        unknown = [s for s in sites if s not in all_sites]
        if unknown:
            raise ArgumentError(f"site: no site {unknown} in the result; it has {all_sites}")
        if isinstance(frame, np.ndarray) and len(sites) > 1:
            raise ArgumentError(
                f"frame: one frame for {len(sites)} sites; give a mapping site -> frame"
            )
        frames = frame if isinstance(frame, Mapping) else {sites[0]: frame}
        fig = new_figure(5 * len(sites), 5.4)
        cmap = colormaps["tab20"]
        for ax, name in zip(np.atleast_1d(fig.subplots(1, len(sites))), sites, strict=True):
            table = self.table[self.table["site"] == name]
            under = frames.get(name)
            if under is not None:
                lo, hi = np.nanpercentile(under, [1, 99.5])
                ax.imshow(under, cmap="gray", vmin=lo, vmax=hi, origin="upper")
            else:
                ax.set_xlim(0, FRAME_SHAPE[1])
                ax.set_ylim(FRAME_SHAPE[0], 0)
            for k, (_tid, group) in enumerate(table.groupby("track")):
                ax.plot(group["col"], group["row"], "-", color=cmap(k % 20), lw=1.2)
                ax.plot(group["col"].iloc[-1], group["row"].iloc[-1], "o", color=cmap(k % 20), ms=3)
            ax.set_title(f"{name}: {table['track'].nunique()} tracks, {len(table)} patches")
            ax.set_xlabel("column (px)")
            ax.set_ylabel("row (px)")
            for x, y, mark in ((0.5, 0.98, "N"), (0.02, 0.5, "E")):  # the stream0 orientation
                ax.text(
                    x,
                    y,
                    mark,
                    transform=ax.transAxes,
                    ha="center",
                    va="top" if mark == "N" else "center",
                    color="#ffd200",
                    weight="bold",
                )
        fig.savefig(path, dpi=100)
        return fig
