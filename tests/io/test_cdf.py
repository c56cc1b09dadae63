"""THEMIS L1 CDF files: the same frames dataset as stream0, equal to cdflib read directly,
turned to the stream0 orientation (checked against the real Gakona skymap)."""

from __future__ import annotations

import shutil
from pathlib import Path

import cdflib
import numpy as np
import pytest

import auroradask
from auroradask.errors import ArgumentError, InputDataError
from tests.support.utils import GAKO_SKYMAP

DATA = Path(__file__).parents[1] / "data"
CDF = DATA / "thg_l1_asf_gako_2011010617_v01.cdf"
THUMBNAIL = DATA / "thg_l1_ast_gako_20110505_v01.cdf"
HOUR = ("2011-01-06T17:00", "2011-01-06T18:00")


@pytest.fixture(scope="module")
def tree(tmp_path_factory) -> Path:
    """NASA's layout: thg/l1/asi/<site>/YYYY/MM/."""
    root = tmp_path_factory.mktemp("cdf") / "asi"
    (root / "gako/2011/01").mkdir(parents=True)
    shutil.copy(CDF, root / "gako/2011/01" / CDF.name)
    shutil.copy(THUMBNAIL, root / "gako/2011/01" / THUMBNAIL.name)
    return root


@pytest.fixture(scope="module")
def direct():
    cdf = cdflib.CDF(str(CDF))
    images = cdf.varget("thg_asf_gako")
    times = np.asarray(
        cdflib.cdfepoch.to_datetime(cdf.varget("thg_asf_gako_epoch")), dtype="datetime64[ns]"
    )
    return images, times


def test_cdf_frames_equal_cdflib_frame_by_frame(tree, direct):
    frames = auroradask.open_themis_cdf(tree, "gako", *HOUR, chunk_minutes=1)
    assert frames["images"].chunks[1][0] == 20  # lazy, one chunk a minute
    status = frames["frame_status"].values[0]
    ok = status == 0
    images, times = direct
    assert ok.sum() == len(images) == 23
    # the rest of the hour: the file read whole has no frame there
    assert set(status[~ok]) == {3}
    np.testing.assert_array_equal(frames["timestamp"].values[0][ok], times)  # times exact
    got = frames["images"].values[0][ok]
    for k in range(len(images)):  # stored turned by 180° in the CDF
        np.testing.assert_array_equal(got[k], images[k][::-1, ::-1])
    slots = frames["time"].values[ok]
    np.testing.assert_array_equal(
        slots,
        times.astype("datetime64[s]").astype("datetime64[ns]")
        - (times.astype("datetime64[s]").astype(np.int64) % 3) * np.timedelta64(1, "s"),
    )
    exposure = frames["exposure_ms"].values[0][ok]
    assert np.all((exposure > 900) & (exposure < 1100))


def test_cdf_orientation_lines_up_with_the_skymap(tree):
    frames = auroradask.open_themis_cdf(tree, "gako", "2011-01-06T17:00", "2011-01-06T17:02")
    report = auroradask.check_skymap(frames, GAKO_SKYMAP)
    assert report["gako"]["ok"] and report["gako"]["frames"] == 20
    elevation = auroradask.read_skymap(GAKO_SKYMAP)["elevation"].values
    for wrong in (elevation[::-1, ::-1], elevation[::-1], elevation[:, ::-1]):
        with pytest.raises(InputDataError, match="does not line up"):
            auroradask.check_skymap(frames, np.ascontiguousarray(wrong))


def test_single_file_missing_hour_and_status(tmp_path):
    frames = auroradask.open_themis_cdf(CDF, "gako", "2011-01-06T16:58", "2011-01-06T17:01")
    status = frames["frame_status"].values[0]
    assert set(status[:40]) == {1}  # hour 16: no file
    assert (status[40:] == 0).sum() == 20
    broken = tmp_path / CDF.name
    broken.write_bytes(CDF.read_bytes()[:5000])
    frames = auroradask.open_themis_cdf(broken, "gako", "2011-01-06T17:00", "2011-01-06T17:01")
    assert set(frames["frame_status"].values[0]) == {2}


def test_thumbnail_product_is_refused(tree):
    with pytest.raises(ArgumentError, match="thumbnail"):
        auroradask.open_themis_cdf(THUMBNAIL, "gako", "2011-05-05", "2011-05-06")
    with pytest.raises(ArgumentError, match="thumbnail"):
        auroradask.open_themis_cdf(tree / "gako/2011/01" / THUMBNAIL.name, "gako", *HOUR)


def test_unknown_site_is_an_error_unless_the_archive_has_it(tree, tmp_path):
    with pytest.raises(ArgumentError, match="^sites: 'zzzz' is not a THEMIS site"):
        auroradask.open_themis_cdf(tree, ["gako", "zzzz"], *HOUR)
    other = tmp_path / "flat"
    other.mkdir()
    shutil.copy(CDF, other / CDF.name.replace("gako", "zzzz"))
    frames = auroradask.open_themis_cdf(other, "zzzz", *HOUR)
    assert frames.sizes["site"] == 1


def test_cdf_frames_classify(tree):
    frames = auroradask.open_themis_cdf(tree, "gako", "2011-01-06T17:00", "2011-01-06T17:01")
    results = auroradask.classify(frames, auroradask.demo_model(), elevation=GAKO_SKYMAP)
    assert (results["label"].values >= 0).sum() == 20


def test_cdf_over_http_is_cached(tmp_path, http_archive, direct):
    url, requests = http_archive
    folder = tmp_path / "www" / "asi" / "gako" / "2011" / "01"
    folder.mkdir(parents=True)
    shutil.copy(CDF, folder / CDF.name)
    base = url.rsplit("/", 1)[0] + "/asi"
    cache = tmp_path / "cache"
    frames = auroradask.open_themis_cdf(
        base, "gako", "2011-01-06T17:00", "2011-01-06T17:01", cache=cache
    )
    np.testing.assert_array_equal(frames["images"].values[0][:20], direct[0][:20, ::-1, ::-1])
    fetched = [r for r in requests if r.endswith(".cdf")]
    frames["images"].compute()  # a second pass reads the cached copy
    assert [r for r in requests if r.endswith(".cdf")] == fetched
    assert list(cache.rglob("*.cdf"))


def test_one_data_model_and_header_metadata_kept(tree):
    cdf = auroradask.open_themis_cdf(tree, "gako", "2011-01-06T17:00", "2011-01-06T17:01")
    stream0 = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:01"
    )
    assert {k: v.dtype for k, v in cdf.data_vars.items()} == {
        k: v.dtype for k, v in stream0.data_vars.items()
    }
    assert set(cdf.coords) == set(stream0.coords)
    exposure = stream0["exposure_ms"].values[0]
    assert (exposure == 999).all()  # the headers' "Exposure options ... MSEC=999"
    # the site coordinates are in the first frame's header of each minute file
    assert stream0["header_latitude"].values[0, 0] == pytest.approx(56.3539)
    assert stream0["header_longitude"].values[0, 0] == pytest.approx(-94.6557)
    assert np.isnan(stream0["ccd_temperature"].values).all()  # these headers have none


#: Where a mirror keeps the Gakona hour file, below the folder a user passes as the source.
MIRRORS = {
    # pyspedas' local data folder (themis_data/) and NASA's or CDAWeb's themis/ folder
    "pyspedas": "thg/l1/asi/gako/2011/01",
    # $SPEDAS_DATA_DIR, which holds themis/thg/l1/asi/
    "spedas_data_dir": "themis/thg/l1/asi/gako/2011/01",
    # the thg/l1/asi/ folder itself, and a copy of the thg/ folder
    "asi": "gako/2011/01",
    "thg": "l1/asi/gako/2011/01",
    "months": "2011/01",
    "flat": ".",
}


@pytest.mark.parametrize("layout", sorted(MIRRORS))
def test_cdf_files_are_found_under_a_mirror_root(tmp_path, layout, direct):
    root = tmp_path / "themis_data"
    folder = root / MIRRORS[layout]
    folder.mkdir(parents=True, exist_ok=True)
    shutil.copy(CDF, folder / CDF.name)
    frames = auroradask.open_themis_cdf(root, "gako", *HOUR, chunk_minutes=60)
    assert (frames["frame_status"].values[0] == 0).sum() == 23
    np.testing.assert_array_equal(frames["images"].values[0][:23], direct[0][:, ::-1, ::-1])


def test_a_mirror_without_the_site_says_where_it_looked(tmp_path):
    root = tmp_path / "themis_data"
    (root / "thg/l1/asi/gako/2011/01").mkdir(parents=True)
    shutil.copy(CDF, root / "thg/l1/asi/gako/2011/01" / CDF.name)
    with pytest.raises(ArgumentError, match=r"no thg_l1_asf file of fykn .*\(thg/l1/asi/<site>"):
        auroradask.open_themis_cdf(root, "fykn", *HOUR)


def test_a_mirror_root_over_http(tmp_path, http_archive, direct):
    url, _ = http_archive
    folder = tmp_path / "www" / "data" / "themis" / "thg" / "l1" / "asi" / "gako" / "2011" / "01"
    folder.mkdir(parents=True)
    shutil.copy(CDF, folder / CDF.name)
    base = url.rsplit("/", 1)[0] + "/data/themis"  # as https://themis.ssl.berkeley.edu/data/themis
    frames = auroradask.open_themis_cdf(
        base, "gako", "2011-01-06T17:00", "2011-01-06T17:01", cache=tmp_path / "cache"
    )
    np.testing.assert_array_equal(frames["images"].values[0][:20], direct[0][:20, ::-1, ::-1])
