"""auroradask in the environment a space physicist already has: beside pyaurorax and asilib.

Runs only where both are installed (``.ci/run`` makes that environment from scratch:
``pip install . pyaurorax asilib``); elsewhere the module is skipped, unless
``AURORADASK_REQUIRE_NEIGHBOURS=1`` makes their absence a failure (``conftest.py``). asilib
(0.22 and later; ``aurora-asi-lib`` is its abandoned old name) requires plain numpy and
opencv-python < 5, so that environment has numpy 2 and OpenCV 4.
"""

from __future__ import annotations

import importlib
import importlib.metadata
import sys

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


@pytest.fixture(scope="module", autouse=True)
def neighbours(pyaurorax, asilib):  # conftest.py: skipped where they are missing
    return pyaurorax, asilib


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


def test_frames_equal_what_the_neighbours_read(asilib_themis_imager):
    # asilib reads THEMIS with its own copy of UCalgary's reader (asilib.asi.themis.read, in
    # the files' pixel order) and its Imager loads them turned north-south (asilib's
    # orientation); pyaurorax reads with pyucalgarysrs, which turns them upside down for
    # display too. All must see auroradask's pixels and times.
    from pyucalgarysrs.data.read import ReadManager

    importlib.import_module("asilib.asi.themis")
    themis = sys.modules["asilib.asi.themis"]  # the module, not asilib.asi's function
    frames = open_sample().compute()
    images, metadata, problems = themis.read(sample_files(), quiet=True)
    assert problems == []
    np.testing.assert_array_equal(frames.images.values[0], np.moveaxis(images, 2, 0))
    times, loaded = asilib_themis_imager.data
    np.testing.assert_array_equal(frames.images.values[0], loaded[:, ::-1, :])
    asilib_times = np.array([np.datetime64(t, "ns") for t in times])
    np.testing.assert_array_equal(frames.timestamp.values[0], asilib_times)
    srs = ReadManager().read_themis(sample_files(), quiet=True)
    np.testing.assert_array_equal(frames.images.values[0], np.moveaxis(srs.data[::-1], 2, 0))
    times = np.array([np.datetime64(t, "ns") for t in srs.timestamp])
    np.testing.assert_array_equal(frames.timestamp.values[0], times)


def test_numpy_2_beside_the_neighbours():
    # asilib 0.22+ (the package renamed from aurora-asi-lib) no longer pins numpy < 2, and
    # nothing else here does: the environment resolves numpy 2 (README: Installing)
    assert int(np.__version__.split(".")[0]) >= 2
    assert _installed("aurora-asi-lib") is None and _installed("themis-imager-readfile") is None


def test_sample_end_to_end(tmp_path):
    frames = open_sample()
    results = auroradask.classify(frames, auroradask.demo_model())
    summary = auroradask.to_zarr(results, tmp_path / "sample.zarr", progress=False)
    assert summary.written == 120 and summary.status_counts == {"ok": 120}
    info = auroradask.describe(auroradask.open_results(tmp_path / "sample.zarr"))
    assert sum(info["label_counts"].values()) == 120
    assert info["provenance"]["version_numpy"] == np.__version__
