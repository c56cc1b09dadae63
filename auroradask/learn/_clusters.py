"""Morphologies without labels: PCA and k-means of embeddings, fed chunk by chunk.

:func:`cluster` never holds an archive's embeddings at once: scikit-learn's
:class:`~sklearn.decomposition.IncrementalPCA` and
:class:`~sklearn.cluster.MiniBatchKMeans` learn from one dask chunk (a site-day of a store)
at a time, so memory is that of a chunk and of the per-frame cluster labels, whatever the
archive's length. The frames nearest each centre are kept for a montage: what a cluster *is*
is best seen.
"""

from __future__ import annotations

import heapq
import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import dask
import dask.array as da
import numpy as np
import pandas as pd
import xarray as xr

from .._schema import DAY_SLOTS
from ..distributed._progress import counting
from ..errors import ArgumentError
from ..evaluation._truth import open_dataset
from ._extra import require_sklearn


@dataclass
class ClusterResult:
    """Clusters of embedded frames.

    Attributes
    ----------
    labels
        ``cluster(site, time)`` int16 aligned with the embeddings; -1 where a frame has no
        embedding (not classified).
    centres
        ``(cluster, component)``: the centres in PCA space.
    centres_features
        ``(cluster, feature)``: the centres mapped back to the embedding's features.
    nearest
        Per cluster the frames nearest its centre, nearest first: ``cluster``, ``rank``,
        ``site``, ``time``, ``distance`` (in PCA space). Give ``site`` and ``time`` to the
        frames to draw a montage.
    sizes
        Frames per cluster.
    explained_variance_ratio
        Of each principal component.
    inertia
        Sum of squared distances of the frames to their centres (PCA space).
    """

    labels: xr.DataArray
    centres: xr.DataArray
    centres_features: xr.DataArray
    nearest: pd.DataFrame
    sizes: pd.Series
    explained_variance_ratio: np.ndarray
    inertia: float
    pca: object
    kmeans: object

    def nearest_frames(self, cluster: int) -> pd.DataFrame:
        """The rows of :attr:`nearest` of one cluster."""
        return self.nearest[self.nearest["cluster"] == cluster].reset_index(drop=True)

    def nearest_images(
        self, frames: xr.Dataset, clusters: list[int] | None = None
    ) -> tuple[np.ndarray, list[str]]:
        """The raw frames nearest each centre, and a title for each, cluster after cluster.

        Parameters
        ----------
        frames
            The frames the embeddings were made from (``images(site, time, y, x)``).
        clusters
            Which clusters (default: all), in this order.

        Returns
        -------
        (images, titles)
            ``(n, y, x)`` frames as stored and ``"cluster k #rank site time"`` titles: a
            montage's input. Only these frames are read.
        """
        rows = self.nearest
        if clusters is not None:
            rows = pd.concat([rows[rows["cluster"] == k] for k in clusters])
        images = [
            frames["images"].sel(site=row.site, time=row.time).values for row in rows.itertuples()
        ]
        titles = [
            f"cluster {row.cluster} #{row.rank} {row.site} {pd.Timestamp(row.time):%Y-%m-%d %H:%M:%S} UT"
            for row in rows.itertuples()
        ]
        return (np.stack(images) if images else np.empty((0, 0, 0))), titles


def _chunks(
    ds: xr.Dataset, most: int, advance: Callable[[int], None] = lambda n: None
) -> Iterator[tuple[int, slice, np.ndarray, np.ndarray]]:
    """(site index, time slice, embedding rows float32 (n, f), valid (n,)) per dask chunk,
    cut into pieces of at most ``most`` frames (a store's dask chunk holds a month of a site),
    a few pieces computed at once."""
    embedding = ds["embedding"].data
    if not hasattr(embedding, "chunks"):
        embedding = da.from_array(embedding, chunks=(1, most, -1))
    bounds = np.cumsum((0, *embedding.chunks[1]))
    spans = [
        (site, slice(int(start), int(min(start + most, end))))
        for site in range(embedding.shape[0])
        for begin, end in zip(bounds[:-1], bounds[1:], strict=True)
        for start in range(int(begin), int(end), most)
    ]
    for first in range(0, len(spans), 4):  # a few pieces per compute: the threads share them
        batch = spans[first : first + 4]
        values = dask.compute(*[embedding[site, span] for site, span in batch])
        for (site, span), rows in zip(batch, values, strict=True):
            rows = np.asarray(rows, dtype=np.float32)
            advance(len(rows))
            yield site, span, rows, np.isfinite(rows).all(axis=1)


def cluster(
    embeddings: xr.Dataset | str | os.PathLike,
    n_clusters: int,
    *,
    n_components: int = 50,
    nearest: int = 16,
    passes: int = 3,
    batch_frames: int = 2048,
    whiten: bool = False,
    seed: int = 0,
    progress: bool | Callable[[int, int], None] = True,
) -> ClusterResult:
    """Cluster embedded frames: incremental PCA, then mini-batch k-means, chunk by chunk.

    Reads the embeddings ``passes + 2`` times (PCA, k-means passes, labels): give a store or
    a persisted dataset, not the lazy output of :func:`auroradask.embed` (which would run
    the model each time).

    Parameters
    ----------
    embeddings
        An embedding dataset (:func:`auroradask.embed`) or its store.
    n_clusters
        Clusters to find (k).
    n_components
        Principal components kept (fewer if the embedding has fewer features): k-means
        distances in a few dozen dimensions mean more than in thousands.
    nearest
        Frames kept per cluster, nearest its centre first (for a montage).
    passes
        Passes of mini-batch k-means over the frames.
    batch_frames
        Least frames per learning step: pieces smaller than this are merged (a step needs at
        least ``n_components`` and ``n_clusters`` frames); frames are read a dask chunk, or
        at most a site-day, at a time.
    whiten
        Scale the components to unit variance (every direction counts alike).
    seed
        Seeds k-means, so that a run can be repeated.
    progress
        A bar of the frames read over all the passes (True), none (False), or a function
        called with (frames read, frames to read).

    Returns
    -------
    ClusterResult

    Raises
    ------
    ArgumentError
        If the embeddings have no ``embedding`` variable, fewer embedded frames than
        clusters, or an argument is out of range.
    """
    require_sklearn()
    _check_cluster_arguments(
        n_clusters=n_clusters,
        n_components=n_components,
        nearest=nearest,
        passes=passes,
        batch_frames=batch_frames,
    )
    ds = open_dataset(embeddings, "embeddings")
    if "embedding" not in ds:
        raise ArgumentError("embeddings: no 'embedding' variable; make one with auroradask.embed")
    n_components = min(n_components, ds.sizes["feature"])
    step = max(batch_frames, n_components, n_clusters)
    most = max(step, DAY_SLOTS)  # frames read at once: a site-day, a store's Zarr chunk

    n_slots = ds.sizes["site"] * ds.sizes["time"]
    with counting(progress, "cluster", (passes + 2) * n_slots, "frames") as advance:

        def read() -> Iterator[tuple[int, slice, np.ndarray, np.ndarray]]:
            return _chunks(ds, most, advance)

        pca = _fit_pca(read, step, n_components, n_clusters, whiten)
        kmeans = _fit_kmeans(read, pca, n_clusters, step, passes, seed)
        shape = (ds.sizes["site"], ds.sizes["time"])
        labels, heaps, inertia = _assign(read(), shape, pca, kmeans, nearest)
    table = _nearest_table(heaps, ds["site"].values, ds["time"].values)
    return _cluster_result(ds, labels, table, inertia, pca, kmeans)


def _check_cluster_arguments(**values: Any) -> None:
    """Each a whole number at least its least value, or an :class:`ArgumentError` naming it."""
    least = {"n_clusters": 2, "n_components": 1, "nearest": 0, "passes": 1, "batch_frames": 1}
    for name, value in values.items():
        if (
            isinstance(value, bool)
            or not isinstance(value, int | np.integer)
            or value < least[name]
        ):
            raise ArgumentError(f"{name}: expected a whole number >= {least[name]}, got {value!r}")


def _fit_pca(
    read: Callable[[], Iterator], step: int, n_components: int, n_clusters: int, whiten: bool
):
    """Pass 1: the principal components, learnt ``step`` rows or more at a time
    (``partial_fit`` needs at least ``n_components`` rows a call)."""
    from sklearn.decomposition import IncrementalPCA  # deferred: the optional `learn` extra

    pca = IncrementalPCA(n_components=n_components, whiten=whiten)
    total = 0
    for rows in _buffered(read(), step):
        pca.partial_fit(rows)
        total += len(rows)
    if total < n_clusters or total < n_components:
        raise ArgumentError(
            f"embeddings: {total} embedded frames, fewer than n_clusters={n_clusters} or "
            f"n_components={n_components}"
        )
    return pca


def _fit_kmeans(
    read: Callable[[], Iterator], pca, n_clusters: int, step: int, passes: int, seed: int
):
    """Mini-batch k-means in PCA space: k-means++ seeding on the first step, then
    mini-batches, ``passes`` times over the frames."""
    from sklearn.cluster import MiniBatchKMeans  # deferred: the optional `learn` extra

    kmeans = MiniBatchKMeans(
        n_clusters=n_clusters,
        random_state=seed,
        batch_size=step,
        n_init=3,
        reassignment_ratio=0.01,
    )
    for _ in range(passes):
        for rows in _buffered(read(), step):
            kmeans.partial_fit(pca.transform(rows))
    return kmeans


def _assign(
    chunks: Iterator[tuple[int, slice, np.ndarray, np.ndarray]],
    shape: tuple[int, int],
    pca,
    kmeans,
    nearest: int,
) -> tuple[np.ndarray, list[list[tuple[float, int, int, int]]], float]:
    """The last pass: each frame's cluster, the ``nearest`` frames of each cluster and the
    inertia.

    Returns
    -------
    (labels, heaps, inertia)
        ``(site, time)`` int16 labels (-1: no embedding); per cluster a heap of
        ``(-distance, site, slot, cluster)``, the ``nearest`` frames nearest its centre;
        the sum of squared distances to the centres.
    """
    labels = np.full(shape, -1, dtype=np.int16)
    heaps: list[list[tuple[float, int, int, int]]] = [[] for _ in range(kmeans.n_clusters)]
    inertia = 0.0
    for site, span, rows, valid in chunks:
        if not valid.any():
            continue
        projected = pca.transform(rows[valid])
        found = kmeans.predict(projected)
        distance = np.linalg.norm(projected - kmeans.cluster_centers_[found], axis=1)
        inertia += float((distance**2).sum())
        slots = np.arange(span.start, span.stop)[valid]
        labels[site, slots] = found
        if nearest:
            for k in np.unique(found):
                mine = np.flatnonzero(found == k)
                best = mine[np.argsort(distance[mine])[:nearest]]
                items = [(-float(distance[i]), site, int(slots[i]), int(k)) for i in best]
                _keep_nearest(heaps[k], items, nearest)
    return labels, heaps, inertia


def _keep_nearest(heap: list[tuple[float, int, int, int]], items, nearest: int) -> None:
    """Keep the ``nearest`` smallest distances in ``heap``: a min-heap of negated distances,
    whose root is the farthest frame kept."""
    for item in items:
        if len(heap) < nearest:
            heapq.heappush(heap, item)
        elif item > heap[0]:
            heapq.heapreplace(heap, item)


def _nearest_table(heaps, sites: np.ndarray, times: np.ndarray) -> pd.DataFrame:
    """:attr:`ClusterResult.nearest` from the heaps of :func:`_assign`, nearest first."""
    rows = []
    for k, heap in enumerate(heaps):
        for rank, (neg, site, slot, _) in enumerate(sorted(heap, reverse=True)):
            rows.append(
                {
                    "cluster": k,
                    "rank": rank,
                    "site": str(sites[site]),
                    "time": times[slot],
                    "distance": -neg,
                }
            )
    return pd.DataFrame(rows, columns=["cluster", "rank", "site", "time", "distance"])


def _cluster_result(
    ds: xr.Dataset, labels: np.ndarray, nearest: pd.DataFrame, inertia: float, pca, kmeans
) -> ClusterResult:
    """The labels, centres and sizes as xarray and pandas objects aligned with ``ds``."""
    n_clusters = kmeans.n_clusters
    centres = kmeans.cluster_centers_.astype(np.float32)
    cluster_index = np.arange(n_clusters)
    sizes = np.bincount(labels[labels >= 0].astype(np.int64), minlength=n_clusters)
    return ClusterResult(
        labels=xr.DataArray(
            labels,
            dims=("site", "time"),
            coords={"site": ds["site"], "time": ds["time"]},
            name="cluster",
            attrs={
                "long_name": "k-means cluster of the embedding (-1: no embedding)",
                "layer": str(ds["embedding"].attrs.get("layer", "")),
            },
        ),
        centres=xr.DataArray(
            centres,
            dims=("cluster", "component"),
            coords={"cluster": cluster_index},
            name="centre",
        ),
        centres_features=xr.DataArray(
            pca.inverse_transform(centres).astype(np.float32),
            dims=("cluster", "feature"),
            coords={"cluster": cluster_index, "feature": ds["feature"].values},
            name="centre",
        ),
        nearest=nearest,
        sizes=pd.Series(sizes, index=pd.Index(cluster_index, name="cluster"), name="frames"),
        explained_variance_ratio=pca.explained_variance_ratio_.copy(),
        inertia=inertia,
        pca=pca,
        kmeans=kmeans,
    )


def _buffered(chunks, step: int) -> Iterator[np.ndarray]:
    """The valid embedding rows of ``chunks`` in pieces of at least ``step`` rows (the last
    piece is merged into the one before, so that none is too small to learn from)."""
    pending: list[np.ndarray] = []
    held = 0
    ready = None
    for _, _, rows, valid in chunks:
        if not valid.any():
            continue
        pending.append(rows[valid])
        held += int(valid.sum())
        if held >= step:
            if ready is not None:
                yield ready
            ready, pending, held = np.concatenate(pending), [], 0
    if pending:
        tail = np.concatenate(pending)
        ready = tail if ready is None else np.concatenate([ready, tail])
    if ready is not None:
        yield ready
