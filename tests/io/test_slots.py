"""Two frames of one file in one 3-s slot, in both readers: the first in the file is kept,
the other is logged (never dropped silently), and the slot it would have been in, had its
clock not jumped, stays ``frame_missing``. The rule itself is checked on any times by
``test_properties.py``."""

from __future__ import annotations

import gzip
import logging

import numpy as np
import pandas as pd

import auroradask
from auroradask._schema import FRAME_MISSING, OK
from auroradask.io import _cdf
from tests.support.utils import HOUR_DIR, copy_as


def test_stream0_keeps_the_first_of_two_frames_in_a_slot_and_logs_it(tmp_path, caplog):
    root = copy_as(tmp_path)
    (path,) = (root / HOUR_DIR).glob("20140310_0600_gill_themis19_full.pgm*")
    data = gzip.decompress(path.read_bytes()) if path.suffix == ".gz" else path.read_bytes()
    # the third frame (06:00:06) timed 06:00:04.9: in the slot of the second (06:00:03)
    moved = b'"Image request start" 2014-03-10 06:00:06.021224 UTC'
    assert data.count(moved) == 1
    data = data.replace(moved, b'"Image request start" 2014-03-10 06:00:04.900000 UTC')
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)

    with caplog.at_level(logging.WARNING, logger="auroradask"):
        frames = auroradask.open_themis(
            root, "gill", "2014-03-10T06:00", "2014-03-10T06:01"
        ).compute(scheduler="sync")
    stamp = frames["timestamp"].sel(site="gill").to_series()
    status = frames["frame_status"].sel(site="gill").to_series()
    assert stamp["2014-03-10T06:00:03"] == pd.Timestamp("2014-03-10T06:00:03.042202")  # first
    assert status["2014-03-10T06:00:03"] == OK
    assert status["2014-03-10T06:00:06"] == FRAME_MISSING
    assert (status.drop(pd.Timestamp("2014-03-10T06:00:06")) == OK).all()
    assert "two frames in slot 2014-03-10T06:00:03" in caplog.text
    assert "kept the first" in caplog.text and path.name in caplog.text


def test_cdf_keeps_the_first_of_two_frames_in_a_slot_and_logs_it(monkeypatch, caplog):
    hour = np.datetime64("2011-01-06T17", "h")
    start = hour.astype("datetime64[ns]")
    # frames at 0.0 s, 2.5 s (in slot 0 too), 3.2 s, 9.0 s; file order, not time order
    offsets = np.array([2.5, 0.0, 3.2, 9.0])
    times = start + (offsets * 1e9).astype("timedelta64[ns]")
    images = np.arange(4, dtype=np.uint16)[:, None, None] * np.ones((1, 256, 256), np.uint16)
    exposure = np.full(4, 1000.0, dtype=np.float32)
    monkeypatch.setattr(_cdf, "_read_hour", lambda archive, path, window: (images, times, exposure))

    with caplog.at_level(logging.WARNING, logger="auroradask"):
        out = _cdf.read_cdf_block(None, [(hour, "thg_l1_asf_gako_2011010617_v01.cdf")], start, 4)
    record = out[0]
    assert record["frame_status"].tolist() == [OK, OK, FRAME_MISSING, OK]
    assert record["timestamp"][0] == times[0]  # 2.5 s, the first in the file
    assert record["images"][0, 0, 0] == 0 and record["images"][1, 0, 0] == 2
    assert record["images"][3, 0, 0] == 3
    assert "two frames in slot 2011-01-06T17:00:00" in caplog.text
