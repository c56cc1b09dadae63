"""The docs gallery: one figure of every kind auroradask draws, from a SYNTHETIC demo archive.

1. writes a small varied demo archive with the project's own generator
   (``tests.support.archive.make_archive(..., sky="varied")``): an hour at Gillam and at
   Inuvik, 2014-03-10 06:00-07:00 UT, 2,400 frames. Each frame keeps the real stars and
   noise of a bundled Gillam minute under SYNTHETIC aurora, clouds and moon (the archive's
   ``SYNTHETIC.txt`` and ``scenes.csv`` say what was drawn where): **no frame of it shows
   real aurora**;
2. classifies it with the demo model (not trained on real data either) into one store, with
   the keogram and the model's penultimate layer (``embed``), so the clusters need no second
   pass;
3. draws each figure into ``--out`` as a PNG small enough for the web, and the quicklook of
   the bundled real sample beside them.

Run from the repository root (it imports the generator from ``tests/support``)::

    python examples/gallery.py                              # into ./auroradask-figures/gallery
    python examples/gallery.py --out docs/_static/gallery   # the docs' figures, on purpose

The archive, stores, truth table and movie stay in ``--work`` (default
``auroradask-figures/gallery-work``) and are reused by the next run.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import numpy as np
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))  # tests.support.archive

import auroradask  # noqa: E402
from tests.support.archive import make_archive  # noqa: E402

SITES = ["gill", "inuv"]
START, END = "2014-03-10T06:00", "2014-03-10T07:00"
LAST_SLOT = "2014-03-10T06:59:57"
NIGHT = "2014-03-09"  # the night holding 06 UT at both sites
PULSATING = ("2014-03-10T06:42", "2014-03-10T06:45")  # both sites show pulsating patches
LAYER = "/Concat_output_0"  # the demo model's penultimate layer (96 features)
DPI = 80
MAX_BYTES = 150_000  # a page of the docs shows a dozen of them


def demo_store(work: Path) -> tuple[Path, Path]:
    """The varied archive and the store of its labels, keogram and embeddings (made once)."""
    archive, store = work / "archive", work / "results.zarr"
    if not (archive / "SYNTHETIC.txt").exists():
        make_archive(archive, SITES, START, hours=1, sky="varied")
    if not store.exists():
        frames = auroradask.open_themis(archive, SITES, START, END)
        embedded = auroradask.embed(frames, auroradask.demo_model(), output=LAYER)
        embedded["keogram"] = auroradask.keogram(frames).drop_vars(["pixel_row", "pixel_col"])
        auroradask.to_zarr(embedded, store, progress=False)
    return archive, store


def truth_table(archive: Path, path: Path) -> Path:
    """What the generator painted, as an interval table (site, start, end, label) CSV."""
    scenes = pd.read_csv(archive / "scenes.csv", parse_dates=["start"])
    end = scenes["start"] + pd.to_timedelta(scenes["minutes"], unit="min")
    table = pd.DataFrame(
        {"site": scenes["site"], "start": scenes["start"], "end": end, "label": scenes["scene"]}
    )
    table.to_csv(path, index=False)
    return path


def save(fig, out: Path, name: str) -> None:
    """``out/name.png`` at :data:`DPI`, or less where that is over :data:`MAX_BYTES`."""
    path = out / f"{name}.png"
    for dpi in range(DPI, 40, -10):
        fig.savefig(path, dpi=dpi)
        if opaque(path) <= MAX_BYTES:
            break
    print(f"{name:<16} {path.stat().st_size / 1024:4.0f} KB at {dpi} dpi")


def opaque(path: Path) -> int:
    """Rewrite the PNG without its alpha channel (a quarter of the bytes); its size."""
    from PIL import Image  # matplotlib's own dependency

    with Image.open(path) as image:
        rgb = image.convert("RGB")
    rgb.save(path, optimize=True)
    return path.stat().st_size


def draw_store_figures(store: Path, out: Path) -> None:
    """The figures drawn from the store alone."""
    results = auroradask.open_results(store)
    save(auroradask.quicklook(store, site="gill", night=NIGHT), out, "quicklook")
    keo = results["keogram"].sel(site="inuv", time=slice(START, LAST_SLOT))
    save(auroradask.plot_keogram(keo, site="inuv"), out, "keogram")
    save(auroradask.plot_timeline(results, "gill", NIGHT), out, "timeline")
    for by in ("mlt_hour", "site"):
        occurrence = auroradask.occurrence(results, by=by, exclude="bad_viewing", progress=False)
        figure = auroradask.plot_occurrence(occurrence, "pulsating")
        save(figure, out, f"occurrence-{by.replace('_hour', '')}")
    dial = auroradask.occurrence(results, by=("mlat", "mlt"), exclude="bad_viewing", progress=False)
    save(auroradask.plot_occurrence_dial(dial, "pulsating"), out, "occurrence-dial")
    events = auroradask.events(
        results, "pulsating", min_duration="2min", max_gap="30s", progress=False
    )
    save(auroradask.plot_events(events, sites=SITES), out, "events")


def draw_frame_figures(archive: Path, store: Path, out: Path, work: Path) -> None:
    """The figures that read frames: montages, a movie still, patch tracks."""
    montage = auroradask.class_montage(store, archive, "pulsating", n=8, columns=4, seed=1)
    save(montage, out, "class-montage")

    clusters = auroradask.cluster(store, 4, n_components=20, nearest=4, progress=False)
    frames = auroradask.open_themis(archive, SITES, START, END)
    images, titles = clusters.nearest_images(frames)
    save(auroradask.montage(images, titles=titles, columns=4), out, "cluster-montage")

    inuv = auroradask.open_themis(archive, "inuv", "2014-03-10T06:42", "2014-03-10T06:47")
    info = auroradask.movie(inuv, work / "inuv.mp4", results=store, speedup=30, height=320)
    movie_still(info, out / "movie-still.png")

    window = auroradask.open_themis(archive, SITES, *PULSATING)
    found = auroradask.patches(window)
    busiest = {  # each site's tracks on its frame with the most patches, as the CLI draws
        s: window["images"]
        .sel(site=s)
        .isel(time=int(np.argmax(found.counts.sel(site=s).values)))
        .values
        for s in SITES
    }
    save(found.plot_tracks(work / "patch-tracks.png", frame=busiest), out, "patch-tracks")


def movie_still(info: auroradask.MovieInfo, path: Path) -> None:
    """The movie's middle video frame, as a PNG."""
    import imageio_ffmpeg
    from PIL import Image

    reader = imageio_ffmpeg.read_frames(str(info.path))
    width, height = next(reader)["size"]
    for k, frame in enumerate(reader):
        if k == info.frames // 2:
            Image.fromarray(np.frombuffer(frame, np.uint8).reshape(height, width, 3)).save(path)
            break
    reader.close()
    print(f"{path.stem:<16} {opaque(path) / 1024:4.0f} KB, {width}x{height} px")


def draw_evaluation(archive: Path, store: Path, out: Path, work: Path) -> None:
    """The demo model against what the generator painted."""
    evaluation = auroradask.evaluate(store, truth_table(archive, work / "truth.csv"))
    print(f"against the painted scenes: {evaluation.frames_compared} frames, "
          f"agreement {evaluation.agreement:.3f}, kappa {evaluation.kappa:.3f}")  # fmt: skip
    save(evaluation.plot_confusion(), out, "confusion")
    save(evaluation.plot_sweep(), out, "sweep")


def draw_sample_quicklook(out: Path, work: Path) -> None:
    """The bundled REAL sample's quicklook (six minutes at Gillam), the README's figure."""
    store = work / "sample.zarr"
    if not store.exists():
        source = auroradask.sample_archive()
        frames = auroradask.open_themis(source, "gill", "2014-03-10T06:00", "2014-03-10T06:06")
        auroradask.to_zarr(
            auroradask.classify(frames, auroradask.demo_model()), store, progress=False
        )
    save(auroradask.quicklook(store, site="gill", night=NIGHT), out, "sample-quicklook")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--out", default="auroradask-figures/gallery", help="the PNGs")
    parser.add_argument(
        "--work", default="auroradask-figures/gallery-work", help="archive, stores, movie"
    )
    args = parser.parse_args()
    out, work = Path(args.out), Path(args.work)
    out.mkdir(parents=True, exist_ok=True)
    work.mkdir(parents=True, exist_ok=True)
    archive, store = demo_store(work)
    draw_store_figures(store, out)
    draw_frame_figures(archive, store, out, work)
    draw_evaluation(archive, store, out, work)
    draw_sample_quicklook(out, work)


if __name__ == "__main__":
    main()
