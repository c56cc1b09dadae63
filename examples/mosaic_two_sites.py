"""The docs' mosaic: two sites' frames on a latitude–longitude map, outlined in label colours.

Makes its own two-site archive and skymap tree in a temporary folder, classifies three
minutes with the demo model into a store, then draws the mosaic at 06:01:30 UT into
``docs/_static/gallery/mosaic.png``.

What is real and what is not: the skymaps are the real ones of Athabasca (``atha``, valid
from 2023-01-15) and Gakona (``gako``, valid from 2011-03-05) from ``tests/data``, so the
projection is theirs; the frames are the bundled sample's real Gillam minutes, relabelled as
those two sites on 2023-02-02, with SYNTHETIC aurora painted over their stars and noise
(``tests/support/aurora.py``: pulsating patches over Athabasca, an arc over Gakona); the
labels are the demo model's, which is not trained on real data. Run:
``python examples/mosaic_two_sites.py [OUT.png]``.
"""

from __future__ import annotations

import shutil
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))  # tests.support

import auroradask  # noqa: E402
from tests.support.archive import make_archive  # noqa: E402
from tests.support.utils import GAKO_SKYMAP, SKYMAP  # noqa: E402

OUT = ROOT / "docs" / "_static" / "gallery" / "mosaic.png"


def skymap_tree(folder: Path) -> Path:
    """The two real skymaps laid out as UCalgary publishes them (a tree open_skymaps reads)."""
    for site, date, path in (("atha", "20230115", SKYMAP), ("gako", "20110305", GAKO_SKYMAP)):
        target = folder / site / f"{site}_{date}"
        target.mkdir(parents=True, exist_ok=True)
        shutil.copy(path, target / Path(path).name)
    return folder


def main(out: str | None = None) -> None:
    out_path = Path(out) if out else OUT
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="auroradask-mosaic-"))
    sites = ["atha", "gako"]
    make_archive(work / "archive", sites, "2023-02-02T06:00", 1, minutes_per_hour=3, sky="varied")
    skymaps = skymap_tree(work / "skymaps")

    frames = auroradask.open_themis(work / "archive", sites, "2023-02-02T06:00", "2023-02-02T06:03")
    auroradask.to_zarr(auroradask.classify(frames, auroradask.demo_model()), work / "r.zarr")
    auroradask.mosaic(
        frames,
        "2023-02-02T06:01:30",
        skymaps=skymaps,  # each site's skymap valid at that time
        altitude=110,
        results=work / "r.zarr",
        path=out_path,
        dpi=72,
    )
    print("mosaic ->", out_path)
    shutil.rmtree(work)


if __name__ == "__main__":
    main(*sys.argv[1:2])
