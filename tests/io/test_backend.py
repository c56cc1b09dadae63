"""The xarray backend (engine="themis"): one file opens as the frames data model, and many
files combine into what the archive openers give."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import xarray as xr

import auroradask
from auroradask.errors import ArgumentError
from tests.support.utils import open_sample, sample_files

DATA = Path(__file__).parents[1] / "data"
CDF = DATA / "thg_l1_asf_gako_2011010617_v01.cdf"
THUMBNAIL = DATA / "thg_l1_ast_gako_20110505_v01.cdf"


def test_open_mfdataset_over_the_sample_equals_open_themis():
    files = sample_files()
    assert len(files) == 6
    combined = xr.open_mfdataset(files, engine="themis", combine="by_coords")
    assert combined.sizes["time"] == 120
    reference = open_sample()
    xr.testing.assert_equal(combined.load(), reference.load())
    assert int((combined["frame_status"] == 0).sum()) == int((reference["frame_status"] == 0).sum())


def test_one_file_outside_any_tree_opens_by_its_name(tmp_path):
    minute = next(f for f in sample_files() if "_0603_" in f)
    copy = tmp_path / Path(minute).name
    shutil.copy(minute, copy)
    frames = xr.open_dataset(copy)  # the engine is guessed from the name
    assert list(frames["site"].values) == ["gill"]
    assert str(frames["imager"].values[0]) == "themis19"
    assert frames["time"].values[0] == np.datetime64("2014-03-10T06:03:00")
    assert frames.sizes["time"] == 20
    expected = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:03", "2014-03-10T06:04"
    )
    xr.testing.assert_equal(frames.load(), expected.load())
    assert (frames["images"].values > 0).any()


def test_drop_variables():
    frames = xr.open_dataset(sample_files()[0], engine="themis", drop_variables=["ccd_temperature"])
    assert "ccd_temperature" not in frames
    assert "images" in frames


def test_cdf_hour_file_equals_open_themis_cdf():
    frames = xr.open_dataset(CDF, engine="themis")
    expected = auroradask.open_themis_cdf(CDF, "gako", "2011-01-06T17:00", "2011-01-06T18:00")
    assert frames.sizes["time"] == 1200
    xr.testing.assert_equal(frames.load(), expected.load())
    assert int((frames["frame_status"] == 0).sum()) > 0


def test_misnamed_and_thumbnail_files_are_refused_by_name(tmp_path):
    wrong = tmp_path / "frames.pgm.gz"
    shutil.copy(sample_files()[0], wrong)
    with pytest.raises(ArgumentError, match="frames.pgm.gz.*YYYYMMDD_HHMM_<site>"):
        xr.open_dataset(wrong, engine="themis")
    with pytest.raises(ArgumentError, match="thumbnail"):
        xr.open_dataset(THUMBNAIL, engine="themis")
