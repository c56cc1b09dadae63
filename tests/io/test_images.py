"""Image folders as frames: names with times and sites, a CSV of times, only an index, and
an OATH-like labelled folder (images/cropped_scaled/<id>.png + classifications.csv)."""

from __future__ import annotations

import cv2
import numpy as np
import pandas as pd
import pytest

import auroradask
from auroradask.errors import ArgumentError


@pytest.fixture(scope="module")
def sample_frames():
    frames = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:01"
    )
    return frames["images"].values[0, :4], frames["time"].values[:4]


def test_names_give_time_and_site_and_16_bit_frames_round_trip(tmp_path, sample_frames):
    images, times = sample_frames
    for image, time in zip(images, times, strict=True):
        name = pd.Timestamp(time).strftime("gill_%Y%m%d_%H%M%S.png")
        cv2.imwrite(str(tmp_path / name), image)
    frames = auroradask.open_images(tmp_path, "*.png", times="name")
    assert list(frames["site"].values) == ["gill"]
    np.testing.assert_array_equal(frames["time"].values, times)
    np.testing.assert_array_equal(frames["images"].values[0], images)
    assert (frames["frame_status"].values == 0).all()
    results = auroradask.classify(frames, auroradask.demo_model())
    reference = auroradask.classify(
        auroradask.open_themis(
            auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:00:12"
        ),
        auroradask.demo_model(),
    )
    np.testing.assert_array_equal(results["label"].values, reference["label"].values)


def test_csv_of_times_and_sites(tmp_path, sample_frames):
    images, times = sample_frames
    rows = []
    for k, image in enumerate(images):
        cv2.imwrite(str(tmp_path / f"frame{k}.tif"), image)
        rows.append(
            {
                "file": f"frame{k}.tif",
                "time": str(pd.Timestamp(times[k])),
                "site": "gill" if k < 2 else "atha",
            }
        )
    pd.DataFrame(rows).to_csv(tmp_path / "times.csv", index=False)
    frames = auroradask.open_images(tmp_path, "*.tif", times=str(tmp_path / "times.csv"))
    assert list(frames["site"].values) == ["atha", "gill"]
    status = frames["frame_status"].values
    assert (status == 0).sum() == 4 and (status == 1).sum() == 4  # each site misses 2 slots
    np.testing.assert_array_equal(frames["images"].values[1, :2], images[:2])


def test_oath_like_folder_with_labels_on_an_index(tmp_path):
    root = tmp_path / "oath"
    folder = root / "images" / "cropped_scaled"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for k in range(5):
        cv2.imwrite(str(folder / f"{k}.png"), rng.integers(0, 255, (128, 128, 3), np.uint8))
    pd.DataFrame(
        {"picture_id": range(5), "class6": [0, 1, 2, 3, 5], "class2": [0, 0, 1, 1, 1]}
    ).to_csv(root / "classifications.csv", index=False)
    frames = auroradask.open_images(folder, "*.png", labels=root / "classifications.csv")
    assert frames.sizes == {"site": 1, "time": 5, "y": 256, "x": 256}
    np.testing.assert_array_equal(frames["time"].values, np.arange(5))
    np.testing.assert_array_equal(frames["class6"].values[0], [0, 1, 2, 3, 5])
    assert frames["images"].dtype == np.uint16
    assert frames["images"].values.max() > 255  # 8 bits scaled to 16
    preprocessed = auroradask.preprocess(frames).values
    assert preprocessed.shape == (1, 5, 224, 224, 3)
    results = auroradask.classify(frames, auroradask.demo_model())
    assert (results["label"].values >= 0).all()


def test_no_match_is_an_argument_error(tmp_path):
    with pytest.raises(ArgumentError, match="^pattern:"):
        auroradask.open_images(tmp_path, "*.png")
