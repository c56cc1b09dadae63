"""Clusters of embeddings: chunk by chunk, aligned with (site, time), the generator's classes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import xarray as xr
from sklearn.decomposition import IncrementalPCA
from sklearn.metrics import adjusted_rand_score

import auroradask
from tests.support.utils import sky_nights

PENULTIMATE = "/Concat_output_0"
BAD = (5, 70, 150)


@pytest.fixture(scope="module")
def sky():
    """Four synthetic nights, 15 frames of each of the generator's 4 classes a night."""
    frames, truth = sky_nights(4, 15, seed=3, bad=BAD)
    embeddings = auroradask.embed(
        frames, auroradask.demo_model(), output=PENULTIMATE, dtype="float32"
    ).compute()
    return frames, truth, embeddings


@pytest.fixture(scope="module")
def embedded(sky):
    return sky[1:]


def test_clusters_recover_the_generators_classes(embedded):
    truth, embeddings = embedded
    result = auroradask.cluster(embeddings, 4, batch_frames=64, nearest=5)
    labels = result.labels.values[0]
    valid = np.ones(len(labels), dtype=bool)
    valid[list(BAD)] = False
    assert (labels[~valid] == -1).all() and (labels[valid] >= 0).all()
    score = adjusted_rand_score(truth["label"][valid], labels[valid])
    chance = adjusted_rand_score(
        np.random.default_rng(0).permutation(truth["label"][valid]), labels[valid]
    )
    print(f"adjusted Rand index {score:.3f} (shuffled truth: {chance:.3f})")
    assert score > 0.5 and abs(chance) < 0.1  # measured 0.68; chance is 0
    assert result.sizes.sum() == valid.sum()
    assert result.labels.dims == ("site", "time")
    np.testing.assert_array_equal(result.labels["time"], embeddings["time"])


def test_nearest_frames_are_the_closest_members_of_each_cluster(embedded):
    _, embeddings = embedded
    result = auroradask.cluster(embeddings, 4, n_components=10, batch_frames=64, nearest=5)
    rows = embeddings["embedding"].values[0]
    labels = result.labels.values[0]
    valid = labels >= 0
    projected = result.pca.transform(rows[valid])
    distance = np.linalg.norm(projected - result.centres.values[labels[valid]], axis=1)
    times = embeddings["time"].values[valid]
    for k in range(4):
        mine = result.nearest_frames(k)
        assert len(mine) == 5 and mine["rank"].tolist() == list(range(5))
        best = np.argsort(np.where(labels[valid] == k, distance, np.inf))[:5]
        np.testing.assert_array_equal(mine["time"].to_numpy(), times[best])
        np.testing.assert_allclose(mine["distance"], distance[best], rtol=1e-4)
        assert (mine["site"] == "synt").all()
    assert result.centres.shape == (4, 10)
    assert result.centres_features.shape == (4, 96)


def test_fed_chunk_by_chunk(embedded, monkeypatch):
    """Both learners see pieces of about batch_frames frames, never the whole archive."""
    _, embeddings = embedded
    embeddings = embeddings.chunk({"time": 20})
    seen = []
    real = IncrementalPCA.partial_fit

    def spy(self, x, *args, **kwargs):
        seen.append(len(x))
        return real(self, x, *args, **kwargs)

    monkeypatch.setattr(IncrementalPCA, "partial_fit", spy)
    auroradask.cluster(embeddings, 4, n_components=10, batch_frames=60)
    assert len(seen) == 3 and sum(seen) == 240 - len(BAD)
    assert max(seen) < 120


def test_bad_arguments(embedded):
    _, embeddings = embedded
    with pytest.raises(auroradask.ArgumentError, match="n_clusters"):
        auroradask.cluster(embeddings, 1)
    with pytest.raises(auroradask.ArgumentError, match="embedding"):
        auroradask.cluster(embeddings.drop_vars("embedding"), 3)
    with pytest.raises(auroradask.ArgumentError, match="fewer than n_clusters"):
        auroradask.cluster(embeddings.isel(time=slice(0, 3)), 4, n_components=2)


def test_nearest_images_are_the_frames_for_a_montage(sky):
    frames, _, embeddings = sky
    result = auroradask.cluster(embeddings, 4, n_components=10, batch_frames=64, nearest=3)
    images, titles = result.nearest_images(frames, clusters=[2, 0])
    assert images.shape == (6, 256, 256) and images.dtype == np.uint16
    expected = result.nearest_frames(2)
    index = np.searchsorted(frames["time"].values, expected["time"].to_numpy())
    np.testing.assert_array_equal(images[:3], frames["images"].values[0, index])
    assert titles[0].startswith("cluster 2 #0 synt ") and titles[3].startswith("cluster 0 #0")


def test_a_montage_of_the_clusters_is_drawn(sky, tmp_path):
    frames, _, embeddings = sky
    result = auroradask.cluster(embeddings, 4, n_components=10, batch_frames=64, nearest=3)
    images, titles = result.nearest_images(frames)
    path = tmp_path / "clusters.png"
    figure = auroradask.montage(images, titles=titles, columns=3, path=path)
    assert path.stat().st_size > 10_000
    assert len([ax for ax in figure.axes if ax.get_title()]) == 12  # 4 clusters x 3 frames
    # a title longer than its tile is wrapped (at spaces), not cut or overlapping
    assert [ax.get_title().replace("\n", " ") for ax in figure.axes][:3] == titles[:3]


def test_progress_counts_every_frame_of_every_pass(embedded, capsys):
    _, embeddings = embedded
    calls = []
    auroradask.cluster(
        embeddings, 4, n_components=10, passes=2, progress=lambda *c: calls.append(c)
    )
    slots = embeddings.sizes["site"] * embeddings.sizes["time"]
    assert calls[-1] == ((2 + 2) * slots, (2 + 2) * slots)
    capsys.readouterr()
    auroradask.cluster(embeddings, 4, n_components=10, passes=1)
    assert "cluster: 100%" in capsys.readouterr().err
    auroradask.cluster(embeddings, 4, n_components=10, passes=1, progress=False)
    assert capsys.readouterr().err == ""


@pytest.fixture(scope="module")
def two_sites():
    """Two sites of three nights (6 frames of each class a night), embedded, and the same
    embeddings cut into dask chunks of 10 frames: many pieces per site, so that the nearest
    frames of a cluster are merged across pieces and sites."""
    first, _ = sky_nights(3, 6, seed=5, site="synt", bad=(7,))
    second, _ = sky_nights(3, 6, seed=6, site="twin")
    frames = xr.concat([first, second], dim="site")
    embeddings = auroradask.embed(
        frames, auroradask.demo_model(), output=PENULTIMATE, dtype="float32"
    ).compute()
    return frames, embeddings, embeddings.chunk({"time": 10})


def test_nearest_images_are_a_brute_force_sort_of_the_distances(two_sites):
    """Every embedded frame of both sites projected, assigned and measured at once, sorted by
    distance to its centre: the first `nearest` of each cluster are the frames (and images)
    the chunk-by-chunk search keeps, in the same order."""
    frames, embeddings, chunked = two_sites
    nearest, k = 4, 3
    result = auroradask.cluster(chunked, k, n_components=8, batch_frames=16, nearest=nearest)
    rows = embeddings["embedding"].values.reshape(-1, embeddings.sizes["feature"])
    valid = np.isfinite(rows).all(axis=1)
    assert valid.sum() == len(valid) - 1  # the missing frame has no embedding
    projected = result.pca.transform(rows[valid])
    label = result.kmeans.predict(projected)
    np.testing.assert_array_equal(result.labels.values.reshape(-1)[valid], label)
    distance = np.linalg.norm(projected - result.kmeans.cluster_centers_[label], axis=1)
    site = np.repeat(embeddings["site"].values, embeddings.sizes["time"])[valid]
    time = np.tile(embeddings["time"].values, embeddings.sizes["site"])[valid]
    images = frames["images"].values.reshape(-1, *frames["images"].shape[2:])[valid]
    expected_images, expected_titles = [], []
    for cluster in range(k):
        members = np.flatnonzero(label == cluster)
        order = members[np.argsort(distance[members], kind="stable")]
        gaps = np.diff(distance[order[: nearest + 1]])
        assert (gaps > 1e-6).all()  # no tie: the nearest frames are one set, in one order
        best = order[:nearest]
        mine = result.nearest_frames(cluster)
        assert mine["site"].tolist() == site[best].tolist()
        np.testing.assert_array_equal(mine["time"].to_numpy(), time[best])
        np.testing.assert_allclose(mine["distance"], distance[best], rtol=1e-5)
        expected_images.append(images[best])
        expected_titles += [
            f"cluster {cluster} #{rank} {s} {pd.Timestamp(t):%Y-%m-%d %H:%M:%S} UT"
            for rank, (s, t) in enumerate(zip(site[best], time[best], strict=True))
        ]
    got, titles = result.nearest_images(frames)
    np.testing.assert_array_equal(got, np.concatenate(expected_images))
    assert titles == expected_titles
    # both sites hold nearest frames: the merge across sites is exercised
    assert set(result.nearest["site"]) == {"synt", "twin"}
    # chosen clusters, in the order asked
    got, titles = result.nearest_images(frames, clusters=[2, 0])
    np.testing.assert_array_equal(got, np.concatenate([expected_images[2], expected_images[0]]))
    assert titles == expected_titles[2 * nearest :] + expected_titles[:nearest]
