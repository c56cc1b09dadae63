"""auroradask in the environment a space physicist already has: beside pyaurorax and asilib.

Runs only where both are installed (``.ci/run`` makes that environment from scratch:
``pip install . pyaurorax aurora-asi-lib``); elsewhere the module is skipped, unless
``AURORADASK_REQUIRE_NEIGHBOURS=1`` makes their absence a failure. asilib pins numpy < 2 and
opencv-python < 5, so that environment is also the one with numpy 1.x and OpenCV 4.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import os

import numpy as np
import pytest

import auroradask
from auroradask.preprocessing._clahe import clahe_uint16
from tests.support.utils import open_sample, sample_files

pytestmark = pytest.mark.neighbours

OPENCV_DISTRIBUTIONS = (
    "opencv-python",
    "opencv-python-headless",
    "opencv-contrib-python",
    "opencv-contrib-python-headless",
)


def _neighbour(name: str):
    if os.environ.get("AURORADASK_REQUIRE_NEIGHBOURS") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="module", autouse=True)
def neighbours():
    return _neighbour("pyaurorax"), _neighbour("asilib")


def _installed(name: str) -> str | None:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return None


def test_one_opencv_distribution_owns_cv2():
    # two distributions writing the same cv2 files leave a module of mixed versions; with
    # auroradask requiring opencv-python, as pyucalgarysrs and asilib do, there is one
    installed = {d: v for d in OPENCV_DISTRIBUTIONS if (v := _installed(d))}
    assert list(installed) == ["opencv-python"], installed
    import cv2

    assert cv2.__version__.split(".")[:2] == installed["opencv-python"].split(".")[:2]


def test_clahe_still_exact_against_this_opencv():
    import cv2

    frames = open_sample().images.values[0]
    for frame in frames[::7]:
        expected = cv2.createCLAHE(clipLimit=3.0, tileGridSize=(8, 8)).apply(frame)
        np.testing.assert_array_equal(clahe_uint16(frame, 3.0, (8, 8)), expected)


def test_frames_equal_what_the_neighbours_read():
    # asilib reads THEMIS with themis-imager-readfile, pyaurorax with pyucalgarysrs (which
    # turns frames upside down for display); both must see auroradask's pixels and times
    import themis_imager_readfile
    from pyucalgarysrs.data.read import ReadManager

    frames = open_sample().compute()
    images, metadata, problems = themis_imager_readfile.read(sample_files(), quiet=True)
    assert problems == []
    np.testing.assert_array_equal(frames.images.values[0], np.moveaxis(images, 2, 0))
    srs = ReadManager().read_themis(sample_files(), quiet=True)
    np.testing.assert_array_equal(frames.images.values[0], np.moveaxis(srs.data[::-1], 2, 0))
    times = np.array([np.datetime64(t, "ns") for t in srs.timestamp])
    np.testing.assert_array_equal(frames.timestamp.values[0], times)


def test_sample_end_to_end(tmp_path):
    frames = open_sample()
    results = auroradask.classify(frames, auroradask.demo_model())
    summary = auroradask.to_zarr(results, tmp_path / "sample.zarr", progress=False)
    assert summary.written == 120 and summary.status_counts == {"ok": 120}
    info = auroradask.describe(auroradask.open_results(tmp_path / "sample.zarr"))
    assert sum(info["label_counts"].values()) == 120
    assert info["provenance"]["version_numpy"] == np.__version__
