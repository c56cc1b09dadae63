"""The varied demo archive (tests/support/aurora.py): synthetic scenes painted over the real
sample's stars and noise, so that the demo model's labels follow the scenes and vary."""

from __future__ import annotations

import pandas as pd

import auroradask
from tests.support.archive import make_archive


def test_demo_model_labels_follow_the_painted_scenes(tmp_path):
    make_archive(tmp_path, ["gill"], "2014-03-10T04:00", 2, 60, sky="varied")
    assert "SYNTHETIC" in (tmp_path / "SYNTHETIC.txt").read_text()
    scenes = pd.read_csv(tmp_path / "scenes.csv", parse_dates=["start"])
    assert scenes["minutes"].sum() == 120
    frames = auroradask.open_themis(tmp_path, "gill", "2014-03-10T04:00", "2014-03-10T06:00")
    results = auroradask.classify(frames, auroradask.demo_model(), keogram=False)
    results = results.compute(scheduler="threads")
    names = [str(c) for c in results["class"].values]
    labels = pd.Series(results["label"].values[0], index=pd.DatetimeIndex(results["time"].values))
    agree = 0
    for block in scenes.itertuples():
        end = block.start + pd.Timedelta(minutes=block.minutes) - pd.Timedelta("1s")
        agree += int((labels[block.start : end].map(names.__getitem__) == block.scene).sum())
    # the demo model reads some arcs as pulsating; most frames still get their scene's class
    assert agree / len(labels) > 0.6
    assert len(set(labels.map(names.__getitem__))) >= 3


def test_real_sky_is_left_as_it_is(tmp_path):
    make_archive(tmp_path, ["gill"], "2014-03-10T06:00", 1, 2)
    assert not (tmp_path / "SYNTHETIC.txt").exists()
    frames = auroradask.open_themis(tmp_path, "gill", "2014-03-10T06:00", "2014-03-10T06:02")
    sample = auroradask.open_themis(
        auroradask.sample_archive(), "gill", "2014-03-10T06:00", "2014-03-10T06:02"
    )
    assert (frames["images"].values == sample["images"].values).all()
