"""SYNTHETIC aurora painted onto real THEMIS frames, for a demo archive whose sky varies.

The bundled sample is six real minutes that the demo model labels ``bad_viewing`` throughout,
so an archive made only of them shows one class: no event, no occurrence rate, no class
montage worth looking at. Here each generated minute keeps what is real in its frames (the
stars and the noise: the frame minus its smooth background) and gets a
synthetic sky: a dark level, airglow, and one scene per block of minutes:

- ``no_aurora``: airglow and stars only;
- ``other_aurora``: one to three arcs drifting slowly across the sky, with diffuse glow;
- ``pulsating``: patches fixed in place that switch on and off with a period of 6-15 s;
- ``bad_viewing``: cloud cover drifting across, or the moon and its glare.

The real noise is scaled to the demo sky's darker level. The scenes are drawn as ``examples/train_demo_model.py`` draws its training sky (the same
shapes and brightness ranges), so the demo model's labels follow them, but made coherent in
time, so keograms, events and movies look like a night. **Nothing here is real aurora**: the
archive's root gets a ``SYNTHETIC.txt`` and a ``scenes.csv`` saying what was drawn where.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass

import cv2
import numpy as np

SCENES = ("no_aurora", "other_aurora", "pulsating", "bad_viewing")
SIZE = 256
#: robust standard deviation of the painted frames' noise, counts
NOISE = 40.0
_PIXELS = re.compile(rb"\n256 256\n65535\n")
_FRAME_BYTES = SIZE * SIZE * 2
_Y, _X = np.indices((SIZE, SIZE), dtype=np.float32) - 127.5
_R = np.hypot(_Y, _X)
_INSIDE = np.clip((128 - _R) / 8, 0, 1) * (_R < 120)

PROVENANCE = (
    "SYNTHETIC DEMO ARCHIVE. The frames' stars and noise are real THEMIS data (Gillam, "
    "2014-03-10 06:00-06:06 UT, relabelled to other sites and times); the aurora, clouds and "
    "moon are drawn by tests/support/aurora.py. Not for science.\n"
)


@dataclass(frozen=True)
class Block:
    """A scene held for ``minutes`` minutes from minute ``first`` of the night."""

    first: int
    minutes: int
    scene: str
    seed: int


def night_plan(n_minutes: int, seed: int) -> list[Block]:
    """Scenes for a night of ``n_minutes``: blocks of 6-40 minutes, the classes in a mix a
    pulsating-aurora study would see (quiet, then arcs, then pulsating patches, clouds)."""
    rng = np.random.default_rng(seed)
    weights = np.array([0.3, 0.3, 0.25, 0.15])
    blocks, first = [], 0
    while first < n_minutes:
        length = int(min(rng.integers(6, 41), n_minutes - first))
        scene = SCENES[int(rng.choice(len(SCENES), p=weights))]
        blocks.append(Block(first, length, scene, int(rng.integers(2**31))))
        first += length
    return blocks


def _smooth_noise(rng: np.random.Generator, scale: int) -> np.ndarray:
    coarse = rng.random((SIZE // scale + 2, SIZE // scale + 2)).astype(np.float32)
    field = cv2.resize(coarse, (SIZE + 2 * scale, SIZE + 2 * scale), interpolation=cv2.INTER_CUBIC)
    return np.clip(field[scale : scale + SIZE, scale : scale + SIZE], 0, 1)


def scene_light(block: Block, seconds: float) -> np.ndarray:
    """The light of ``block``'s scene ``seconds`` after the block began (counts, float32)."""
    rng = np.random.default_rng(block.seed)  # the same shapes all through the block
    light = np.zeros((SIZE, SIZE), np.float32)
    if block.scene == "other_aurora":
        for _ in range(int(rng.integers(1, 4))):
            angle = rng.uniform(0, np.pi)
            offset = rng.uniform(-60, 60) + rng.uniform(-0.02, 0.02) * seconds  # drifts
            curve = rng.uniform(-0.004, 0.004)
            d = np.cos(angle) * _Y + np.sin(angle) * _X - offset
            d = d - curve * (-np.sin(angle) * _Y + np.cos(angle) * _X) ** 2
            width, brightness = rng.uniform(3, 12), rng.uniform(6000, 25000)
            light += (
                brightness * np.exp(-0.5 * (d / width) ** 2) * (0.6 + 0.4 * _smooth_noise(rng, 32))
            )
        light += rng.uniform(500, 3000) * _smooth_noise(rng, 64)
    elif block.scene == "pulsating":
        patches = np.clip((_smooth_noise(rng, int(rng.choice([12, 16, 24]))) - 0.55) * 4, 0, 1)
        period, amplitude = rng.uniform(6, 15), rng.uniform(3000, 8000)
        on = (seconds % period) < 0.6 * period
        light += amplitude * (1.0 if on else 0.45) * patches
        light += rng.uniform(300, 1500) * _smooth_noise(rng, 64)
    elif block.scene == "bad_viewing":
        if rng.random() < 0.5:  # the moon and its glare
            cy, cx = rng.uniform(-90, 90, 2)
            dist = np.hypot(_Y - cy, _X - cx)
            light += 62000 * (dist < rng.uniform(4, 8))
            light += rng.uniform(4000, 20000) * np.exp(-dist / rng.uniform(20, 60))
        else:  # cloud drifting across
            shift = int(seconds * rng.uniform(0.02, 0.08)) % SIZE
            cover = np.roll(_smooth_noise(rng, int(rng.choice([32, 48, 64]))), shift, axis=1)
            light += rng.uniform(4000, 15000) * cover
    return light


def paint_frame(real: np.ndarray, block: Block, seconds: float) -> np.ndarray:
    """A real frame's stars and noise under the synthetic sky of ``block`` (uint16)."""
    real = real.astype(np.float32)
    texture = real - cv2.GaussianBlur(real, (0, 0), 2)  # stars and noise
    # the sample's sky is twice as bright as the demo sky, and its noise (shot noise) larger:
    # scaled to NOISE counts, as at the darker level (the demo model reads more as patches)
    spread = 1.4826 * np.median(np.abs(texture - np.median(texture)))
    texture *= NOISE / max(float(spread), 1.0)
    rng = np.random.default_rng(block.seed + 1)
    airglow = 200 * (_R / 120) ** 2 * rng.uniform(0.5, 1.5)
    sky = 3400 + texture + (airglow + scene_light(block, seconds)) * _INSIDE
    return np.clip(sky, 0, 65535).astype(np.uint16)


def paint_minute(data: bytes, block: Block, minute_of_block: int) -> bytes:
    """A decompressed minute file with every frame painted (headers untouched)."""
    out = bytearray(data)
    for i, match in enumerate(_PIXELS.finditer(data)):
        start = match.end()
        real = np.frombuffer(data, ">u2", SIZE * SIZE, start).reshape(SIZE, SIZE)
        painted = paint_frame(real, block, minute_of_block * 60.0 + 3.0 * i)
        out[start : start + _FRAME_BYTES] = painted.astype(">u2").tobytes()
    return bytes(out)


def block_at(blocks: list[Block], minute: int) -> Block:
    """The block holding minute ``minute`` of the night."""
    for block in blocks:
        if block.first <= minute < block.first + block.minutes:
            return block
    raise ValueError(f"minute {minute} is past the plan's {blocks[-1].first + blocks[-1].minutes}")


def seed_for(site: str, night: str) -> int:
    """A stable seed per site and night (not Python's salted hash)."""
    return zlib.crc32(f"{site}/{night}".encode())
