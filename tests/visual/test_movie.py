"""Movies: the real sample encoded with ffmpeg decodes back (same encoder) to the right number
of frames and size, with the label drawn in its class colour and the cursor moving; each
frames chunk is read once."""

from __future__ import annotations

import imageio_ffmpeg
import numpy as np
import pytest

import auroradask
import auroradask.io._stream0
from auroradask._palette import class_color, rgb
from auroradask.errors import ArgumentError
from auroradask.visual._movie import _windows, frame_plan
from tests.support.utils import classify_sample, open_sample


@pytest.fixture(scope="module")
def results():
    return classify_sample().compute()


def _decode(path):
    reader = imageio_ffmpeg.read_frames(str(path))
    meta = next(reader)
    width, height = meta["size"]
    return np.stack([np.frombuffer(f, np.uint8).reshape(height, width, 3) for f in reader])


def _cursor_x(frame, panel):
    """Column of the red cursor in the keogram panel (middle row of the panel)."""
    row = frame[frame.shape[0] // 2, panel:].astype(int)
    red = (row[:, 0] > 180) & (row[:, 1] < 90) & (row[:, 2] < 90)
    return panel + int(np.flatnonzero(red).mean())


def test_movie_decodes_to_the_frames_with_labels(results, tmp_path, monkeypatch):
    reads = []
    real = auroradask.io._stream0.read_block
    monkeypatch.setattr(
        auroradask.io._stream0, "read_block", lambda *a, **k: reads.append(a[2]) or real(*a, **k)
    )
    frames = open_sample(chunk_minutes=2)  # 3 chunks of 40 frames
    path = tmp_path / "night.mp4"
    info = auroradask.movie(frames, path, results=results, speedup=30, frames_per_task=15)
    assert (info.frames, info.fps, info.size, info.step, info.repeat) == (
        120,
        10,
        (1280, 512),
        1,
        1,
    )
    # the keogram comes from the results: each chunk is read once, though drawn in 3 pieces
    # (the pieces of a chunk are drawn in the same window)
    assert sorted(reads) == list(np.unique(reads)) and len(reads) == 3
    video = _decode(path)
    assert video.shape == (120, 512, 1280, 3)
    assert imageio_ffmpeg.count_frames_and_secs(str(path)) == (120, 12.0)
    # the label box in the class colour (the demo model says bad_viewing everywhere)
    colour = np.array(rgb(class_color("bad_viewing"))) * 255  # as in every figure
    box = video[:, 512 - 40 : 512 - 10, 5:11].reshape(120, -1, 3).mean(axis=1)
    np.testing.assert_allclose(box, np.broadcast_to(colour, box.shape), atol=25)
    # the sky panel is the frame, stretched: brighter where the frame is brighter
    sky = video[60, :, :512].mean(axis=2)
    frame = frames["images"].values[0, 60].astype(float)
    small = frame.reshape(64, 4, 64, 4).mean(axis=(1, 3))
    shown = sky.reshape(64, 8, 64, 8).mean(axis=(1, 3))
    assert np.corrcoef(small[8:56, 8:56].ravel(), shown[8:56, 8:56].ravel())[0, 1] > 0.9
    # the cursor moves left to right, one step per frame
    xs = [_cursor_x(video[k], 512) for k in (0, 60, 119)]
    assert xs[0] < xs[1] < xs[2]


def test_speedup_subsamples_or_repeats(results, tmp_path, monkeypatch):
    frames = open_sample(chunk_minutes=1)
    fast = auroradask.movie(frames, tmp_path / "fast.mp4", results=results, speedup=300, height=256)
    assert (fast.step, fast.data_frames, fast.frames) == (4, 30, 30)
    assert imageio_ffmpeg.count_frames_and_secs(str(fast.path))[0] == 30
    assert _decode(fast.path).shape[1:] == (256, 640, 3)
    reads = []
    real = auroradask.io._stream0.read_block
    monkeypatch.setattr(
        auroradask.io._stream0, "read_block", lambda *a, **k: reads.append(a[2]) or real(*a, **k)
    )
    slow = auroradask.movie(frames.isel(time=slice(0, 6)), tmp_path / "slow.mp4", speedup=6)
    assert len(reads) == 2  # no results: the keogram needs a first pass over the frames
    assert (slow.repeat, slow.frames, slow.fps) == (5, 30, 10)
    assert imageio_ffmpeg.count_frames_and_secs(str(slow.path))[0] == 30


def test_frame_plan_and_windows():
    assert frame_plan(60, 100) == (1, 1, 20.0)
    assert frame_plan(300, 100) == (4, 1, 25.0)
    assert frame_plan(3, 100) == (1, 10, 10.0)
    # windows hold whole source chunks, and at least `threads` pieces where chunks are small
    assert _windows((40, 40, 40), (20, 20, 20, 20, 20, 20), 1) == [(0, 2), (2, 4), (4, 6)]
    assert _windows((20, 20, 20, 5), (20, 20, 20, 5), 2) == [(0, 2), (2, 4)]
    with pytest.raises(ArgumentError, match="speedup"):
        frame_plan(0, 10)


def test_errors(tmp_path):
    frames = open_sample()
    with pytest.raises(ArgumentError, match="height"):
        auroradask.movie(frames, tmp_path / "x.mp4", height=500)
    with pytest.raises(ArgumentError, match="no site"):
        auroradask.movie(frames, tmp_path / "x.mp4", site="fsmi")
