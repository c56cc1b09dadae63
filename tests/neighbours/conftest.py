"""The neighbours' packages, required or skipped, and asilib's own THEMIS Imager of the sample.

The neighbours tests run only where pyaurorax and asilib are installed (``.ci/run`` makes
that environment from scratch: ``pip install . pyaurorax asilib``); elsewhere they are
skipped, unless ``AURORADASK_REQUIRE_NEIGHBOURS=1`` makes the packages' absence a failure.
"""

from __future__ import annotations

import gzip
import importlib
import os
import shutil
import sys
import warnings
from pathlib import Path

import pytest

from tests.support.utils import SAMPLE_END, SAMPLE_START, SKYMAP, sample_files


def neighbour(name: str):
    """The module ``name``; skips the test where it is missing (fails under CI's flag)."""
    if os.environ.get("AURORADASK_REQUIRE_NEIGHBOURS") == "1":
        return importlib.import_module(name)
    return pytest.importorskip(name)


@pytest.fixture(scope="session")
def asilib():
    return neighbour("asilib")


@pytest.fixture(scope="session")
def pyaurorax():
    return neighbour("pyaurorax")


@pytest.fixture(scope="session")
def asilib_themis_imager(asilib, tmp_path_factory):
    """asilib's own THEMIS Imager of the sample, built offline by ``asilib.asi.themis``.

    asilib finds minute files and skymaps under its data folder before it downloads any
    (``<ASI_DATA_DIR>/themis/images/<site>/*.pgm.gz``, ``.../skymaps/<site>/*skymap_<site>*.sav``);
    the sample is laid out there, gzipped where it is not, with the Athabasca skymap standing
    in for Gillam's (named as Gillam's: asilib picks a skymap by file name).
    """
    root = tmp_path_factory.mktemp("asilib-data") / "themis"
    images = root / "images" / "gill"
    images.mkdir(parents=True)
    for name in sample_files():
        data = Path(name).read_bytes()
        if name.endswith(".pgm"):
            data, name = gzip.compress(data), name + ".gz"
        (images / Path(name).name).write_bytes(data)
    skymaps = root / "skymaps" / "gill" / "gill_20230115"
    skymaps.mkdir(parents=True)
    shutil.copy(SKYMAP, skymaps / "themis_skymap_gill_20230115-+_v02.sav")
    # asilib.asi.themis is both a module and, in asilib.asi, the function of the same name
    importlib.import_module("asilib.asi.themis")
    themis = sys.modules["asilib.asi.themis"]
    saved = themis.local_base_dir
    themis.local_base_dir = root
    try:
        with warnings.catch_warnings():  # the skymap is dated after the sample: asilib warns
            warnings.simplefilter("ignore", UserWarning)
            imager = themis.themis("GILL", time_range=(SAMPLE_START, SAMPLE_END))
            imager.data  # noqa: B018 - load while the data folder is set
    finally:
        themis.local_base_dir = saved
    return imager
