"""Generate realistic stream0 archives from the bundled real frames.

Each generated minute file is a real sample minute (cycled) with its headers rewritten to the
new site and time, gzip-compressed as in the archive, so reading and decompressing cost what
they cost on real data.
"""

from __future__ import annotations

import gzip
import os
import re
from pathlib import Path

import pandas as pd

import auroradask
from tests.support import aurora

_SAMPLE_MINUTES: list[bytes] | None = None


def _sample_minutes() -> list[bytes]:
    global _SAMPLE_MINUTES
    if _SAMPLE_MINUTES is None:
        files = sorted(Path(auroradask.sample_archive()).rglob("*_full.pgm*"))
        raw = [f.read_bytes() for f in files]
        _SAMPLE_MINUTES = [
            gzip.decompress(r) if f.suffix == ".gz" else r for f, r in zip(files, raw, strict=True)
        ]
    return _SAMPLE_MINUTES


def relabel_minute(data: bytes, site: str, minute: pd.Timestamp) -> bytes:
    """A sample minute file's (decompressed) bytes as if recorded at ``site`` in ``minute``.

    Rewrites the date, hour and minute of every header time and the header's site; the
    seconds stay, so frames keep their 3-second slots within the minute.
    """
    data = re.sub(rb"\d{4}-\d\d-\d\d \d\d:\d\d:", minute.strftime("%Y-%m-%d %H:%M:").encode(), data)
    return data.replace(b'"Site unique ID" gill', f'"Site unique ID" {site}'.encode())


def make_archive(
    root: str | os.PathLike,
    sites: list[str],
    start: str,
    hours: int,
    minutes_per_hour: int = 60,
    imager: str = "themis99",
    sky: str = "real",
) -> list[Path]:
    """Write ``sites × hours × minutes_per_hour`` gzip minute files; return their paths.

    ``sky="real"``: the real sample minutes as they are (reading costs what it costs on real
    data). ``sky="varied"``: SYNTHETIC aurora, clouds and moon painted over the real stars
    and noise, one scene per block of minutes of each site's run (:mod:`tests.support.aurora`),
    so that the demo model's labels vary; the root gets ``SYNTHETIC.txt`` and ``scenes.csv``.
    """
    if sky not in ("real", "varied"):
        raise ValueError(f"sky: 'real' or 'varied', not {sky!r}")
    root = Path(root)
    written = []
    minutes = _sample_minutes()
    first = pd.Timestamp(start)
    n = 0
    scenes = []
    for site in sites:
        plan = aurora.night_plan(hours * minutes_per_hour, aurora.seed_for(site, start))
        scenes += [(site, first + pd.Timedelta(minutes=b.first), b.minutes, b.scene) for b in plan]
        for hour in range(hours):
            for minute in range(minutes_per_hour):
                t = first + pd.Timedelta(hours=hour, minutes=minute)
                folder = root / t.strftime("%Y/%m/%d") / f"{site}_{imager}" / t.strftime("ut%H")
                folder.mkdir(parents=True, exist_ok=True)
                path = folder / f"{t:%Y%m%d_%H%M}_{site}_{imager}_full.pgm.gz"
                if not path.exists():  # the same bytes every time: an archive is reused
                    data = relabel_minute(minutes[n % len(minutes)], site, t)
                    if sky == "varied":
                        index = hour * minutes_per_hour + minute
                        block = aurora.block_at(plan, index)
                        data = aurora.paint_minute(data, block, index - block.first)
                    part = path.with_name(path.name + ".part")  # no half-written file is kept
                    part.write_bytes(gzip.compress(data, compresslevel=6))
                    part.replace(path)
                written.append(path)
                n += 1
    if sky == "varied":
        root.mkdir(parents=True, exist_ok=True)
        (root / "SYNTHETIC.txt").write_text(aurora.PROVENANCE)
        pd.DataFrame(scenes, columns=["site", "start", "minutes", "scene"]).to_csv(
            root / "scenes.csv", index=False
        )
    return written


def make_empty_tree(
    root: str | os.PathLike, sites: int = 10, days: int = 2, hours: int = 14
) -> int:
    """A stream0 tree of empty minute files (for the cost of opening); returns the file count."""
    count = 0
    for day in range(days):
        for s in range(sites):
            for hour in range(hours):
                folder = Path(root) / f"2014/03/{10 + day:02d}/s{s:03d}_themis{s:02d}/ut{hour:02d}"
                folder.mkdir(parents=True, exist_ok=True)
                for minute in range(60):
                    (
                        folder
                        / f"201403{10 + day:02d}_{hour:02d}{minute:02d}_s{s:03d}_themis{s:02d}_full.pgm.gz"
                    ).touch()
                    count += 1
    return count
